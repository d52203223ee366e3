"""k-nearest neighbours and ball query between padded batches of point sets."""

from __future__ import annotations

from typing import NamedTuple

import torch

from pcgen.errors import ShapeError
from pcgen.ops import _ext, reference
from pcgen.ops._checks import as_lengths, check_k, check_pair, check_points, check_radius


_MAX_INDEXED_DIM = 3  # the CPU kernel's grid covers D <= 3; above it BLAS wins


class KNN(NamedTuple):
    """Output of :func:`knn`: ``dists`` (B, N, k) squared distances, ``idx`` (B, N, k) int64."""

    dists: torch.Tensor
    idx: torch.Tensor


class BallQuery(NamedTuple):
    """Output of :func:`ball_query`: ``dists`` (B, N, k) squared, ``idx`` (B, N, k) padded with -1."""

    dists: torch.Tensor
    idx: torch.Tensor


def knn(p1: torch.Tensor, p2: torch.Tensor, k: int, lengths1=None, lengths2=None) -> KNN:
    """The k nearest points of ``p2`` for every point of ``p1``, sorted nearest first.

    Differentiable w.r.t. both point sets through ``dists``. Uses the compiled kernel (a
    uniform grid for D <= 3 on the CPU, tiled brute force on CUDA) when built; on the CPU for
    D > 3 (feature-space kNN) blocked matrix products + topk, in the input dtype, so exact
    near-ties may order differently and, without autograd, ``dists`` carry the rounding of
    |a|^2 + |b|^2 - 2ab (~1e-5 relative in float32). Never builds the full (B, N, M) matrix.
    Coordinates must be finite: NaN gives meaningless neighbours. That is not checked here (a
    check is a device sync on every call inside training loops); pcgen's readers refuse NaN.

    Args:
        p1: (B, N, D) query points, float32 or float64.
        p2: (B, M, D) points to search.
        k: neighbours per query.
        lengths1: (B,) valid points per cloud of ``p1`` (default: all N).
        lengths2: (B,) valid points per cloud of ``p2`` (default: all M).
    Returns:
        KNN(dists (B, N, k) squared distances, idx (B, N, k) int64 indices into ``p2``).
        Where a cloud has fewer than k valid points, and for padded queries, idx is -1 and
        dists is 0.
    """
    check_pair(p1, p2)
    k = check_k(k)
    l1 = as_lengths("lengths1", lengths1, p1)
    l2 = as_lengths("lengths2", lengths2, p2)
    if p1.shape[2] > _MAX_INDEXED_DIM and p1.device.type == "cpu" and p2.shape[1] > 64:
        # feature space (DGCNN): blocked matrix products + topk beat a hand-written loop;
        # distances are recomputed from the neighbours only when a gradient is wanted
        if torch.is_grad_enabled() and (p1.requires_grad or p2.requires_grad):
            dists, idx = reference.knn_reference(p1, p2, l1, l2, k, exact=False)
        else:
            dists, idx = reference.nearest_indices(p1, p2, l1, l2, k, exact=False,
                                                   return_dists=True)
    elif _ext.has_op("knn", p1.device):
        dists, idx = torch.ops.pcgen.knn(p1.contiguous(), p2.contiguous(), l1, l2, k)
    else:
        dists, idx = reference.knn_reference(p1, p2, l1, l2, k)
    return KNN(dists, idx)


def ball_query(p1: torch.Tensor, p2: torch.Tensor, radius: float, k: int, lengths1=None,
               lengths2=None) -> BallQuery:
    """Up to k points of ``p2`` within ``radius`` of each point of ``p1``, nearest first.

    Unlike pytorch3d's ``ball_query`` (the first k in index order), this returns the k
    *nearest* points inside the ball, so the result does not depend on point order.

    Args:
        p1: (B, N, D) query points.
        p2: (B, M, D) points to search.
        radius: ball radius (points with squared distance <= radius**2 count).
        k: maximum neighbours per query.
        lengths1, lengths2: (B,) valid points per cloud (default: all).
    Returns:
        BallQuery(dists (B, N, k) squared distances, 0 where padded; idx (B, N, k), -1 where padded).
    """
    check_pair(p1, p2)
    k = check_k(k)
    radius = check_radius(radius)
    l1 = as_lengths("lengths1", lengths1, p1)
    l2 = as_lengths("lengths2", lengths2, p2)
    if _ext.has_op("ball_query", p1.device):
        dists, idx = torch.ops.pcgen.ball_query(p1.contiguous(), p2.contiguous(), l1, l2, k,
                                                float(radius))
    else:
        dists, idx = reference.ball_query_reference(p1, p2, l1, l2, k, float(radius))
    return BallQuery(dists, idx)


def knn_gather(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather features of neighbours.

    Args:
        x: (B, M, C) features of the searched points.
        idx: (B, N, k) indices from :func:`knn` or :func:`ball_query` (-1 allowed).
    Returns:
        (B, N, k, C), zeros where idx is -1.
    """
    check_points("x", x)
    if not isinstance(idx, torch.Tensor) or idx.dim() != 3 or idx.dtype not in (torch.int32, torch.int64):
        shape = f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, torch.Tensor) else type(idx).__name__
        raise ShapeError(f"idx must be an integer (B, N, k) tensor, got {shape}")
    if idx.shape[0] != x.shape[0] or idx.device != x.device:
        raise ShapeError(f"idx {tuple(idx.shape)} and x {tuple(x.shape)} must share batch size and device")
    if idx.numel() and not torch.compiler.is_compiling() and (int(idx.min()) < -1 or int(idx.max()) >= x.shape[1]):
        raise ShapeError(f"idx must lie in [-1, {x.shape[1] - 1}] (-1 marks padding)")
    return reference.gather_points(x, idx)
