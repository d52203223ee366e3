"""KL divergence of a diagonal Gaussian posterior from the standard normal prior, with free bits."""

from __future__ import annotations

import torch
from torch import Tensor


def kl_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """Closed-form KL(N(mean, exp(logvar)) || N(0, I)) per latent dimension.

    Args:
        mean: (B, L).
        logvar: (B, L) log-variance.

    Returns:
        (B, L) non-negative KL per sample and dimension, in nats.
    """
    # expm1: exp(v) - 1 - v near v = 0 in float32 lost to cancellation and came out below zero
    return 0.5 * (mean.pow(2) + torch.expm1(logvar) - logvar)


def kl_loss(mean: Tensor, logvar: Tensor, free_bits: float = 0.0) -> Tensor:
    """KL summed over latent dimensions and averaged over the batch, with free bits.

    Free bits (Kingma et al. 2016) keep each dimension's batch-mean KL from being pushed below
    ``free_bits`` nats, so the optimizer stops paying to collapse dimensions into the prior
    (posterior collapse) while still penalizing dimensions above the floor.

    Args:
        mean: (B, L).
        logvar: (B, L).
        free_bits: per-dimension floor in nats (0 gives the plain KL).

    Returns:
        () scalar.
    """
    kl = kl_normal(mean, logvar).mean(dim=0)  # (L,)
    if free_bits > 0:
        kl = torch.clamp(kl, min=free_bits)
    return kl.sum()


__all__ = ["kl_normal", "kl_loss"]
