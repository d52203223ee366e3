"""Learning-rate rules of the LDM recipe: batch-scaled base LR and linear warm-up.

The warm-up curve is pcgen's one :class:`~pcgen.losses.warmup.LinearWarmup`, the one that also
warms up loss-term weights.
"""

from __future__ import annotations

import torch

from pcgen.losses.warmup import Constant, LinearWarmup

__all__ = ["adamw_with_warmup", "lr_warmup", "scaled_lr"]


def scaled_lr(base_lr: float, batch_size: int, accumulate: int = 1, devices: int = 1,
              scale: bool = True) -> float:
    """LDM's ``lr = base_lr × batch × grad-accumulation × devices``; ``scale=False`` keeps ``base_lr``."""
    return base_lr * batch_size * accumulate * devices if scale else base_lr


def lr_warmup(warmup_steps: int, f_start: float = 1e-6) -> LinearWarmup | Constant:
    """LR multiplier rising linearly from ``f_start`` to 1 over ``warmup_steps`` optimizer steps, then 1
    (constant 1 when ``warmup_steps <= 0``), for ``LambdaLR``.

    The same curve as LDM's ``LambdaLinearScheduler`` with one cycle and ``f_max = f_min = 1``.
    """
    return LinearWarmup(warmup_steps, start=f_start, end=1.0) if warmup_steps > 0 else Constant(1.0)


def adamw_with_warmup(params, lr: float, warmup_steps: int, f_start: float = 1e-6,
                      betas=(0.9, 0.999), weight_decay: float = 0.01) -> dict:
    """Lightning ``configure_optimizers`` dict: AdamW (torch defaults, as LDM) and a per-step ``LambdaLR`` warm-up."""
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_warmup(warmup_steps, f_start))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}
