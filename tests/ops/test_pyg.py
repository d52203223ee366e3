"""pcgen.ops.pyg: torch_cluster-compatible graphs on flat points with a batch vector."""

from __future__ import annotations

import math

import pytest
import torch

from pcgen.errors import InputError
from pcgen.ops import pyg


def _cloud(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(50, 3, generator=g)
    batch = torch.tensor([0] * 20 + [1] * 5 + [2] * 25)
    return x, batch


def test_knn_graph_matches_brute_force():
    x, batch = _cloud()
    k = 4
    ei = pyg.knn_graph(x, k, batch)
    src, dst = ei  # source_to_target: neighbour j -> centre i
    d = torch.cdist(x, x)
    d[batch[:, None] != batch[None, :]] = math.inf
    d.fill_diagonal_(math.inf)
    for i in range(50):
        want = set(d[i].topk(k, largest=False).indices.tolist())
        assert set(src[dst == i].tolist()) == want
    assert (batch[src] == batch[dst]).all() and (src != dst).all()
    loop = pyg.knn_graph(x, k, batch, loop=True)
    assert ((loop[0] == loop[1]).sum() == 50) and loop.shape[1] == 50 * k
    t2s = pyg.knn_graph(x, k, batch, flow="target_to_source")
    assert torch.equal(t2s, ei.flip(0))


def test_knn_between_sets():
    x, bx = _cloud(1)
    y = torch.rand(9, 3)
    by = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    row, col = pyg.knn(x, y, 3, bx, by)
    assert row.shape[0] == 9 * 3
    for i in range(9):
        mask = bx == by[i]
        cand = torch.nonzero(mask).squeeze(1)
        want = cand[torch.cdist(y[i:i + 1], x[cand])[0].topk(3, largest=False).indices]
        assert set(col[row == i].tolist()) == set(want.tolist())


def test_radius():
    x, batch = _cloud(2)
    row, col = pyg.radius(x, x, 0.3, batch, batch, max_num_neighbors=64)
    d = torch.cdist(x, x)
    want = (d <= 0.3) & (batch[:, None] == batch[None, :])
    got = torch.zeros_like(want)
    got[row, col] = True
    assert torch.equal(got, want)
    capped = pyg.radius(x, x, 0.3, batch, batch, max_num_neighbors=2)
    assert torch.bincount(capped[0], minlength=50).max() <= 2
    g = pyg.radius_graph(x, 0.3, batch)
    assert (g[0] != g[1]).all() and g.shape[1] == int(want.sum()) - 50


def test_fps_per_cloud():
    x, batch = _cloud(3)
    idx = pyg.fps(x, batch, ratio=0.5, random_start=False)
    counts = torch.bincount(batch[idx], minlength=3)
    assert counts.tolist() == [10, 3, 13]  # ceil(0.5 * n) per cloud
    assert len(set(idx.tolist())) == len(idx)
    assert idx[0] == 0 and idx[10] == 20 and idx[13] == 25  # each cloud starts at its first point


def test_edgeconv_runs_on_our_graph():
    from torch_geometric.nn import EdgeConv

    x, batch = _cloud(4)
    conv = EdgeConv(torch.nn.Linear(6, 8), aggr="max")
    out = conv(x, pyg.knn_graph(x, 5, batch))
    assert out.shape == (50, 8) and torch.isfinite(out).all()


def test_unsorted_batch_rejected():
    with pytest.raises(InputError, match="sorted"):
        pyg.knn_graph(torch.rand(4, 3), 1, torch.tensor([1, 0, 1, 0]))
