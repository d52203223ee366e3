"""DGCNN's graph: pcgen.ops kNN per cloud, self included, ragged clouds kept apart."""

from __future__ import annotations

import torch

from pcgen.nn.batching import Packing
from pcgen.nn.dgcnn import knn_graph


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
    assert got == expected
    assert edges.shape[1] == 40 * 6 + 25 * 6 + 3 * 3
