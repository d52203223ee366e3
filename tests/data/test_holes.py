"""Gap cutting and the gap-filling dataset: an exact partition, deterministic per seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcgen.data.holes import GapDataset, cut_gap
from pcgen.errors import ConfigError, InputError, ShapeError

from .scenes import make_scene


@pytest.fixture(scope="module")
def tiles():
    """Four normalized samples (unit sphere) from synthetic scenes, as TileDataset items."""
    items = []
    for seed in range(4):
        xyz = make_scene(seed, size=30.0).xyz
        xyz = xyz[np.random.default_rng(seed).choice(len(xyz), 2048, replace=False)]
        center = xyz.mean(0)
        scale = np.linalg.norm(xyz - center, axis=1).max()
        items.append({"points": torch.from_numpy(((xyz - center) / scale).astype(np.float32)),
                      "center": center, "scale": scale, "tile": f"t{seed}"})
    return items


def _rows(a):
    return {tuple(r) for r in np.asarray(a).tolist()}


def test_cut_gap_partitions_the_sample(tiles):
    pts = tiles[0]["points"].numpy()
    gap = cut_gap(pts, np.random.default_rng(0), size=(0.2, 0.3))
    assert len(gap.context) + len(gap.target) == len(pts)
    assert _rows(gap.context) | _rows(gap.target) == _rows(pts)
    xmin, ymin, xmax, ymax = gap.box
    inside = lambda p: (p[:, 0] >= xmin) & (p[:, 0] <= xmax) & (p[:, 1] >= ymin) & (p[:, 1] <= ymax)
    assert inside(gap.target).all() and not inside(gap.context).any()
    extent = pts[:, :2].max(0) - pts[:, :2].min(0)
    sides = np.array([xmax - xmin, ymax - ymin])
    assert np.all(sides >= 0.2 * extent - 1e-6) and np.all(sides <= 0.3 * extent + 1e-6)
    assert np.all(gap.box[:2] >= pts[:, :2].min(0) - 1e-6) and np.all(gap.box[2:] <= pts[:, :2].max(0) + 1e-6)
    assert len(gap.target) >= 16


def test_cut_gap_is_a_function_of_the_rng(tiles):
    pts = tiles[1]["points"]
    a, b = cut_gap(pts, np.random.default_rng(7)), cut_gap(pts, np.random.default_rng(7))
    c = cut_gap(pts, np.random.default_rng(8))
    assert np.array_equal(a.box, b.box) and np.array_equal(a.target, b.target)
    assert not np.array_equal(a.box, c.box)


def test_cut_gap_bad_inputs():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError):
        cut_gap(np.zeros((10, 3)), rng)  # too few points
    with pytest.raises(ShapeError):
        cut_gap(np.zeros((100, 2)), rng)
    flat = np.zeros((100, 3))
    flat[:, 0] = np.linspace(0, 1, 100)  # zero y extent
    with pytest.raises(InputError, match="extent"):
        cut_gap(flat, rng)
    with pytest.raises(ConfigError):
        cut_gap(np.random.default_rng(1).random((100, 3)), rng, size=(0.5, 1.5))


def test_gap_dataset_items(tiles):
    ds = GapDataset(tiles, context_points=512, target_points=64, seed=3)
    assert len(ds) == 4
    item = ds[2]
    assert item["context"].shape == (512, 3) and item["points"].shape == (64, 3) and item["gap_box"].shape == (4,)
    assert item["context"].dtype == item["points"].dtype == item["gap_box"].dtype == torch.float32
    box = item["gap_box"]
    assert torch.all((item["points"][:, :2] >= box[:2]) & (item["points"][:, :2] <= box[2:]))
    outside = ~((item["context"][:, :2] >= box[:2]) & (item["context"][:, :2] <= box[2:])).all(1)
    assert outside.all()
    assert item["tile"] == "t2" and item["scale"] == tiles[2]["scale"]
    batch = torch.utils.data.default_collate([ds[0], ds[1]])
    assert batch["context"].shape == (2, 512, 3) and batch["gap_box"].shape == (2, 4)


def test_gap_dataset_determinism(tiles):
    a, b = GapDataset(tiles, 256, 32, seed=1), GapDataset(tiles, 256, 32, seed=1)
    for i in range(len(tiles)):
        for k in ("context", "points", "gap_box"):
            assert torch.equal(a[i][k], b[i][k])
    assert torch.equal(a[0]["points"], a[0]["points"])  # repeated access: same item
    other = GapDataset(tiles, 256, 32, seed=2)
    assert not torch.equal(a[0]["gap_box"], other[0]["gap_box"])
    before = a[0]["gap_box"].clone()
    a.set_epoch(1)
    assert not torch.equal(a[0]["gap_box"], before)
    with pytest.raises(ConfigError):
        GapDataset(tiles, context_points=0)


def test_a_sample_too_small_for_its_gap_names_the_settings(tiles):
    few = [dict(item, points=item["points"][:64]) for item in tiles]
    with pytest.raises(InputError, match=r"no gap with at least 30 points on both sides after 50 tries "
                                         r"\(samples of 64 points; raise data.dataset.num_points or lower "
                                         r"data.gap.min_gap_points\)"):
        GapDataset(few, min_gap_points=30)[0]
