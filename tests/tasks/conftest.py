"""Real tiles for the task tests: crops of the shared sample files, with holes cut at known places."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from shapely.geometry import Point

import pcgen.io as pio
from pcgen import datadir


def sha256(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def crop(cloud, cx, cy, half):
    xy = cloud.xyz[:, :2]
    keep = (np.abs(xy[:, 0] - cx) <= half) & (np.abs(xy[:, 1] - cy) <= half)
    return cloud.select(keep)


@pytest.fixture(scope="session")
def topo():
    """Topography.laz (Quebec, EPSG:2949): terrain, forest, lakes (class 9)."""
    return pio.read(datadir.lidar_file("Topography.laz"))


@pytest.fixture(scope="session")
def holed_tile(topo, tmp_path_factory):
    """A 120 m crop of Topography.laz with a 10 m-radius hole; returns (path, hole polygon, removed xyz)."""
    xmin, ymin = topo.xyz[:, :2].min(0)
    cx, cy = xmin + 150.0, ymin + 110.0  # forested land, away from the lakes
    tile = crop(topo, cx, cy, 60.0)
    hole = Point(cx + 5.0, cy - 5.0).buffer(10.0)
    xy = tile.xyz[:, :2]
    inside = np.hypot(xy[:, 0] - (cx + 5.0), xy[:, 1] - (cy - 5.0)) <= 10.0
    path = tmp_path_factory.mktemp("tiles") / "holed.laz"
    pio.write(tile.select(~inside), path)
    return path, hole, tile.xyz[inside]


@pytest.fixture(scope="session")
def crops(topo, tmp_path_factory):
    """Two 50 m crops of Topography.laz written as tiles."""
    d = tmp_path_factory.mktemp("crops")
    x0, y0 = topo.xyz[:, :2].min(0)
    for i, (dx, dy) in enumerate([(100, 100), (180, 60)]):
        pio.write(crop(topo, x0 + dx, y0 + dy, 25.0), d / f"crop{i}.laz")
    return d


def tiny_checkpoint(path, conditional: bool = True, kind: str = "flow_matching"):
    """An untrained but complete pcgen checkpoint (tiny PointNets), written like the shipped one."""
    from pcgen.tasks.train_fill import strip_checkpoint
    from pcgen.train.run import build_module, compose_config, head_meta

    over = [f"model={kind}", "encoder=pointnet", "logger=none", "callbacks=none", "trainer=cpu",
            "model.time_dim=8", "encoder.local_channels=[8,8]", "encoder.global_channels=[8,16]",
            "encoder.point_channels=[16,8]", "model.head.net.hidden=16", "model.head.steps=2"]
    if conditional:
        over += ["experiment=fill", "model.cond_dim=16", "model.head.context_encoder.hidden=16",
                 "data.gap.context_points=64", "data.gap.target_points=32"]
    cfg = compose_config(over, root=str(path.parent))
    strip_checkpoint(build_module(cfg), head_meta(cfg), path)
    return path


@pytest.fixture(scope="session")
def fill_ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "cond.ckpt", conditional=True)


@pytest.fixture(scope="session")
def uncond_ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "uncond.ckpt", conditional=False)
