"""Diffusion noise schedules (β₁..β_T) and the closed forms the diffusion heads need.

The one noise-schedule wrapper of pcgen, shared by the point-cloud ``DiffusionHead`` and the
image track's latent diffusion. The β values and the samplers come from diffusers'
``DDPMScheduler``/``DDIMScheduler`` (the well-kept implementations of ancestral DDPM and DDIM
with η and any step count); this class owns one configuration, hands out fresh scheduler objects
per sampling call (diffusers' schedulers keep mutable timestep state, so sharing one across calls
or threads would race), and keeps ᾱ as a buffer for the training-time closed forms q(x_t | x₀)
and x̂₀(x_t, ε).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import Tensor, nn

from pcgen.errors import ConfigError

ScheduleKind = Literal["linear", "cosine", "sqrt_linear"]
Spacing = Literal["trailing", "leading"]
_DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


def sqrt_linear_betas(num_steps: int = 1000, beta_start: float = 0.0015,
                      beta_end: float = 0.0155) -> np.ndarray:
    """β ``(T,)`` float64 linear in √β from ``beta_start`` to ``beta_end``: LDM's "linear" schedule.

    diffusers calls it ``"scaled_linear"`` but computes it in float32; diffusers' own ``"linear"``
    (linear in β) is a different schedule with the same endpoints.
    """
    return np.linspace(beta_start ** 0.5, beta_end ** 0.5, num_steps, dtype=np.float64) ** 2


class NoiseSchedule(nn.Module):
    """A variance schedule β₁..β_T with ᾱ_t = Π α_s, and the samplers that follow it.

    Args:
        kind: "linear" (Ho et al. 2020, β from ``beta_start`` to ``beta_end``), "cosine"
            (Nichol & Dhariwal 2021, β capped at 0.999) or "sqrt_linear" (Rombach et al. 2022,
            linear in √β, :func:`sqrt_linear_betas`; ᾱ is kept in float64, as LDM computes it).
        num_steps: T.
        beta_start, beta_end: endpoints of "linear" and "sqrt_linear" (ignored by "cosine").
        clip_sample: clamp x̂₀ to [-clip_sample, clip_sample] while sampling; None disables.
            pcgen's frames (unit sphere, unit cube, gap box frame) all lie in [-1, 1], and without the
            clamp the first steps divide ε-errors by √ᾱ_T (≈ 5e-5 for the cosine schedule), so
            an imperfect network's samples blow up. Latents (the image track) are not clipped.
        spacing: which T-step timesteps a shorter sampler visits. "trailing": steps end at
            t = T - 1 and DDIM's last step lands on x̂₀ (ᾱ_0 := 1). "leading": LDM's "uniform"
            discretisation (DDIM offset by one step, its last step to the true ᾱ_0).
    """

    def __init__(self, kind: ScheduleKind = "linear", num_steps: int = 1000, beta_start: float = 1e-4,
                 beta_end: float = 0.02, clip_sample: float | None = 1.0, spacing: Spacing = "trailing"):
        super().__init__()
        if kind not in (*_DIFFUSERS_NAME, "sqrt_linear"):
            raise ConfigError(f"noise schedule must be 'linear', 'cosine' or 'sqrt_linear', got {kind!r}")
        if spacing not in ("trailing", "leading"):
            raise ConfigError(f"noise schedule spacing must be 'trailing' or 'leading', got {spacing!r}")
        if num_steps < 2:
            raise ConfigError(f"num_steps must be >= 2, got {num_steps}")
        if not 0 < beta_start < beta_end < 1:
            raise ConfigError(f"need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
        self.kind, self.num_steps, self.spacing = kind, num_steps, spacing
        self._config = {"num_train_timesteps": num_steps, "clip_sample": clip_sample is not None,
                        "clip_sample_range": float(clip_sample or 1.0), "prediction_type": "epsilon",
                        "timestep_spacing": spacing}
        if kind == "sqrt_linear":
            betas64 = sqrt_linear_betas(num_steps, beta_start, beta_end)
            self._config["trained_betas"] = betas64.tolist()
            alphas_cumprod = torch.from_numpy(np.cumprod(1.0 - betas64))
        else:
            self._config.update(beta_start=beta_start, beta_end=beta_end, beta_schedule=_DIFFUSERS_NAME[kind])
        # the samplers' extra settings; DDPM's "fixed_small" is the posterior variance β̃_t
        self._ddpm = {"variance_type": "fixed_small"}
        self._ddim = ({"set_alpha_to_one": True} if spacing == "trailing"
                      else {"set_alpha_to_one": False, "steps_offset": 1})
        ref = DDPMScheduler(**self._config, **self._ddpm)
        if kind != "sqrt_linear":
            alphas_cumprod = ref.alphas_cumprod.clone()
        self.register_buffer("betas", ref.betas.clone(), persistent=False)
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)

    def _abar(self, t: Tensor, like: Tensor, previous: bool = False) -> Tensor:
        """ᾱ_t (or ᾱ_{t-1}, with ᾱ_{-1} := 1) shaped to broadcast against ``like`` (B, ...).

        In the wider of ``like``'s dtype and the buffer's, so a float64 ᾱ is square-rooted before
        it is rounded to the data's dtype; callers cast their result back to ``like.dtype``.
        """
        abar = self.alphas_cumprod.to(like.device)
        if previous:
            abar = torch.cat([abar.new_ones(1), abar[:-1]])
        dtype = torch.promote_types(abar.dtype, like.dtype)
        return abar[t].to(dtype).view(-1, *([1] * (like.dim() - 1)))

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """Sample q(x_t | x₀) = N(√ᾱ_t x₀, (1 - ᾱ_t) I).

        Args:
            x0: (B, ...) clean data.
            noise: same shape, ε ~ N(0, I).
            t: (B,) integer timesteps in [0, T).

        Returns:
            x_t, same shape and dtype as x0.
        """
        abar = self._abar(t, x0)
        return abar.sqrt().to(x0.dtype) * x0 + (1 - abar).sqrt().to(x0.dtype) * noise

    def predict_x0(self, x_t: Tensor, eps: Tensor, t: Tensor) -> Tensor:
        """x̂₀ = (x_t - √(1-ᾱ_t) ε) / √ᾱ_t: the clean sample implied by a noise prediction."""
        abar = self._abar(t, x_t)
        return ((x_t - (1 - abar).sqrt() * eps) / abar.sqrt()).to(x_t.dtype)

    def posterior_mean(self, x0: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Mean of q(x_{t-1} | x_t, x₀) (Ho et al. eq. 7), the ancestral step's deterministic part."""
        abar, abar_prev = self._abar(t, x_t), self._abar(t, x_t, previous=True)
        beta = 1 - abar / abar_prev
        mean = (abar_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - abar_prev) * x_t) / (1 - abar)
        return mean.to(x_t.dtype)

    def ddpm(self) -> DDPMScheduler:
        """A fresh ancestral sampler (posterior variance β̃_t, "fixed_small")."""
        return DDPMScheduler(**self._config, **self._ddpm)

    def ddim(self) -> DDIMScheduler:
        """A fresh DDIM sampler (see ``spacing`` for its timesteps and last step)."""
        return DDIMScheduler(**self._config, **self._ddim)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, num_steps={self.num_steps}, spacing={self.spacing!r}"


__all__ = ["NoiseSchedule", "sqrt_linear_betas"]
