"""Pure-torch references for every pcgen kernel.

They define what the compiled kernels must return (tests compare against them) and serve as
the fallback when ``pcgen._C`` is not built. Gradients flow through ordinary torch ops: neighbour
*indices* are chosen without gradient, then distances are recomputed from the gathered points, so
the result is differentiable w.r.t. both point sets. Distance matrices are built in row chunks of
at most ``CHUNK_ELEMS`` entries, so memory stays linear in the number of points.
"""

from __future__ import annotations

import math

import torch

CHUNK_ELEMS = 1 << 24  # entries of one distance block (64 MiB in float32)


def _full(lengths, p: torch.Tensor) -> torch.Tensor:
    if lengths is None:
        return torch.full((p.shape[0],), p.shape[1], dtype=torch.int64, device=p.device)
    return lengths


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Points at ``idx`` per batch, zeros where ``idx`` is -1.

    Args:
        points: (B, M, C).
        idx: (B, N, K) int64, -1 for "no neighbour".
    Returns:
        (B, N, K, C).
    """
    B, N, K = idx.shape
    C = points.shape[-1]
    if points.shape[1] == 0:  # an empty cloud: every index is -1, nothing to gather from
        return points.new_zeros(B, N, K, C)
    safe = idx.clamp_min(0).reshape(B, N * K, 1).expand(B, N * K, C)
    out = points.gather(1, safe).reshape(B, N, K, C)
    valid = idx >= 0
    if not torch.compiler.is_compiling() and bool(valid.all()):
        return out  # nothing to blank: skip a pass over (B, N, K, C)
    return out * valid.unsqueeze(-1).to(points.dtype)


@torch.no_grad()
def nearest_indices(p1, p2, lengths1, lengths2, k: int, max_dist2: float = math.inf,
                    exact: bool = True, return_dists: bool = False):
    """Indices (B, N, k) of the k nearest valid points of ``p2`` for every point of ``p1``.

    Sorted by distance; -1 where a cloud has fewer than k points (or none within
    ``sqrt(max_dist2)``) and for padded query points. ``exact`` selects in float64 (float32's
    |a|^2 + |b|^2 - 2ab expansion can swap near ties); ``exact=False`` keeps the input dtype,
    which is the fast path for high-dimensional features (BLAS beats any hand loop there).
    ``return_dists`` also returns the block's squared distances (B, N, k) (no gradient).
    """
    B, N, D = p1.shape
    M = p2.shape[1]
    lengths1, lengths2 = _full(lengths1, p1), _full(lengths2, p2)
    idx = torch.full((B, N, k), -1, dtype=torch.int64, device=p1.device)
    dists = torch.zeros((B, N, k), dtype=p1.dtype, device=p1.device) if return_dists else None
    if B == 0 or N == 0 or M == 0:
        return (dists, idx) if return_dists else idx
    kk = min(k, M)
    # center on p2's mean: the |a|^2 + |b|^2 - 2ab expansion loses digits far from the origin
    valid2 = torch.arange(M, device=p1.device)[None, :] < lengths2[:, None]
    if exact:
        p1, p2 = p1.double(), p2.double()
    denom = lengths2.clamp_min(1).to(p2.dtype)[:, None]
    center = (p2 * valid2.unsqueeze(-1)).sum(1) / denom
    a = p1 - center[:, None]
    b = p2 - center[:, None]
    b2 = (b * b).sum(-1)
    chunk = max(1, CHUNK_ELEMS // max(1, B * M))
    bt = b.transpose(1, 2)
    ragged = not bool(valid2.all())
    for s in range(0, N, chunk):
        q = a[:, s:s + chunk]
        # |q|^2 + |b|^2 - 2 q.b with the product fused into one baddbmm pass
        d2 = torch.baddbmm((q * q).sum(-1, keepdim=True) + b2[:, None, :], q, bt, alpha=-2.0)
        d2.clamp_min_(0)
        if ragged:
            d2.masked_fill_(~valid2[:, None, :], math.inf)
        vals, ids = d2.topk(kk, dim=-1, largest=False, sorted=True)
        ids.masked_fill_(~torch.isfinite(vals), -1)
        idx[:, s:s + chunk, :kk] = ids
        if return_dists:
            dists[:, s:s + chunk, :kk] = vals.masked_fill_(ids < 0, 0)
    valid1 = torch.arange(N, device=p1.device)[None, :] < lengths1[:, None]
    idx.masked_fill_(~valid1.unsqueeze(-1), -1)
    if return_dists:
        dists.masked_fill_(idx < 0, 0)
        return dists, idx
    return idx


def distances_from_indices(p1, p2, idx, max_dist2: float = math.inf):
    """Squared distances (B, N, K) from ``p1`` to ``p2[idx]``, differentiable w.r.t. both.

    Entries with ``idx == -1`` (or farther than ``max_dist2``) get distance 0 and index -1.
    Returns:
        (dists, idx) with the radius mask applied to both.
    """
    diff = p1.unsqueeze(2) - gather_points(p2, idx)
    dists = (diff * diff).sum(-1)
    ok = idx >= 0
    if math.isfinite(max_dist2):
        ok = ok & (dists <= max_dist2)
        idx = idx.masked_fill(~ok, -1)
    return dists * ok.to(dists.dtype), idx


def knn_reference(p1, p2, lengths1, lengths2, k: int, exact: bool = True):
    """Reference for :func:`pcgen.ops.knn`; returns (dists, idx), both (B, N, k)."""
    idx = nearest_indices(p1, p2, lengths1, lengths2, k, exact=exact)
    return distances_from_indices(p1, p2, idx)


def ball_query_reference(p1, p2, lengths1, lengths2, k: int, radius: float):
    """Reference for :func:`pcgen.ops.ball_query`: the k nearest within ``radius``."""
    r2 = float(radius) ** 2
    idx = nearest_indices(p1, p2, lengths1, lengths2, k, r2)
    dists, idx = distances_from_indices(p1, p2, idx, r2)
    # a radius miss in the middle of a row cannot happen (rows are sorted), so -1s are trailing
    return dists, idx


@torch.no_grad()
def farthest_point_sample_reference(points, lengths, n: int, start_idx) -> torch.Tensor:
    """Reference for :func:`pcgen.ops.farthest_point_sample`; returns (B, n) int64, -1 padded."""
    B, N, _ = points.shape
    lengths = _full(lengths, points)
    out = torch.full((B, n), -1, dtype=torch.int64, device=points.device)
    if B == 0 or N == 0 or n == 0:
        return out
    valid = torch.arange(N, device=points.device)[None, :] < lengths[:, None]
    mind = torch.full((B, N), math.inf, dtype=points.dtype, device=points.device)
    mind.masked_fill_(~valid, -1.0)
    cur = start_idx.clone().clamp(0, N - 1)
    rows = torch.arange(B, device=points.device)
    for i in range(n):
        active = lengths > i
        out[:, i] = torch.where(active, cur, torch.full_like(cur, -1))
        p = points[rows, cur]
        d = ((points - p[:, None, :]) ** 2).sum(-1)
        mind = torch.minimum(mind, d).masked_fill_(~valid, -1.0)
        mind[rows, cur] = -1.0  # picked: never again, even where duplicates leave only distance 0
        cur = mind.argmax(-1)
    return out
