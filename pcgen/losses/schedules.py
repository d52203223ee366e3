"""Step-dependent weight multipliers for loss terms (KL warm-up / annealing and the like).

Each schedule is a small callable ``step -> float``; Hydra builds them with ``_target_``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pcgen.errors import ConfigError


@dataclass(frozen=True)
class Constant:
    """Always ``value`` (1 by default): a term whose weight never changes."""

    value: float = 1.0

    def __call__(self, step: int) -> float:
        return float(self.value)


@dataclass(frozen=True)
class LinearWarmup:
    """Linear ramp from ``start`` to ``end`` over ``steps`` steps after ``delay`` steps, then flat.

    With ``cycles > 1`` the ramp restarts every ``steps`` steps (cyclical KL annealing, Fu et
    al. 2019), which revisits low-β phases so the decoder keeps using the latent.
    """

    steps: int
    start: float = 0.0
    end: float = 1.0
    delay: int = 0
    cycles: int = 1

    def __post_init__(self):
        if self.steps <= 0 or self.delay < 0 or self.cycles < 1:
            raise ConfigError(f"LinearWarmup needs steps > 0, delay >= 0, cycles >= 1; got {self}")

    def __call__(self, step: int) -> float:
        s = step - self.delay
        if s <= 0:
            return float(self.start)
        if s < self.steps * self.cycles:
            s %= self.steps
        else:
            return float(self.end)
        return float(self.start + (self.end - self.start) * s / self.steps)


@dataclass(frozen=True)
class Cosine:
    """Half-cosine from ``start`` to ``end`` over ``steps`` steps after ``delay``, then flat.

    Smooth at both ends, so the loss sees no kink when the ramp starts or stops.
    """

    steps: int
    start: float = 0.0
    end: float = 1.0
    delay: int = 0

    def __post_init__(self):
        if self.steps <= 0 or self.delay < 0:
            raise ConfigError(f"Cosine needs steps > 0 and delay >= 0; got {self}")

    def __call__(self, step: int) -> float:
        s = min(max(step - self.delay, 0), self.steps)
        return float(self.end + (self.start - self.end) * 0.5 * (1 + math.cos(math.pi * s / self.steps)))


__all__ = ["Constant", "LinearWarmup", "Cosine"]
