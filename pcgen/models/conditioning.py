"""Gap-filling condition: the partial cloud around a gap plus the gap's xy box, as one vector.

Every head handles conditional generation the same way, through this module:

* the target points (inside the gap) are moved into a *box frame* where the gap's xy extent is
  [-1, 1]² and z is unchanged, so the head learns one shape prior for "points in a unit gap"
  whatever the gap's position and size; samples are mapped back and clamped into the box;
* the context is centred on the gap (translated, not rescaled, so an encoder's radii and kNN
  keep their meaning) and encoded by a shared encoder; its global feature, concatenated with
  the box (centre and log half-size), is the condition vector ``c``
  that enters the head's networks through their ``cond`` argument (FiLM or concat).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcgen.errors import ShapeError


def check_condition(context: Tensor | None, gap_box: Tensor | None, batch_size: int | None = None) -> None:
    """Raise ``ShapeError`` unless context (B, M, 3) and gap_box (B, 4) are consistent (``TypeError`` if only one is given)."""
    if context is None and gap_box is None:
        return
    if context is None or gap_box is None:
        raise TypeError("conditional generation needs both `context` (B, M, 3) and `gap_box` (B, 4)")
    if context.dim() != 3 or context.shape[-1] != 3 or context.shape[1] == 0:
        raise ShapeError(f"context must be (B, M, 3) with M > 0, got {tuple(context.shape)}")
    if gap_box.dim() != 2 or gap_box.shape[-1] != 4 or gap_box.shape[0] != context.shape[0]:
        raise ShapeError(f"gap_box must be (B, 4) matching context's B={context.shape[0]}, "
                         f"got {tuple(gap_box.shape)}")
    if batch_size is not None and context.shape[0] != batch_size:
        raise ShapeError(f"context has batch {context.shape[0]} but {batch_size} samples were asked for")
    if not bool(((gap_box[:, 2] > gap_box[:, 0]) & (gap_box[:, 3] > gap_box[:, 1])).all()):
        raise ShapeError("gap_box rows must be (xmin, ymin, xmax, ymax) with xmax > xmin and ymax > ymin")


def _box_center_half(gap_box: Tensor) -> tuple[Tensor, Tensor]:
    center = 0.5 * (gap_box[:, :2] + gap_box[:, 2:])
    half = 0.5 * (gap_box[:, 2:] - gap_box[:, :2])
    return center[:, None, :], half[:, None, :]


def to_box_frame(points: Tensor, gap_box: Tensor) -> Tensor:
    """Map (B, N, 3) points so the gap's xy box becomes [-1, 1]²; z is unchanged."""
    center, half = _box_center_half(gap_box.to(points.dtype))
    return torch.cat([(points[..., :2] - center) / half, points[..., 2:]], dim=-1)


def from_box_frame(points: Tensor, gap_box: Tensor, clamp: bool = True) -> Tensor:
    """Inverse of :func:`to_box_frame`; ``clamp`` keeps xy inside the gap (the task's promise)."""
    center, half = _box_center_half(gap_box.to(points.dtype))
    xy = points[..., :2].clamp(-1.0, 1.0) if clamp else points[..., :2]
    return torch.cat([xy * half + center, points[..., 2:]], dim=-1)


class ContextEncoder(nn.Module):
    """Encode (context, gap_box) into the condition vector c (B, out_dim).

    Args:
        encoder: a ``pcgen.nn`` encoder (``forward(points, lengths, t_emb, cond)``, ``global_dim``)
            built without time/cond inputs; shared weights are fine (pass the same module).
        out_dim: size of c.
        hidden: width of the fusion MLP.
        clamp: clamp generated xy into the gap box when mapping samples back.
    """

    def __init__(self, encoder: nn.Module, out_dim: int = 256, hidden: int = 256, clamp: bool = True):
        super().__init__()
        self.encoder = encoder
        self.out_dim = out_dim
        self.clamp = clamp
        self.fuse = nn.Sequential(
            nn.Linear(encoder.global_dim + 4, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))

    def forward(self, context: Tensor, gap_box: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Args: context (B, M, 3), gap_box (B, 4), lengths (B,) valid context points.
        Returns: c (B, out_dim)."""
        center, half = _box_center_half(gap_box.to(context.dtype))
        # centred on the gap but not rescaled: the encoder's radii / kNN keep their metric meaning
        local = torch.cat([context[..., :2] - center, context[..., 2:]], dim=-1)
        feat = self.encoder(local, lengths=lengths).global_feature
        box = torch.cat([center[:, 0], half[:, 0].log()], dim=-1)  # position and log-size of the gap
        return self.fuse(torch.cat([feat, box], dim=-1))


def prepare_batch(context_encoder: ContextEncoder | None, batch: dict) -> tuple[Tensor, Tensor | None]:
    """Target points in the head's working frame and the condition vector (or None).

    Args:
        context_encoder: the head's context_encoder, or None for an unconditional head.
        batch: {"points": (B, N, 3)} plus, for conditional heads, "context" (B, M, 3), "gap_box" (B, 4).

    Returns:
        (points (B, N, 3) in the working frame, c (B, C) or None)
    """
    points = batch["points"]
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ShapeError(f"batch['points'] must be (B, N, 3), got {tuple(points.shape)}")
    if context_encoder is None:
        if batch.get("context") is not None:
            raise TypeError("this head is unconditional; build it with a context_encoder to use `context`")
        return points, None
    if batch.get("context") is None or batch.get("gap_box") is None:
        raise TypeError("this head is conditional: the batch needs 'context' and 'gap_box'")
    check_condition(batch["context"], batch["gap_box"], points.shape[0])
    cond = context_encoder(batch["context"], batch["gap_box"])
    return to_box_frame(points, batch["gap_box"]), cond


def prepare_sampling(context_encoder: ContextEncoder | None, num_samples: int, context: Tensor | None,
                     gap_box: Tensor | None) -> Tensor | None:
    """The condition vector for ``sample(...)``, after checking it matches the head's kind."""
    if context_encoder is None:
        if context is not None or gap_box is not None:
            raise TypeError("this head is unconditional; build it with a context_encoder to use `context`")
        return None
    if context is None or gap_box is None:
        raise TypeError("this head is conditional: sample(...) needs `context` and `gap_box`")
    check_condition(context, gap_box, num_samples)
    return context_encoder(context, gap_box)


def finish_samples(context_encoder: ContextEncoder | None, points: Tensor, gap_box: Tensor | None) -> Tensor:
    """Map generated points from the working frame back to the caller's normalized frame."""
    if context_encoder is None:
        return points
    return from_box_frame(points, gap_box, clamp=context_encoder.clamp)


__all__ = ["ContextEncoder", "check_condition", "to_box_frame", "from_box_frame",
           "prepare_batch", "prepare_sampling", "finish_samples"]
