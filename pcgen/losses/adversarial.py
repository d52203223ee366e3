"""GAN objectives: non-saturating (Goodfellow et al.), Wasserstein, and the WGAN-GP gradient penalty.

Each function takes discriminator outputs (logits / critic scores) so the same terms serve
point-space and latent-space (l-GAN) discriminators.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

AdversarialKind = Literal["ns", "wgan"]


def generator_adversarial_loss(fake_scores: Tensor, kind: AdversarialKind = "ns") -> Tensor:
    """Generator objective.

    Args:
        fake_scores: (B,) or (B, 1) discriminator outputs on generated samples.
        kind: "ns" = softplus(-D(G(z))) (non-saturating, logits), "wgan" = -D(G(z)).

    Returns:
        () scalar.
    """
    s = fake_scores.reshape(-1)
    if kind == "ns":
        return F.softplus(-s).mean()
    if kind == "wgan":
        return -s.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}")


def discriminator_adversarial_loss(real_scores: Tensor, fake_scores: Tensor,
                                   kind: AdversarialKind = "ns") -> Tensor:
    """Discriminator / critic objective.

    Args:
        real_scores: (B,) outputs on data.
        fake_scores: (B,) outputs on generated samples (detached by the caller).
        kind: "ns" = softplus(-D(x)) + softplus(D(G(z))), "wgan" = D(G(z)) - D(x).

    Returns:
        () scalar.
    """
    r, f = real_scores.reshape(-1), fake_scores.reshape(-1)
    if kind == "ns":
        return F.softplus(-r).mean() + F.softplus(f).mean()
    if kind == "wgan":
        return f.mean() - r.mean()
    raise ValueError(f"unknown adversarial loss {kind!r}")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None, target_norm: float = 1.0) -> Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): (||∇D(x̂)|| - 1)² on random interpolates.

    Point clouds have no canonical point order, so interpolation pairs points by index, as in
    the r-GAN/l-GAN point-cloud GANs; the penalty only needs x̂ to cover the region between the
    two distributions, not a meaningful correspondence.

    Args:
        critic: maps (B, ...) samples to (B,) scores; called with gradients enabled.
        real: (B, ...) data samples (points (B, N, 3) or latents (B, L)).
        fake: same shape, generated samples.
        generator: RNG for the interpolation weights.
        target_norm: the Lipschitz target (1 in the paper).

    Returns:
        () scalar, differentiable in the critic's parameters (double backward).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} must match for the penalty")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    alpha = torch.rand(shape, generator=generator, device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    with torch.enable_grad():
        scores = critic(x_hat)
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(dim=1)
    return (norm - target_norm).pow(2).mean()


__all__ = ["generator_adversarial_loss", "discriminator_adversarial_loss", "gradient_penalty"]
