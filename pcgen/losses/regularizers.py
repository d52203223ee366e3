"""Weight-free regularizers that heads add as named terms."""

from __future__ import annotations

import torch
from torch import Tensor


def orthogonality_loss(transform: Tensor) -> Tensor:
    """PointNet's feature-transform regularizer ||I - A Aᵀ||²_F, averaged over the batch.

    Keeps the learned k×k alignment close to orthogonal so it cannot lose information.

    Args:
        transform: (B, k, k).

    Returns:
        () scalar.
    """
    k = transform.shape[-1]
    eye = torch.eye(k, device=transform.device, dtype=transform.dtype)
    diff = transform @ transform.transpose(1, 2) - eye
    return diff.pow(2).sum(dim=(1, 2)).mean()


def latent_l2(z: Tensor) -> Tensor:
    """Mean squared norm of latent codes, for deterministic autoencoders that need a bounded latent.

    Args:
        z: (B, L).

    Returns:
        () scalar.
    """
    return z.pow(2).sum(dim=1).mean()


__all__ = ["orthogonality_loss", "latent_l2"]
