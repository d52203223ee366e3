"""Compose a head's named, unweighted terms into one objective with per-term weights and schedules."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import math

import torch
from torch import Tensor

from pcgen.errors import ConfigError
from pcgen.losses.warmup import Constant

Schedule = Callable[[int], float]


@dataclass
class LossOutput:
    """The objective and what went into it.

    Attributes:
        total: () scalar to backpropagate.
        terms: every term the head returned, unweighted and detached (for logging).
        weights: the effective weight (weight × schedule(step)) of each summed term.
    """

    total: Tensor
    terms: dict[str, Tensor]
    weights: dict[str, float]


def _parse(name: str, spec) -> tuple[float, Schedule]:
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return _weight(name, spec), Constant()
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"weight", "schedule"}
        if unknown:
            raise ConfigError(f"loss term {name!r}: unknown keys {sorted(unknown)} (use weight, schedule)")
        return _weight(name, spec.get("weight", 1.0)), _schedule(name, spec.get("schedule"))
    if isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2:
        weight, schedule = spec
        return _weight(name, weight), _schedule(name, schedule)
    raise ConfigError(f"loss term {name!r}: expected a weight, (weight, schedule) or "
                      f"{{weight:, schedule:}}, got {spec!r}")


def _weight(name: str, weight) -> float:
    """A term's weight: a finite number >= 0 (a negative weight would maximise the term)."""
    ok = isinstance(weight, (int, float)) and not isinstance(weight, bool)
    if not ok or not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"loss term {name!r}: the weight must be a finite number >= 0, got {weight!r}")
    return float(weight)


def _schedule(name: str, schedule) -> Schedule:
    """A term's schedule, checked to be a ``step -> float`` now rather than at the first step."""
    if schedule is None:
        return Constant()
    if not callable(schedule):
        raise ConfigError(f"loss term {name!r}: a schedule is a step -> float callable such as "
                          f"LinearWarmup(...), got {schedule!r}")
    return schedule


class WeightedLoss:
    """Weighted sum of named terms: total = Σ_name weight · schedule(step) · term.

    Terms the head returns but the config does not name are still reported (so they can be
    logged) but not summed. A head may return a term as a zero-argument callable instead of a
    value: one costly enough that it is computed only when the config weighs it. A configured term the head did not return is a configuration
    mistake and raises, unless ``require_all=False`` (useful when one config covers the GAN's
    generator and discriminator terms, which arrive in separate calls).

    Args:
        terms: {name: weight | (weight, schedule) | {"weight": w, "schedule": s}}; a schedule is
            any ``step -> float`` such as :class:`pcgen.losses.LinearWarmup`.
        require_all: raise when a configured term is missing from the head's output.
    """

    def __init__(self, terms: Mapping[str, object], require_all: bool = True):
        if not terms:
            raise ConfigError("WeightedLoss needs at least one term")
        self.terms = {name: _parse(name, spec) for name, spec in terms.items()}
        self.require_all = require_all

    def weight(self, name: str, step: int) -> float:
        """Effective weight of ``name`` at ``step``."""
        weight, schedule = self.terms[name]
        return weight * float(schedule(step))

    def __call__(self, values: Mapping[str, Tensor], step: int = 0) -> LossOutput:
        """Sum the configured terms of one head call.

        Args:
            values: {name: () scalar, or a callable returning one} from ``head.loss(batch)`` (or
                generator/discriminator loss).
            step: the global optimizer step, fed to the schedules.

        Returns:
            LossOutput.
        """
        values = {n: v() if callable(v) else v for n, v in values.items() if n in self.terms or not callable(v)}
        missing = [n for n in self.terms if n not in values]
        if missing and self.require_all:
            raise ConfigError(f"loss terms {missing} are configured but the head returned only "
                              f"{sorted(values)}")
        present = [n for n in self.terms if n in values]
        if not present:
            raise ConfigError(f"none of the configured loss terms {sorted(self.terms)} is among "
                              f"the head's terms {sorted(values)}")
        weights = {n: self.weight(n, step) for n in present}
        total = sum((values[n] * w for n, w in weights.items()), start=torch.zeros((), device=values[present[0]].device))
        return LossOutput(total=total, terms={n: v.detach() for n, v in values.items()}, weights=weights)

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={w}" for n, (w, _) in self.terms.items())
        return f"WeightedLoss({parts})"


__all__ = ["WeightedLoss", "LossOutput"]
