"""Exactly ``count`` rows out of ``n``: the one fixed-size resampler of pcgen.

Training examples, the metric frame's tiles, the generation metrics and the copy baselines all
need a point set of a fixed size, whatever size they were handed. They share this one rule, so
a tile with too few points looks the same to a model, a metric and a baseline. It returns
indices, not rows, so callers carry attributes (classes, source points) along with the xyz.

It lives in ``pcgen.data`` because drawing a sample is a data transform (the lowest layer that
needs it; metrics and tasks import downwards), and in a module of its own because it is numpy
alone: the metrics and the baselines must not pay for importing torch to draw indices.
"""

from __future__ import annotations

import numpy as np

from pcgen.errors import ShapeError


def resample_index(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count,) int64 indices into ``n`` rows: a random subset, or every row plus random repeats.

    With ``n >= count`` the draw is ``rng.choice(n, count, replace=False)`` (no row twice).
    With ``n < count`` every row appears once, in random order, followed by ``count - n`` rows
    drawn uniformly with replacement. Repeats rather than padding keep every row a real point,
    so Chamfer/EMD targets stay valid; keeping every row before repeating any keeps the whole
    shape of a sparse set, which a plain draw with replacement (about 37 % of rows lost when
    ``n == count``) does not.

    Args:
        n: number of rows to draw from.
        count: number of indices wanted.
        rng: numpy Generator, the only source of randomness.

    Returns:
        (count,) int64 array of values in ``[0, n)``.

    Raises:
        ShapeError: ``count < 0`` or not a whole number, or ``count > 0`` rows wanted from an
            empty set (callers that read user data check for empty inputs first and report
            them as input errors).
    """
    if any(isinstance(v, (bool, np.bool_)) or not float(v).is_integer() for v in (n, count)):
        raise ShapeError(f"cannot draw {count!r} indices from {n!r} rows: whole numbers only")  # int() cut 2.5 to 2
    n, count = int(n), int(count)
    if count < 0 or n < 0:
        raise ShapeError(f"cannot draw {count} indices from {n} rows")
    if n == 0 and count > 0:
        raise ShapeError(f"cannot draw {count} indices from an empty set")
    if n >= count:
        return rng.choice(n, count, replace=False)
    return np.concatenate([rng.permutation(n), rng.integers(0, n, count - n)])


__all__ = ["resample_index"]
