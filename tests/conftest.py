"""Shared fixtures: the real sample data (through pcgen.datadir) and device selection."""

from __future__ import annotations

import pytest
import torch

from pcgen import datadir


@pytest.fixture
def single_thread():
    """One intra-op thread: tiny tensors only pay synchronisation for more (100x on a loaded 2-core box).

    Opt in per folder; ops tests keep the default so the kernels' parallel paths are exercised.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """Loading a gap model sets its process to one thread; no test leaves that to the next."""
    before = torch.get_num_threads()
    yield
    if torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data_dir():
    try:
        return datadir.data_dir()
    except Exception as exc:  # the real data is required; say so clearly
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def lidar_dir(data_dir):
    return data_dir / "lidar"


@pytest.fixture(scope="session")
def lidar_files(lidar_dir):
    return datadir.lidar_files()


@pytest.fixture(scope="session")
def tiny_tiles(tmp_path_factory, lidar_dir):
    """The real ``warsaw_small.las`` (33 x 33 m, 3000 points) cut into 9 tiles of 11 m, once.

    ``min_points`` is ``data.dataset.num_points`` of ``pcgen/conf/debug/tiny.yaml`` (64), so every
    tile fills a tiny sample.
    """
    from pcgen.data.tiling import TileOptions, tile_files

    out = tmp_path_factory.mktemp("tiles") / "warsaw"
    tile_files([str(datadir.lidar_file("warsaw_small.las"))], out,
               TileOptions(size=11.0, buffer=0.0, min_points=64), overview=False)
    return out


@pytest.fixture(scope="session")
def make_cfg(tiny_tiles, tmp_path_factory):
    """``make_cfg(model, encoder, overrides=(), root=None, callbacks="none", logger="none")``: the
    training config with ``debug=tiny`` (``pcgen/conf/debug/``, as ``pcgen train debug=tiny``)
    for ``model`` x ``encoder`` on :func:`tiny_tiles`, its run folder ``root`` (a fresh one if None).
    """
    from pcgen.train.run import compose_config

    def _make(model="diffusion", encoder="pointnet", overrides=(), root=None, callbacks="none",
              logger="none"):
        root = root or tmp_path_factory.mktemp("run")
        args = ["debug=tiny", f"model={model}", f"encoder={encoder}", f"callbacks={callbacks}",
                f"logger={logger}", f"data.tile_dir={tiny_tiles}", *overrides]
        return compose_config(args, root=root)

    return _make


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
