"""pcgen.nn.graph: PyG edge indices from pcgen.ops' kNN and ball query, ragged clouds kept apart."""

from __future__ import annotations

import torch
from torch_geometric.nn import EdgeConv

from pcgen.nn.batching import Packing
from pcgen.nn.graph import knn_graph, neighbour_edges
from pcgen.ops import ball_query, knn


def test_knn_graph_matches_brute_force(clouds):
    lengths = torch.tensor([40, 25, 3])
    packing = Packing.from_lengths(lengths, 40)
    x = packing.pack(clouds(3, 40, features=5))  # 8-D "feature space" rows
    edges = knn_graph(x, packing, k=6)
    expected = set()
    for b, n in enumerate(lengths.tolist()):
        off = int(packing.offsets[b])
        d = torch.cdist(x[off:off + n], x[off:off + n])
        nearest = d.topk(min(6, n), largest=False).indices
        expected |= {(off + int(j), off + i) for i in range(n) for j in nearest[i]}
    got = set(map(tuple, edges.T.tolist()))
    assert got == expected  # (neighbour j -> point i): source_to_target, self included
    assert edges.shape[1] == 40 * 6 + 25 * 6 + 3 * 3
    assert torch.equal(packing.batch[edges[0]], packing.batch[edges[1]])


def test_knn_edges_between_two_sets_per_cloud(clouds):
    src_pack = Packing.from_lengths(torch.tensor([20, 5, 25]), 25)
    qry_pack = Packing.from_lengths(torch.tensor([3, 2, 4]), 4)
    x = src_pack.pack(clouds(3, 25, seed=1))
    y = qry_pack.pack(clouds(3, 4, seed=2))
    idx = knn(qry_pack.unpack(y), src_pack.unpack(x), 3, lengths1=qry_pack.lengths,
              lengths2=src_pack.lengths).idx
    col, row = neighbour_edges(idx, qry_pack, src_pack)
    assert row.shape[0] == 9 * 3
    for i in range(9):
        cand = torch.nonzero(src_pack.batch == qry_pack.batch[i]).squeeze(1)
        want = cand[torch.cdist(y[i:i + 1], x[cand])[0].topk(3, largest=False).indices]
        assert set(col[row == i].tolist()) == set(want.tolist())


def test_ball_edges_match_brute_force_and_cap(clouds):
    packing = Packing.from_lengths(torch.tensor([20, 5, 25]), 25)
    x = packing.pack(clouds(3, 25, seed=3))
    pad = packing.unpack(x)

    def ball(r, k):
        idx = ball_query(pad, pad, r, k, lengths1=packing.lengths, lengths2=packing.lengths).idx
        return neighbour_edges(idx, packing, packing)

    src, dst = ball(0.6, 64)
    d = torch.cdist(x, x)
    want = (d <= 0.6) & (packing.batch[:, None] == packing.batch[None, :])
    got = torch.zeros_like(want)
    got[dst, src] = True
    assert torch.equal(got, want)
    capped = ball(0.6, 2)
    assert torch.bincount(capped[1], minlength=50).max() <= 2


def test_edgeconv_runs_on_our_graph(clouds):
    packing = Packing.from_lengths(torch.tensor([20, 5, 25]), 25)
    x = packing.pack(clouds(3, 25, seed=4))
    conv = EdgeConv(torch.nn.Linear(6, 8), aggr="max")
    out = conv(x, knn_graph(x, packing, 5))
    assert out.shape == (50, 8) and torch.isfinite(out).all()
