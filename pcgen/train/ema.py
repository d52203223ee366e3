"""Exponential moving average of a head's weights, kept inside the LightningModule.

A submodule (rather than a callback holding its own tensors) puts the average into the
checkpoint's ``state_dict`` under ``ema.module.*``, so exact resume and ``load_head`` need no
extra plumbing, and DDP ignores it because its parameters do not require gradients.
Built on ``torch.optim.swa_utils.AveragedModel`` instead of a hand-written average.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def make_ema(module: nn.Module, decay: float) -> AveragedModel:
    """Return a frozen EMA copy of ``module`` (parameters and buffers) with the given decay.

    Args:
        module: the trained network; it is deep-copied, not shared.
        decay: weight of the old average per update, in [0, 1). 0.999 suits a few 10k steps.
    """
    if not 0.0 <= decay < 1.0:
        from pcgen.errors import ConfigError

        raise ConfigError(f"ema decay must be in [0, 1), got {decay}")
    ema = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: AveragedModel, module: nn.Module) -> None:
    """Fold the current weights of ``module`` into ``ema`` (the first call copies them)."""
    ema.update_parameters(module)
