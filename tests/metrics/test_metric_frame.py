"""The metric frame: metres, heights above ground; it sees a 10 m shift the unit frame cannot."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from pcgen.errors import ConfigError
from pcgen.metrics import MetricFrame, evaluate_sets, occupancy
from pcgen.tasks.augment import metric_tiles

SLOPE = (0.3, -0.1)  # ground dz/dx, dz/dy: a 30 % slope


def forest_tile(rng: np.random.Generator, origin=(500.0, 7000.0), size=40.0, trees=5):
    """A constructed 40 m tile on sloped ground: class-2 ground returns and class-5 crowns.

    Returns (xyz (N, 3) world, classification (N,)).
    """
    ox, oy = origin
    ax = np.arange(0.5, size)  # a 1 m grid of ground returns: every 2 m cell's lowest point is ground
    g = np.stack(np.meshgrid(ax, ax), -1).reshape(-1, 2) + (ox, oy)
    parts, cls = [], []

    def ground_z(xy):
        return 120.0 + SLOPE[0] * (xy[:, 0] - ox) + SLOPE[1] * (xy[:, 1] - oy)

    parts.append(np.c_[g, ground_z(g)])
    cls.append(np.full(len(g), 2))
    for _ in range(trees):
        c = rng.uniform(10, size - 10, 2) + (ox, oy)
        h = rng.uniform(10, 25)
        p = rng.normal(0, 1, (80, 3)) * (2.0, 2.0, 1.5)
        p[:, :2] += c
        p[:, 2] += h + ground_z(p[:, :2])
        parts.append(p)
        cls.append(np.full(len(p), 5))
    return np.concatenate(parts), np.concatenate(cls)


def test_ground_returns_sit_at_zero_on_a_sloped_tile():
    xyz, cls = forest_tile(np.random.default_rng(0))
    frame = MetricFrame(tile_size=40.0, points=len(xyz))
    sub = frame.subsample(len(xyz), np.random.default_rng(1))
    assert len(np.unique(sub)) == len(xyz)  # enough points: a permutation, no repeats
    ground = cls[sub] == 2
    for classes in (cls, None):  # ASPRS ground, and the lowest-point fallback without classes
        (tile,) = metric_tiles(xyz, frame, np.random.default_rng(1), classes)
        inner = ground & (np.abs(tile[:, :2]) < 18).all(1)
        assert np.abs(tile[inner, 2]).max() < 1e-3  # ground at 0 m on a 30 % slope (12 m of relief)
        # class 2 spans the tile; the lowest points per 2 m cell stop up to 1 m short of its edges,
        # where the surface extrapolates (IDW)
        assert np.abs(tile[ground, 2]).max() < (1e-3 if classes is not None else 1.5)
        assert np.median(tile[~ground, 2]) > 8  # crowns keep their height above ground
        # x, y are offsets in metres from the square's centre, not rescaled
        assert np.allclose(tile[:, :2], xyz[sub, :2] - (520.0, 7020.0), atol=1e-4)


def test_place_round_trips():
    frame = MetricFrame()
    xyz = np.array([[10.0, 20.0, 105.0], [12.5, 18.0, 130.0]])
    ground = np.array([100.0, 101.0])
    local = frame.place(xyz, np.array([10.0, 20.0]), ground)
    assert local.tolist() == [[0.0, 0.0, 5.0], [2.5, -2.0, 29.0]]
    assert np.allclose(np.c_[local[:, :2] + (10.0, 20.0), local[:, 2] + ground], xyz)


def test_squares_are_whole_tiles_of_the_stated_size():
    rng = np.random.default_rng(0)
    xy = np.r_[[[0.0, 0.0], [125.0, 78.5]], rng.uniform(0, 1, (20000, 2)) * (125.0, 78.5)]
    squares = MetricFrame(tile_size=40.0).squares(xy)  # 125 x 78.5 m: 3 x 2 (78.5 m is within 5 % of 80)
    assert len(squares) == 3 * 2
    centers = np.array([c for c, _ in squares])
    assert np.allclose(centers[:, 0], [2.5 + 20, 42.5 + 20, 82.5 + 20] * 2)
    assert np.allclose(centers[:, 1], [39.25 - 20] * 3 + [39.25 + 20] * 3)
    seen = np.concatenate([index for _, index in squares])
    assert len(seen) == len(np.unique(seen))  # every point in at most one square
    for c, index in squares:
        assert (np.abs(xy[index] - c) <= 20.0 + 1e-9).all()
        assert len(index) > 20000 / 7  # about a sixth of the points each
    assert MetricFrame(tile_size=40.0).squares(xy * 0.3) == []  # 37.5 x 23.6 m: no whole tile


def test_squares_of_a_sparse_huge_extent_are_found_without_a_grid_of_every_square():
    import time

    xy = np.r_[np.random.default_rng(0).uniform(0, 40, (100, 2)), [[1e9, 1e9]]]
    start = time.perf_counter()
    squares = MetricFrame(tile_size=40.0, min_points=1).squares(xy)  # was a MemoryError of 71 PiB
    assert time.perf_counter() - start < 10
    assert len(squares) == 2 and sorted(len(i) for _, i in squares) == [1, 100]
    with pytest.raises(ValueError, match="NaN or infinite"):
        MetricFrame(tile_size=40.0).squares(np.r_[xy, [[np.nan, 0.0]]])  # every square was lost, silently
    with pytest.raises(ValueError, match=r"xy must be \(N, 2\)"):
        MetricFrame(tile_size=40.0).squares(np.zeros((5, 3)))


def test_frame_rejects_bad_settings():
    with pytest.raises(ConfigError, match="tile size"):
        MetricFrame(tile_size=0)
    with pytest.raises(ConfigError, match="height range"):
        MetricFrame(height_range=(10.0, 5.0))


@pytest.mark.parametrize("setting, needle", [
    ({"points": 2.5}, "points per tile must be an integer"),  # made 2-point tiles
    ({"points": True}, "points per tile must be an integer"),  # made 1-point tiles
    ({"tile_size": float("inf")}, "tile size must be > 0"),
    ({"min_points": -5}, "min_points must be >= 1"),
    ({"height_range": (-float("inf"), float("inf"))}, "height range must be >= -100000"),  # JSD 0 for any shift
    ({"height_range": 5.0}, "height range must be (low, high)"),
])
def test_frame_checks_every_setting(setting, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        MetricFrame(**setting)


def test_occupancy_bounds_in_metres():
    frame = MetricFrame(tile_size=40.0, height_range=(0.0, 40.0))
    pts = torch.tensor([[[-19.9, -19.9, 0.1], [19.9, 19.9, 39.9]]])
    counts = occupancy(pts, resolution=2, bounds=frame.bounds())
    assert counts.tolist() == [1, 0, 0, 0, 0, 0, 0, 1]


def _tiles(seed: int, count: int, frame: MetricFrame) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        xyz, cls = forest_tile(rng, origin=rng.uniform(0, 1e4, 2))
        out += metric_tiles(xyz, frame, rng, cls)
    return np.stack(out)


def test_one_nna_tells_a_10m_shift_only_in_metres():
    frame = MetricFrame(tile_size=40.0, points=256)
    source, reference = _tiles(1, 16, frame), _tiles(2, 16, frame)
    rng = np.random.default_rng(3)
    jitter = (source + rng.normal(0, 0.25, source.shape)).astype(np.float32)
    shifted = jitter + np.float32([0, 0, 10])

    def nna(gen, ref, metres=True):
        kw = {"normalize": "none", "jsd_bounds": frame.bounds()} if metres else {"normalize": "box"}
        return evaluate_sets(torch.as_tensor(gen), torch.as_tensor(ref), metrics=("chamfer",), **kw)["chamfer"]["1nna"]

    same = nna(jitter, reference)
    assert 0.3 <= same <= 0.7  # copies of tiles from the same process: indistinguishable
    assert nna(shifted, reference) >= 0.95  # crowns 10 m too high: separated
    assert nna(jitter, source) <= 0.1  # against their own sources, copies are each other's neighbours
    # the unit frame rescales every tile into [-1, 1]^3: the shift vanishes
    assert nna(shifted, reference, metres=False) == pytest.approx(nna(jitter, reference, metres=False), abs=1 / 32)
