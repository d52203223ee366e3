"""Range checks for composed configurations (fill, evaluate), applied once after composing.

A value of the wrong sign, zero or NaN in gap detection silently finds no gaps (exit 0 with a
wrong answer), so every numeric field is checked here and reported by its dotted key.
"""

from __future__ import annotations

import math

from pcgen.errors import ConfigError
from pcgen.options import MAX_SEED, check_range

COMBINE = ("consensus", "medoid")            # combine: how K > 1 draws become the written fill
ATTRIBUTE_DONORS = ("neighbours", "source")  # output.attributes: who lends a new point its attributes

# dotted key -> (lowest, low bound open?, highest, may be None)
_RULES: dict[str, tuple[float, bool, float, bool]] = {
    "gaps.cell_size": (0.0, True, 1e9, True),
    "gaps.min_expected_points": (0.0, True, 1e9, False),
    "gaps.neighbourhood_cells": (1, False, 10_000, False),
    "gaps.density_ratio": (0.0, True, 1.0, False),
    "gaps.rim_ratio": (0.0, False, 1.0, False),
    "gaps.min_gap_cells": (1, False, 1e9, False),
    "gaps.exclude_buffer_cells": (0, False, 10_000, False),
    "gaps.footprint_concavity": (0.0, False, 1.0, False),
    "gaps.footprint_inset_cells": (0.0, False, 10_000, False),
    "gaps.outline_radius_cells": (0.0, False, 2.0, False),
    "context.scale": (0.0, True, 1e6, False),
    "context.min_half_size": (0.0, True, 1e9, False),
    "context.min_points": (1, False, 1e9, False),
    "context.max_points": (1, False, 1e9, False),
    "samples": (1, False, 1_000, False),
    "seed": (0, False, MAX_SEED, False),
}


def _numbers(cfg, prefix: str = ""):
    """(dotted key, value) of every number in a dataclass tree, for the NaN/inf net."""
    import dataclasses

    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from _numbers(value, f"{prefix}{f.name}.")
        elif isinstance(value, float):
            yield f"{prefix}{f.name}", value


def _get(cfg, key: str):
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def check_fill_config(cfg):
    """Raise ``ConfigError`` naming the first out-of-range value; returns ``cfg`` unchanged.

    Keys without a rule here (new settings) are still refused when NaN or infinite.
    """
    for key, value in _numbers(cfg):
        if not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
    for key, (low, open_low, high, nullable) in _RULES.items():
        check_range(key, _get(cfg, key), low, high, open_low=open_low, nullable=nullable)
    if cfg.context.max_points < cfg.context.min_points:
        raise ConfigError(f"context.max_points ({cfg.context.max_points}) must be >= context.min_points "
                          f"({cfg.context.min_points})")
    for c in cfg.gaps.exclude_classes:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 255:
            raise ConfigError(f"gaps.exclude_classes must be ASPRS classes 0..255, got {c!r}")
    if cfg.combine not in COMBINE:
        raise ConfigError(f"combine must be one of {', '.join(COMBINE)}, got {cfg.combine!r}")
    from pcgen.io.cloud import extra_dimension_problem

    for key in ("output.generated_dim", "output.uncertainty_dim"):
        problem = extra_dimension_problem(_get(cfg, key))
        if problem is not None:
            raise ConfigError(f"{key} {problem}")
    if cfg.output.generated_dim == cfg.output.uncertainty_dim:
        raise ConfigError(f"output.generated_dim and output.uncertainty_dim are both "
                          f"{cfg.output.generated_dim!r}; they name two dimensions")
    if cfg.output.attributes not in ATTRIBUTE_DONORS:
        raise ConfigError(f"output.attributes must be one of {', '.join(ATTRIBUTE_DONORS)}, "
                          f"got {cfg.output.attributes!r}")
    code = cfg.output.class_code
    if code is not None and (isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255):
        raise ConfigError(f"output.class_code must be 0..255, got {code!r}")
    return cfg
