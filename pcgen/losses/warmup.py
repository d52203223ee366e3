"""Warm-up and annealing multipliers, ``step -> float``: loss-term weights and learning rates.

The one home of pcgen's warm-ups: ``WeightedLoss`` scales a term by them (KL warm-up, cyclical
annealing) and the image track's optimizers wrap them in ``torch.optim.lr_scheduler.LambdaLR``
(LR warm-up). Diffusion noise schedules are another thing: :mod:`pcgen.models.noise_schedule`.
Hydra builds these with ``_target_``. They are plain classes, not dataclasses, on purpose:
OmegaConf turns dataclass instances nested in a config into structured configs, which would strip
the ``__call__``.
"""

from __future__ import annotations

import math

from pcgen.errors import ConfigError


class Constant:
    """Always ``value`` (1 by default): a term whose weight never changes."""

    def __init__(self, value: float = 1.0):
        self.value = float(value)

    def __call__(self, step: int) -> float:
        return self.value

    def __repr__(self) -> str:
        return f"Constant({self.value})"


class LinearWarmup:
    """Linear ramp from ``start`` to ``end`` over ``steps`` steps after ``delay`` steps, then flat.

    With ``cycles > 1`` the ramp restarts every ``steps`` steps (cyclical KL annealing, Fu et
    al. 2019), which revisits low-β phases so the decoder keeps using the latent.
    """

    def __init__(self, steps: int, start: float = 0.0, end: float = 1.0, delay: int = 0, cycles: int = 1):
        if steps <= 0 or delay < 0 or cycles < 1:
            raise ConfigError(f"LinearWarmup needs steps > 0, delay >= 0, cycles >= 1; got "
                              f"steps={steps}, delay={delay}, cycles={cycles}")
        self.steps, self.start, self.end = int(steps), float(start), float(end)
        self.delay, self.cycles = int(delay), int(cycles)

    def __call__(self, step: int) -> float:
        s = step - self.delay
        if s <= 0:
            return self.start
        if s >= self.steps * self.cycles:
            return self.end
        return self.start + (self.end - self.start) * (s % self.steps) / self.steps

    def __repr__(self) -> str:
        return (f"LinearWarmup(steps={self.steps}, start={self.start}, end={self.end}, "
                f"delay={self.delay}, cycles={self.cycles})")


class Cosine:
    """Half-cosine from ``start`` to ``end`` over ``steps`` steps after ``delay``, then flat.

    Smooth at both ends, so the loss sees no kink when the ramp starts or stops.
    """

    def __init__(self, steps: int, start: float = 0.0, end: float = 1.0, delay: int = 0):
        if steps < 1 or delay < 0:  # steps=0.5 passed a "> 0" check, then divided by int(0.5) = 0
            raise ConfigError(f"Cosine needs steps >= 1 and delay >= 0; got steps={steps}, delay={delay}")
        self.steps, self.start, self.end, self.delay = int(steps), float(start), float(end), int(delay)

    def __call__(self, step: int) -> float:
        s = min(max(step - self.delay, 0), self.steps)
        return self.end + (self.start - self.end) * 0.5 * (1 + math.cos(math.pi * s / self.steps))

    def __repr__(self) -> str:
        return f"Cosine(steps={self.steps}, start={self.start}, end={self.end}, delay={self.delay})"


__all__ = ["Constant", "LinearWarmup", "Cosine"]
