"""DDPM noise schedules (linear, cosine) and the closed forms the diffusion head needs.

The β values and the samplers come from diffusers' ``DDPMScheduler``/``DDIMScheduler`` (the
well-kept implementations of ancestral DDPM and DDIM with η and any step count); this class
owns one configuration, hands out fresh scheduler objects per sampling call (diffusers'
schedulers keep mutable timestep state, so sharing one across calls or threads would race),
and keeps ᾱ as a buffer for the training-time closed forms q(x_t | x₀) and x̂₀(x_t, ε).
"""

from __future__ import annotations

from typing import Literal

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import Tensor, nn

from pcgen.errors import ConfigError

ScheduleKind = Literal["linear", "cosine"]
_DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


class NoiseSchedule(nn.Module):
    """A variance schedule β₁..β_T with ᾱ_t = Π α_s.

    Args:
        kind: "linear" (Ho et al. 2020, β from ``beta_start`` to ``beta_end``) or "cosine"
            (Nichol & Dhariwal 2021, β capped at 0.999).
        num_steps: T.
        beta_start, beta_end: the linear schedule's endpoints (ignored by "cosine").
        clip_sample: clamp x̂₀ to [-clip_sample, clip_sample] while sampling; None disables.
            pcgen's frames (unit sphere, unit cube, gap box frame) all lie in [-1, 1], and without the
            clamp the first steps divide ε-errors by √ᾱ_T (≈ 5e-5 for the cosine schedule), so
            an imperfect network's samples blow up.
    """

    def __init__(self, kind: ScheduleKind = "linear", num_steps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02, clip_sample: float | None = 1.0):
        super().__init__()
        if kind not in _DIFFUSERS_NAME:
            raise ConfigError(f"noise schedule must be 'linear' or 'cosine', got {kind!r}")
        if num_steps < 2:
            raise ConfigError(f"num_steps must be >= 2, got {num_steps}")
        if not 0 < beta_start < beta_end < 1:
            raise ConfigError(f"need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
        self.kind, self.num_steps = kind, num_steps
        self._config = dict(
            num_train_timesteps=num_steps, beta_start=beta_start, beta_end=beta_end,
            beta_schedule=_DIFFUSERS_NAME[kind], clip_sample=clip_sample is not None,
            clip_sample_range=float(clip_sample or 1.0), prediction_type="epsilon",
            timestep_spacing="trailing")
        ref = DDPMScheduler(**self._config)
        self.register_buffer("betas", ref.betas.clone(), persistent=False)
        self.register_buffer("alphas_cumprod", ref.alphas_cumprod.clone(), persistent=False)

    def _abar(self, t: Tensor, like: Tensor, previous: bool = False) -> Tensor:
        """ᾱ_t (or ᾱ_{t-1}, with ᾱ_{-1} := 1) shaped to broadcast against ``like`` (B, ...)."""
        abar = self.alphas_cumprod.to(like.device)
        if previous:
            abar = torch.cat([abar.new_ones(1), abar[:-1]])
        return abar[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """Sample q(x_t | x₀) = N(√ᾱ_t x₀, (1 - ᾱ_t) I).

        Args:
            x0: (B, ...) clean data.
            noise: same shape, ε ~ N(0, I).
            t: (B,) integer timesteps in [0, T).

        Returns:
            x_t, same shape as x0.
        """
        abar = self._abar(t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, x_t: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """x̂₀ = (x_t - √(1-ᾱ_t) ε) / √ᾱ_t: the clean sample implied by a noise prediction."""
        abar = self._abar(t, x_t)
        return (x_t - (1 - abar).sqrt() * eps) / abar.sqrt()

    def posterior_mean(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Mean of q(x_{t-1} | x_t, x₀) (Ho et al. eq. 7), the ancestral step's deterministic part."""
        abar, abar_prev = self._abar(t, x_t), self._abar(t, x_t, previous=True)
        beta = 1 - abar / abar_prev
        return (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * x_t) / (1 - abar)

    def ddpm(self) -> DDPMScheduler:
        """A fresh ancestral sampler (posterior variance β̃_t, "fixed_small")."""
        return DDPMScheduler(**self._config)

    def ddim(self) -> DDIMScheduler:
        """A fresh DDIM sampler (ᾱ_0 := 1 at the last step, so it ends on x̂₀)."""
        return DDIMScheduler(**self._config, set_alpha_to_one=True)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, num_steps={self.num_steps}"


__all__ = ["NoiseSchedule"]
