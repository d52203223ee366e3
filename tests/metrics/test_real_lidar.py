"""On real LiDAR, the metrics rank a same-site sample set above a different-site one."""

from __future__ import annotations

import numpy as np
import torch

from pcgen import datadir, io as pio
from pcgen.metrics import evaluate_sets


def _patches(name: str, count: int, n: int, seed: int) -> torch.Tensor:
    """``count`` patches of the ``n`` points nearest (in plan) to random points of a shared file."""
    from scipy.spatial import cKDTree

    xyz = pio.read(datadir.lidar_file(name)).xyz
    rng = np.random.default_rng(seed)
    tree = cKDTree(xyz[:, :2])
    idx = [tree.query(xyz[rng.integers(len(xyz)), :2], n)[1] for _ in range(count)]
    return torch.from_numpy(np.stack([xyz[i] for i in idx])).float()


def test_forest_reference_prefers_forest_over_suburb():
    ref = _patches("Megaplot.laz", 8, 256, 0)
    forest = evaluate_sets(_patches("Megaplot.laz", 8, 256, 1), ref)
    suburb = evaluate_sets(_patches("autzen_trim.laz", 8, 256, 2), ref)
    assert forest["jsd"] < suburb["jsd"]
    for m in ("chamfer", "emd"):
        assert forest[m]["mmd"] < suburb[m]["mmd"]
        assert forest[m]["1nna"] < suburb[m]["1nna"]
        assert forest[m]["cov"] >= suburb[m]["cov"]
