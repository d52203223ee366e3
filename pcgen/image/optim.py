"""Learning-rate rules of the LDM recipe: batch-scaled base LR and linear warm-up."""

from __future__ import annotations

import torch

__all__ = ["scaled_lr", "warmup_lambda", "adamw_with_warmup"]


def scaled_lr(base_lr: float, batch_size: int, accumulate: int = 1, devices: int = 1,
              scale: bool = True) -> float:
    """LDM's ``lr = base_lr × batch × grad-accumulation × devices``; ``scale=False`` keeps ``base_lr``."""
    return base_lr * batch_size * accumulate * devices if scale else base_lr


def warmup_lambda(warmup_steps: int, f_start: float = 1e-6):
    """LR multiplier rising linearly from ``f_start`` to 1 over ``warmup_steps`` optimizer steps, then 1.

    The same curve as LDM's ``LambdaLinearScheduler`` with one cycle and ``f_max = f_min = 1``.
    """
    def factor(step: int) -> float:
        if warmup_steps <= 0 or step >= warmup_steps:
            return 1.0
        return f_start + (1.0 - f_start) * step / warmup_steps
    return factor


def adamw_with_warmup(params, lr: float, warmup_steps: int, f_start: float = 1e-6,
                      betas=(0.9, 0.999), weight_decay: float = 0.01) -> dict:
    """Lightning ``configure_optimizers`` dict: AdamW (torch defaults, as LDM) and a per-step ``LambdaLR`` warm-up."""
    opt = torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_lambda(warmup_steps, f_start))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step", "frequency": 1}}
