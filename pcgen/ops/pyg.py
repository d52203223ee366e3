"""torch_cluster-style graph builders on flat (N, D) points with a ``batch`` vector.

torch-geometric's own ``knn``/``radius``/``fps`` need torch-cluster or pyg-lib, which cannot be
installed here; these functions take the same arguments and return the same ``edge_index`` /
index tensors, computed with :mod:`pcgen.ops`, so PyG convolutions (EdgeConv, PointNetConv, ...)
get their graphs anyway. ``batch`` must be sorted, as in PyG.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pcgen.errors import InputError
from pcgen.ops.knn import ball_query
from pcgen.ops.knn import knn as knn_padded
from pcgen.ops.sampling import farthest_point_sample


def _to_padded(x: torch.Tensor, batch: torch.Tensor | None, num_batches: int):
    """Flat (N, D) + sorted batch -> padded (B, Nmax, D), lengths (B,), offsets (B,)."""
    if x.dim() == 1:
        x = x.unsqueeze(-1)
    if batch is None:
        batch = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
    if batch.shape != (x.shape[0],):
        raise InputError(f"batch must be ({x.shape[0]},), got {tuple(batch.shape)}")
    batch = batch.to(torch.int64)
    if x.shape[0] and bool((batch[1:] < batch[:-1]).any()):
        raise InputError("batch must be sorted")
    counts = torch.bincount(batch, minlength=num_batches)
    offsets = torch.cumsum(counts, 0) - counts
    nmax = int(counts.max()) if counts.numel() else 0
    pos = torch.arange(x.shape[0], device=x.device) - offsets[batch]
    padded = x.new_zeros(num_batches, nmax, x.shape[1])
    padded[batch, pos] = x
    return padded, counts, offsets


def _num_batches(*batches) -> int:
    n = 1
    for b in batches:
        if b is not None and b.numel():
            n = max(n, int(b.max()) + 1)
    return n


def _pairs(idx, q_lengths, q_offsets, s_offsets):
    """(B, Nq, k) neighbour indices -> [query_flat, source_flat] rows for entries that exist."""
    B, Nq, k = idx.shape
    b = torch.arange(B, device=idx.device).view(B, 1, 1).expand_as(idx)
    q = torch.arange(Nq, device=idx.device).view(1, Nq, 1).expand_as(idx)
    ok = (idx >= 0) & (q < q_lengths.view(B, 1, 1))
    row = (q_offsets[b] + q)[ok]
    col = (s_offsets[b] + idx)[ok]
    return torch.stack([row, col])


def knn(x: torch.Tensor, y: torch.Tensor, k: int, batch_x=None, batch_y=None, cosine: bool = False,
        num_workers: int = 1, batch_size: int | None = None) -> torch.Tensor:
    """For every point of ``y`` its k nearest points in ``x`` (torch_cluster.knn).

    Args:
        x: (N, D) points searched. y: (M, D) query points.
        batch_x: (N,) sorted cloud ids of x; batch_y: (M,) of y (default: one cloud).
        cosine: rank by cosine distance instead of Euclidean.
    Returns:
        (2, E) int64: row 0 indexes y, row 1 indexes x.
    """
    if cosine:
        x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    B = batch_size or _num_batches(batch_x, batch_y)
    px, lx, ox = _to_padded(x.detach(), batch_x, B)
    py, ly, oy = _to_padded(y.detach(), batch_y, B)
    res = knn_padded(py, px, k, ly, lx)
    return _pairs(res.idx, ly, oy, ox)


def knn_graph(x: torch.Tensor, k: int, batch=None, loop: bool = False,
              flow: str = "source_to_target", cosine: bool = False, num_workers: int = 1,
              batch_size: int | None = None) -> torch.Tensor:
    """k-NN graph over ``x`` (torch_cluster.knn_graph).

    Args:
        x: (N, D) points or features. batch: (N,) sorted cloud ids.
        k: neighbours per node. loop: keep self-loops.
        flow: "source_to_target" gives edges (neighbour j -> centre i) as PyG's MessagePassing expects.
    Returns:
        (2, E) int64 edge_index.
    """
    _check_flow(flow)
    pairs = knn(x, x, k if loop else k + 1, batch, batch, cosine, num_workers, batch_size)
    return _edge_index(pairs, loop, flow)


def _check_flow(flow: str) -> None:
    if flow not in ("source_to_target", "target_to_source"):
        raise InputError(f"flow must be 'source_to_target' or 'target_to_source', got {flow!r}")


def _edge_index(pairs: torch.Tensor, loop: bool, flow: str) -> torch.Tensor:
    """(centre, neighbour) pairs of a self-query -> PyG edge_index, self-loops dropped unless ``loop``."""
    centre, nb = pairs[0], pairs[1]
    if not loop:
        keep = centre != nb
        centre, nb = centre[keep], nb[keep]
    if flow == "source_to_target":
        return torch.stack([nb, centre])
    return torch.stack([centre, nb])


def radius(x: torch.Tensor, y: torch.Tensor, r: float, batch_x=None, batch_y=None,
           max_num_neighbors: int = 32, num_workers: int = 1,
           batch_size: int | None = None) -> torch.Tensor:
    """For every point of ``y`` up to ``max_num_neighbors`` points of ``x`` within ``r``
    (torch_cluster.radius; here the nearest ones are kept when there are more).

    Returns:
        (2, E) int64: row 0 indexes y, row 1 indexes x.
    """
    B = batch_size or _num_batches(batch_x, batch_y)
    px, lx, ox = _to_padded(x.detach(), batch_x, B)
    py, ly, oy = _to_padded(y.detach(), batch_y, B)
    res = ball_query(py, px, r, max_num_neighbors, ly, lx)
    return _pairs(res.idx, ly, oy, ox)


def radius_graph(x: torch.Tensor, r: float, batch=None, loop: bool = False,
                 max_num_neighbors: int = 32, flow: str = "source_to_target",
                 num_workers: int = 1, batch_size: int | None = None) -> torch.Tensor:
    """Radius graph over ``x`` (torch_cluster.radius_graph); (2, E) edge_index."""
    _check_flow(flow)
    pairs = radius(x, x, r, batch, batch, max_num_neighbors + (0 if loop else 1), num_workers,
                   batch_size)
    return _edge_index(pairs, loop, flow)


def fps(src: torch.Tensor, batch=None, ratio: float = 0.5, random_start: bool = True,
        batch_size: int | None = None) -> torch.Tensor:
    """Farthest point sampling per cloud (torch_cluster.fps).

    Args:
        src: (N, D) points. batch: (N,) sorted cloud ids. ratio: fraction kept per cloud
            (ceil(ratio * n_b) points).
    Returns:
        (S,) int64 indices into ``src``, cloud by cloud.
    """
    if not 0 < ratio <= 1:
        raise InputError(f"ratio must be in (0, 1], got {ratio}")
    B = batch_size or _num_batches(batch)
    p, lengths, offsets = _to_padded(src.detach(), batch, B)
    n = math.ceil(ratio * int(lengths.max())) if B else 0
    idx = farthest_point_sample(p, n, lengths, random_start=random_start)
    take = torch.ceil(lengths.to(torch.float64) * ratio).to(torch.int64)
    keep = torch.arange(n, device=idx.device)[None] < take[:, None]
    return (idx + offsets[:, None])[keep & (idx >= 0)]
