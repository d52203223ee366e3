"""Regression targets of the iterative heads: DDPM noise prediction and flow-matching velocity."""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

ErrorNorm = Literal["l2", "l1"]


def _regression(pred: Tensor, target: Tensor, norm: ErrorNorm) -> Tensor:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if norm == "l2":
        return F.mse_loss(pred, target)
    if norm == "l1":
        return F.l1_loss(pred, target)
    raise ValueError(f"unknown norm {norm!r}; expected 'l2' or 'l1'")


def noise_prediction_loss(eps_pred: Tensor, eps: Tensor, norm: ErrorNorm = "l2") -> Tensor:
    """DDPM's simple loss ||ε - ε_θ(x_t, t)|| averaged over every coordinate.

    Args:
        eps_pred: (B, N, 3) predicted noise.
        eps: (B, N, 3) the noise that made x_t.
        norm: "l2" (mean squared error) or "l1" (mean absolute error).

    Returns:
        () scalar.
    """
    return _regression(eps_pred, eps, norm)


def velocity_loss(v_pred: Tensor, v_target: Tensor, norm: ErrorNorm = "l2") -> Tensor:
    """Conditional flow-matching loss ||v_θ(x_t, t) - (x1 - x0)||, averaged.

    Args:
        v_pred: (B, N, 3) predicted velocity.
        v_target: (B, N, 3) the straight-path velocity x1 - x0.
        norm: "l2" or "l1".

    Returns:
        () scalar.
    """
    return _regression(v_pred, v_target, norm)


__all__ = ["noise_prediction_loss", "velocity_loss"]
