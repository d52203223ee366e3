"""Chamfer distance as two nearest-neighbour queries (k = 1), with pytorch3d's defaults."""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from pcgen.errors import ConfigError, ShapeError
from pcgen.ops._checks import as_lengths, check_finite, check_pair
from pcgen.ops.knn import knn


class ChamferOutput(NamedTuple):
    """``loss``: reduced as asked (see :func:`chamfer`); ``x_nearest`` (B, N) index in y of each
    x point's nearest neighbour; ``y_nearest`` (B, M) likewise, None when single-directional.
    Indices are -1 for padded points."""

    loss: torch.Tensor | tuple
    x_nearest: torch.Tensor
    y_nearest: torch.Tensor | None


def _reduce_points(d, mask, w, how):
    """Reduce per-point terms (B, N) to (B,), honouring padding and per-point weights."""
    if w is not None:
        d = d * w
        denom = (w * mask).sum(1)
    else:
        denom = mask.sum(1)
    if how == "sum":
        return d.sum(1)
    if how == "mean":
        return d.sum(1) / denom.clamp_min(1e-12 if w is not None else 1)
    if how == "max":
        if d.shape[1] == 0:  # no points on this side: nothing is far
            return d.new_zeros(d.shape[0])
        return d.masked_fill(mask == 0, float("-inf")).amax(1).clamp_min(0)
    raise ConfigError(f"point_reduction must be 'mean', 'sum', 'max' or None, got {how!r}")


def _weights(name: str, w, shape: tuple, like: torch.Tensor) -> torch.Tensor:
    """``w`` as ``like``'s dtype, if it is a tensor of ``shape`` holding finite weights >= 0
    (a weighted mean of negative weights is no distance)."""
    if not isinstance(w, torch.Tensor) or tuple(w.shape) != shape:
        got = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ShapeError(f"{name} must be a {shape} tensor (per cloud, or a tuple of the per-point "
                         f"(B, N) and (B, M) weights), got {got}")
    if not torch.compiler.is_compiling() and w.numel() and not bool(((w >= 0) & torch.isfinite(w)).all()):
        raise ShapeError(f"{name} must be finite and non-negative")
    return w.to(device=like.device, dtype=like.dtype)


def chamfer(x: torch.Tensor, y: torch.Tensor, x_lengths=None, y_lengths=None, weights=None,
            squared: bool = True, single_directional: bool = False,
            point_reduction: Literal["mean", "sum", "max"] | None = "mean",
            batch_reduction: Literal["mean", "sum"] | None = "mean") -> ChamferOutput:
    """Chamfer distance between padded batches of point clouds.

    With the defaults this equals pytorch3d's ``chamfer_distance(x, y)[0]``:
    ``mean_b [ mean_i min_j |x_i - y_j|^2 + mean_j min_i |x_i - y_j|^2 ]``.

    Args:
        x: (B, N, D) float32/float64.
        y: (B, M, D).
        x_lengths, y_lengths: (B,) valid points per cloud (default: all).
        weights: None; a (B,) tensor of per-cloud weights (as pytorch3d: the batch mean divides by
            their sum); or a tuple ``(x_weights (B, N), y_weights (B, M) or None)`` of per-point
            weights (the point mean becomes a weighted mean). Finite and >= 0.
        squared: squared distances (default) or plain Euclidean ones.
        single_directional: only the x -> y term.
        point_reduction: "mean", "sum", "max" or None (per-point terms returned as a tuple
            ``(x_terms (B, N), y_terms (B, M) or None)``; needs batch_reduction None).
        batch_reduction: "mean", "sum" or None (per-cloud (B,) loss).
    Returns:
        ChamferOutput(loss, x_nearest (B, N), y_nearest (B, M) or None). A cloud with points
        against an empty one (length 0) has an infinite loss (pytorch3d gives 0, a perfect
        match); two empty clouds give 0.
    """
    check_pair(x, y, ("x", "y"))
    xl = as_lengths("x_lengths", x_lengths, x)
    yl = as_lengths("y_lengths", y_lengths, y)
    if batch_reduction not in ("mean", "sum", None):
        raise ConfigError(f"batch_reduction must be 'mean', 'sum' or None, got {batch_reduction!r}")
    if point_reduction is None and batch_reduction is not None:
        raise ConfigError("point_reduction=None needs batch_reduction=None")
    B, N, _ = x.shape
    M = y.shape[1]
    check_finite("x", x)  # a NaN point made the loss NaN, inf or silently dropped, by cloud size
    check_finite("y", y)
    cloud_w = wx = wy = None
    if isinstance(weights, tuple) and len(weights) == 2:
        wx = _weights("per-point weights of x", weights[0], (B, N), x)
        wy = None if weights[1] is None else _weights("per-point weights of y", weights[1], (B, M), x)
    elif weights is not None:
        cloud_w = _weights("weights", weights, (B,), x)

    def one_side(a, b, al, bl, w):
        d, idx = knn(a, b, 1, al, bl)
        d, idx = d[..., 0], idx[..., 0]
        if not squared:
            # clamp keeps the gradient finite (zero) for coincident points
            d = d.clamp_min(1e-30).sqrt() * (idx >= 0).to(d.dtype)
        mask = (torch.arange(a.shape[1], device=a.device)[None] < al[:, None]).to(d.dtype)
        # a point of a cloud whose partner is empty has no nearest point: infinitely far, not 0
        d = torch.where((idx < 0) & (mask > 0), torch.full_like(d, float("inf")), d * mask)
        return d, idx, mask

    dx, ix, mx = one_side(x, y, xl, yl, wx)
    if single_directional:
        dy = iy = my = None
    else:
        dy, iy, my = one_side(y, x, yl, xl, wy)

    if point_reduction is None:
        if wx is not None:
            dx = dx * wx
            dy = dy * wy if dy is not None and wy is not None else dy
        if cloud_w is not None:
            dx = dx * cloud_w[:, None]
            dy = dy * cloud_w[:, None] if dy is not None else None
        return ChamferOutput((dx, dy), ix, iy)

    loss = _reduce_points(dx, mx, wx, point_reduction)
    if dy is not None:
        loss = loss + _reduce_points(dy, my, wy, point_reduction)
    if cloud_w is not None:
        loss = loss * cloud_w
    if batch_reduction is not None:
        total = loss.sum()
        if batch_reduction == "mean":
            # all-zero cloud weights give 0 (with a gradient), as pytorch3d does, not 0/0
            div = cloud_w.sum().clamp_min(torch.finfo(loss.dtype).tiny) if cloud_w is not None else max(B, 1)
            total = total / div
        loss = total
    return ChamferOutput(loss, ix, iy)
