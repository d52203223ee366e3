"""Noise schedules and samplers of the LDM recipe, on top of diffusers' schedulers.

LDM's ``"linear"`` schedule is linear in √β: ``β_t = linspace(√β_0, √β_T, T)²`` (float64), which
diffusers calls ``"scaled_linear"``; diffusers' own ``"linear"`` (linear in β) would be a different
schedule with the same endpoints. We hand diffusers the exact float64 betas (``trained_betas``) so
training and both samplers share one schedule.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from diffusers import DDIMScheduler, DDPMScheduler

__all__ = ["ldm_betas", "make_scheduler"]


def ldm_betas(timesteps: int = 1000, linear_start: float = 0.0015, linear_end: float = 0.0155) -> np.ndarray:
    """LDM's "linear" betas ``(T,)`` float64: linear in √β from ``linear_start`` to ``linear_end``."""
    return np.linspace(linear_start ** 0.5, linear_end ** 0.5, timesteps, dtype=np.float64) ** 2


def make_scheduler(kind: Literal["ddpm", "ddim"], betas: np.ndarray) -> DDPMScheduler | DDIMScheduler:
    """A diffusers scheduler on ``betas`` configured as LDM samples latents.

    DDPM uses the fixed-small posterior variance (LDM's ``v_posterior=0``); DDIM uses LDM's
    "uniform" discretisation (``leading`` spacing, offset 1, final ᾱ = ᾱ_0). No clipping: these
    are latents, not pixels.
    """
    common = dict(num_train_timesteps=len(betas), trained_betas=betas.tolist(), clip_sample=False,
                  prediction_type="epsilon")
    if kind == "ddpm":
        return DDPMScheduler(variance_type="fixed_small", **common)
    if kind == "ddim":
        return DDIMScheduler(set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading", **common)
    from pcgen.errors import ConfigError

    raise ConfigError(f"sampler must be 'ddpm' or 'ddim', got {kind!r}")
