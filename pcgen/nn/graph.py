"""Edge indices for torch-geometric layers, built from :mod:`pcgen.ops` neighbour searches.

torch-geometric's own ``knn_graph``/``radius`` need torch-cluster or pyg-lib, which pcgen does
not depend on. Encoders already hold their clouds as packed rows (:class:`~pcgen.nn.batching.Packing`),
so the graphs are built here from the padded-batch kernels (``knn``, ``ball_query``) and turned
into PyG's ``edge_index``: row 0 the neighbour (source), row 1 the point it feeds (target), the
``source_to_target`` flow that ``MessagePassing`` layers expect.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pcgen.nn.batching import Packing
from pcgen.ops import knn


def neighbour_edges(idx: Tensor, queries: Packing, sources: Packing) -> Tensor:
    """Per-cloud neighbour indices to an edge index over packed rows.

    Args:
        idx: ``(B, Nq, k)`` int64 index of each query's neighbours in its own cloud of the source
            set, -1 where there is none (a short cloud, an empty ball); what ``pcgen.ops.knn`` and
            ``ball_query`` return.
        queries: packing of the query rows (``Nq == queries.num_points``).
        sources: packing of the source rows.
    Returns:
        ``edge_index (2, E)`` int64: row 0 the source row, row 1 the query row; edges come query by
        query, in the order of ``idx``. Rows of padded queries give no edges.
    """
    B, Nq, _ = idx.shape
    ok = (idx >= 0) & queries.mask[..., None]
    src = sources.to_rows(idx)[ok]
    query = torch.arange(Nq, device=idx.device).expand(B, Nq)
    dst = queries.to_rows(query)[..., None].expand_as(idx)[ok]
    return torch.stack([src, dst])


@torch.no_grad()
def knn_graph(x: Tensor, packing: Packing, k: int) -> Tensor:
    """Directed kNN graph of each cloud's packed rows, self included (as in DGCNN).

    Clouds never connect to each other; a cloud with fewer than ``k`` points connects all of them.

    Args:
        x: ``(P, C)`` rows to measure distances in (xyz or any feature space).
        packing: how the rows split into clouds.
        k: neighbours per row, itself included.
    Returns:
        ``edge_index (2, E)`` with row 0 the neighbour (source) and row 1 the point (target).
    """
    padded = packing.unpack(x.detach())
    idx = knn(padded, padded, k, lengths1=packing.lengths, lengths2=packing.lengths).idx  # (B, N, k)
    return neighbour_edges(idx, packing, packing)


__all__ = ["knn_graph", "neighbour_edges"]
