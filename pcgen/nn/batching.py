"""Padded ``(B, N, C)`` batches with ``lengths`` to packed ``(P, C)`` rows and back.

Encoders run their per-point layers on packed rows (the torch-geometric layout: rows plus a
``batch`` vector), so padded points never reach a layer, a norm statistic or a pooling; the
padded layout is rebuilt only where ``pcgen.ops`` wants it, with zeros in the padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pcgen.errors import ShapeError


@dataclass
class Packing:
    """How a padded batch maps to packed rows.

    Attributes:
        lengths: ``(B,)`` int64 valid points per cloud.
        mask: ``(B, N)`` bool, True at valid points.
        batch: ``(P,)`` int64 cloud index of each packed row, ``P = lengths.sum()``.
        offsets: ``(B,)`` int64 row of each cloud's first point.
    """

    lengths: Tensor
    mask: Tensor
    batch: Tensor
    offsets: Tensor

    @classmethod
    def from_lengths(cls, lengths: Tensor, num_points: int) -> "Packing":
        lengths = lengths.to(torch.long)
        arange = torch.arange(num_points, device=lengths.device)
        mask = arange[None, :] < lengths[:, None]
        batch = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
        offsets = torch.cumsum(lengths, 0) - lengths
        return cls(lengths, mask, batch, offsets)

    @property
    def batch_size(self) -> int:
        return self.mask.shape[0]

    @property
    def num_points(self) -> int:
        return self.mask.shape[1]

    def pack(self, x: Tensor) -> Tensor:
        """``(B, N, C)`` padded -> ``(P, C)`` valid rows, cloud by cloud."""
        return x[self.mask]

    def unpack(self, x: Tensor) -> Tensor:
        """``(P, C)`` rows -> ``(B, N, C)`` with zeros at padded positions."""
        out = x.new_zeros(self.batch_size, self.num_points, x.shape[-1])
        return out.masked_scatter(self.mask[..., None], x)

    def to_rows(self, idx: Tensor) -> Tensor:
        """Per-cloud indices ``(B, ...)`` into packed row indices (same shape); -1 stays -1."""
        shape = (-1,) + (1,) * (idx.dim() - 1)
        rows = idx + self.offsets.view(shape)
        return torch.where(idx < 0, idx, rows)


def check_points(points: Tensor, lengths, in_channels: int, weights: nn.Module | None = None) -> Packing:
    """Validate an encoder input and describe its padding.

    Args:
        points: ``(B, N, in_channels)`` float; xyz first, then per-point features.
        lengths: ``(B,)`` valid points per cloud (a tensor or a list), or None for full clouds.
        in_channels: what the encoder was built for (``3 + F``).
        weights: the encoder; its parameters' dtype is the one ``points`` must have.
    Returns:
        the :class:`Packing` of the batch.
    Raises:
        ShapeError: wrong rank, channel count, dtype or lengths.
    """
    if not torch.is_tensor(points) or points.dim() != 3:
        shape = tuple(points.shape) if torch.is_tensor(points) else type(points).__name__
        raise ShapeError(f"points must be a (B, N, {in_channels}) tensor, got {shape}")
    if not points.is_floating_point():
        raise ShapeError(f"points must be floating point, got {points.dtype}")
    first = next(weights.parameters(), None) if weights is not None else None
    if first is not None and points.dtype != first.dtype:
        raise ShapeError(f"points are {points.dtype} but the encoder's weights are {first.dtype}: convert one "
                         f"(points.to({first.dtype}) or encoder.to({points.dtype}))")
    B, N, C = points.shape
    if C != in_channels:
        raise ShapeError(f"points have {C} channels but the encoder was built with in_channels={in_channels}")
    if B == 0 or N == 0:
        raise ShapeError(f"points must hold at least one cloud with one point, got {(B, N, C)}")
    if lengths is None:
        lengths = torch.full((B,), N, dtype=torch.long, device=points.device)
    else:
        lengths = torch.as_tensor(lengths)
        if lengths.shape != (B,):
            raise ShapeError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
        if lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise ShapeError(f"lengths must be integers, got {lengths.dtype}")
        if bool((lengths < 1).any()) or bool((lengths > N).any()):
            raise ShapeError(f"lengths must lie in [1, {N}], got {lengths.tolist()}")
        lengths = lengths.to(device=points.device, dtype=torch.long)
    return Packing.from_lengths(lengths, N)
