"""Query boxes for `pcgen.io.read`: parse ``bounds`` once, test points and boxes the same way
for EPT, COPC and plain files (closed boxes, as PDAL's and laspy's readers use)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pcgen.errors import ConfigError, InputError


class BoundsMiss(InputError):
    """The query box misses the data's extent (a job over many files may skip such a file)."""


def parse_bounds(bounds: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """``(xmin, ymin, xmax, ymax)`` or ``(xmin, ymin, zmin, xmax, ymax, zmax)`` -> mins, maxs (3,).

    A 2D box leaves z open (``-inf``/``inf``).

    Raises:
        ConfigError: another length, non-numbers, non-finite values or a min above its max.
    """
    if isinstance(bounds, (str, bytes)):  # "1234" read as (1, 2, 3, 4)
        raise ConfigError(f"bounds must be numbers, got {bounds!r}")
    try:
        values = np.asarray([float(v) for v in bounds], dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"bounds must be numbers, got {bounds!r}") from None
    if len(values) == 4:
        mins = np.array([values[0], values[1], -np.inf])
        maxs = np.array([values[2], values[3], np.inf])
    elif len(values) == 6:
        mins, maxs = values[:3], values[3:]
    else:
        raise ConfigError("bounds must be (xmin, ymin, xmax, ymax) or "
                          f"(xmin, ymin, zmin, xmax, ymax, zmax), got {len(values)} values")
    if not np.isfinite(values).all() or (mins > maxs).any():
        raise ConfigError(f"bounds {bounds_text(values)} must be finite with min <= max")
    return mins, maxs


def bounds_text(bounds) -> str:
    return "(" + ", ".join(f"{float(v):.12g}" for v in bounds) + ")"  # :g made 203000.01 "203000"


def in_bounds(xyz: np.ndarray, mins: np.ndarray, maxs: np.ndarray) -> np.ndarray:
    """(N,) bool: rows of ``xyz`` (N, 3) inside the closed box ``[mins, maxs]``."""
    return ((xyz >= mins) & (xyz <= maxs)).all(axis=1)


def in_tile_box(xyz: np.ndarray, mins: np.ndarray, maxs: np.ndarray) -> np.ndarray:
    """(N,) bool: rows of ``xyz`` (N, 3) in the box half-open in x and y (``[min, max)``, as tile
    cores are: a box on tile edges holds whole tiles) and closed in z; what ``pcgen tile
    --bounds`` and ``pcgen fill --bounds`` keep."""
    return ((xyz[:, 0] >= mins[0]) & (xyz[:, 0] < maxs[0]) & (xyz[:, 1] >= mins[1]) & (xyz[:, 1] < maxs[1])
            & (xyz[:, 2] >= mins[2]) & (xyz[:, 2] <= maxs[2]))


def overlaps(lo_a, hi_a, lo_b, hi_b) -> bool:
    """Whether two closed boxes (3D corners) meet."""
    return bool(np.all((np.asarray(lo_a) <= hi_b) & (np.asarray(hi_a) >= lo_b)))


def check_overlap(bounds, data_mins, data_maxs, path) -> tuple[np.ndarray, np.ndarray]:
    """Parsed ``bounds``; `InputError` naming ``path`` when the box misses the data's extent."""
    lo, hi = parse_bounds(bounds)
    if not overlaps(lo, hi, data_mins, data_maxs):
        extent = bounds_text([*data_mins, *data_maxs])
        raise BoundsMiss(f"bounds {bounds_text(bounds)} miss the data {extent}", path)
    return lo, hi


def crop(cloud, bounds, path):
    """The points of ``cloud`` inside ``bounds`` (for files without an octree to query)."""
    xyz = cloud.xyz
    if len(xyz):
        lo, hi = check_overlap(bounds, xyz.min(axis=0), xyz.max(axis=0), path)
    else:
        lo, hi = parse_bounds(bounds)
    return cloud.select(in_bounds(xyz, lo, hi))
