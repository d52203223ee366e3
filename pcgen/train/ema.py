"""Exponential moving average of a head's weights, kept inside the LightningModule.

A submodule (rather than a callback holding its own tensors) puts the average into the
checkpoint's ``state_dict`` under ``ema.module.*``, so exact resume and ``load_head`` need no
extra plumbing, and DDP ignores it because its parameters do not require gradients.
Built on ``torch.optim.swa_utils.AveragedModel`` instead of a hand-written average. The decay warms
up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (as LDM's LitEma does): with a fixed
0.999, a 300-step CPU run would evaluate weights that are still ~75 % the untrained network.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def warmup_decay(decay: float, num_updates: int) -> float:
    """The decay used for the update after ``num_updates`` earlier ones: small at first, then ``decay``."""
    return min(decay, (1.0 + num_updates) / (10.0 + num_updates))


def _warmup_ema_fn(decay: float):
    @torch.no_grad()
    def update(ema_params, model_params, num_averaged) -> None:
        d = warmup_decay(decay, int(num_averaged))
        if torch.is_floating_point(ema_params[0]) or torch.is_complex(ema_params[0]):
            torch._foreach_lerp_(ema_params, model_params, 1.0 - d)
        else:  # integer buffers (BatchNorm's num_batches_tracked)
            for p_ema, p_model in zip(ema_params, model_params, strict=True):
                p_ema.copy_(p_ema * d + p_model * (1.0 - d))

    return update


def make_ema(module: nn.Module, decay: float) -> AveragedModel:
    """Return a frozen EMA copy of ``module`` (parameters and buffers) with the given decay.

    Args:
        module: the trained network; it is deep-copied, not shared.
        decay: weight of the old average per update, in [0, 1). 0.999 suits a few 10k steps.
    """
    if not 0.0 <= decay < 1.0:
        from pcgen.errors import ConfigError

        raise ConfigError(f"ema decay must be in [0, 1), got {decay}")
    ema = AveragedModel(module, multi_avg_fn=_warmup_ema_fn(decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: AveragedModel, module: nn.Module) -> None:
    """Fold the current weights of ``module`` into ``ema`` (the first call copies them)."""
    ema.update_parameters(module)
