"""Ground surface for height normalization: a grid of ground elevations interpolated as a TIN.

Ground candidates are ASPRS class 2 points when a file has them (median per cell), else all
points (a low percentile per cell, which sits on the terrain under sparse cover). Empty cells
inside the data are filled by linear interpolation over a Delaunay triangulation of the
filled cells (scipy), cells outside its hull by the nearest filled cell. Points then read
the surface by bilinear interpolation, so millions of points cost a few array operations.
:func:`morphological_ground` tells ground from crowns among the lowest returns of a grid (the
gap frame's ground without a ground class, :func:`pcgen.tasks.frame.filtered_lowest`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GROUND_CLASS = 2
MAX_CELLS = 4_000_000
MAX_SAMPLES = 4_000_000
MORPH_WINDOWS = (2.0, 4.0, 8.0, 16.0)  # half-widths of morphological_ground's openings, CRS units
MORPH_SLOPE = 0.3      # rise allowed per unit of window half-width
MORPH_BASE = 0.3
MORPH_MAX_RISE = 3.0


@dataclass
class GroundModel:
    """Ground elevation on a regular grid of cell centres ``x0 + (i + 0.5) * cell``.

    Attributes:
        x0, y0: lower-left corner of the grid.
        cell: cell size in file units.
        z: (ny, nx) float64 ground elevation per cell, no NaN.
    """

    x0: float
    y0: float
    cell: float
    z: np.ndarray

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ground elevation at (N,) x, y by bilinear interpolation (clamped at the edges)."""
        ny, nx = self.z.shape
        fx = np.clip((x - self.x0) / self.cell - 0.5, 0, nx - 1)
        fy = np.clip((y - self.y0) / self.cell - 0.5, 0, ny - 1)
        i0 = np.minimum(fx.astype(np.int64), max(nx - 2, 0))
        j0 = np.minimum(fy.astype(np.int64), max(ny - 2, 0))
        i1, j1 = np.minimum(i0 + 1, nx - 1), np.minimum(j0 + 1, ny - 1)
        tx, ty = fx - i0, fy - j0
        z = self.z
        return ((z[j0, i0] * (1 - tx) + z[j0, i1] * tx) * (1 - ty)
                + (z[j1, i0] * (1 - tx) + z[j1, i1] * tx) * ty)


class GroundCollector:
    """Gathers ground candidates chunk by chunk, thinned by a fixed stride to at most
    ``MAX_SAMPLES`` so larger-than-memory files stay bounded."""

    def __init__(self, point_count: int):
        self.stride = max(1, int(np.ceil(point_count / MAX_SAMPLES)))
        self._ground: list[np.ndarray] = []
        self._all: list[np.ndarray] = []
        self._seen = 0

    def add(self, xyz: np.ndarray, classification: np.ndarray) -> None:
        take = (np.arange(self._seen, self._seen + len(xyz)) % self.stride) == 0
        self._seen += len(xyz)
        self._all.append(xyz[take])
        is_ground = classification == GROUND_CLASS
        if is_ground.any():
            self._ground.append(xyz[is_ground & take] if self.stride > 1 else xyz[is_ground])

    def fit(self) -> GroundModel:
        """The ground of the points added so far. Raises ValueError when none were added."""
        if not self._seen:
            raise ValueError("GroundCollector.fit: no points were added")
        if self._ground and sum(len(g) for g in self._ground) >= 3:
            pts = np.concatenate(self._ground)
            return fit_ground(pts, percentile=50.0, base_cell=1.0)
        return fit_ground(np.concatenate(self._all), percentile=5.0, base_cell=5.0)


def morphological_ground(z: np.ndarray, cell: float, xy: np.ndarray | None = None, windows=MORPH_WINDOWS,
                         slope: float = MORPH_SLOPE, base: float = MORPH_BASE,
                         max_rise: float = MORPH_MAX_RISE) -> np.ndarray:
    """Bool mask of the cells of a grid of low heights (NaN: no return) that a progressive
    morphological filter (Zhang et al., 2003) keeps as ground.

    Without a ground class the lowest return of a cell under a crown is often a branch. The
    grid is opened (grey erosion, then dilation, scipy.ndimage) with windows of growing
    half-width ``w``; a cell more than ``min(base + slope * w, max_rise)`` above the opened
    surface is not ground, and takes the opened height for the next, wider window. It runs on
    heights above the terrain's plane (:func:`_low_plane`): an opening leaves a plane as it is,
    except where the data ends and the window is cut short (it would take the top edge of a
    slope for a crown). PDAL has this filter, but is not a dependency; scipy's morphology does
    the work here.

    Args:
        z: (A, B) heights, NaN where a cell holds no return.
        cell: the side of a cell, in the units of ``windows``.
        xy: (A, B, 2) where each height lies (for the plane); None: the cells' corners.
    """
    from scipy import ndimage

    known = np.isfinite(z)
    keep = known.copy()
    if known.sum() < 3:
        return keep
    a, b = np.nonzero(known)
    where = np.c_[a * cell, b * cell] if xy is None else xy[known]
    grid = np.full(z.shape, np.inf)  # empty cells neither lower an erosion nor raise a dilation
    grid[known] = z[known] - _low_plane(np.c_[where, z[known]])
    surface = grid.copy()
    for w in windows:
        size = 2 * max(1, int(round(w / cell))) + 1
        eroded = ndimage.grey_erosion(surface, size=(size, size), mode="nearest")
        opened = ndimage.grey_dilation(np.where(np.isfinite(eroded), eroded, -np.inf), size=(size, size),
                                       mode="nearest")
        above = known & np.isfinite(opened)
        above[above] = grid[above] - opened[above] > min(base + slope * w, max_rise)
        keep &= ~above
        surface = np.where(above, opened, surface)
    return keep


def _low_plane(p: np.ndarray) -> np.ndarray:
    """(G,) heights of a plane through the lower half of (G, 3) points: the trend of the terrain.
    A least-squares plane, fitted again to the points under it, so crowns barely tilt it."""
    a = np.c_[np.ones(len(p)), p[:, :2] - p[:, :2].mean(0)]
    coef = np.linalg.lstsq(a, p[:, 2], rcond=None)[0]
    under = p[:, 2] <= a @ coef
    if under.sum() >= 3:
        coef = np.linalg.lstsq(a[under], p[under, 2], rcond=None)[0]
    return a @ coef


def fit_ground(xyz: np.ndarray, percentile: float, base_cell: float) -> GroundModel:
    """Grid the per-cell ``percentile`` of z over (N, 3) candidates and fill the gaps (TIN).

    The cell grows with sparse data (about 4 candidates per cell) and is capped at
    ``MAX_CELLS`` cells. Unclassified candidates are not filtered with
    :func:`morphological_ground` here: on 5 m cells of the 5th percentile it helped a rural
    site with buildings (lastools_fusa: mean error against its class-2 ground 0.58 to 0.16-0.38 m)
    and cost the forests (hawaii_ept 0.37 to 0.38-0.41 m, Topography 0.30 to up to 0.37 m).
    """
    if not 0 <= percentile <= 100:  # numpy's percentile takes -50 as "another cell's z"
        raise ValueError(f"percentile must be in [0, 100], got {percentile!r}")
    if not (np.isfinite(base_cell) and base_cell > 0):
        raise ValueError(f"base_cell must be > 0, got {base_cell!r}")
    if len(xyz) == 0:
        raise ValueError("no ground candidates to fit a surface to")
    # imported here: only needed with --ground-normalize, and they cost a second to import
    from matplotlib.tri import LinearTriInterpolator, Triangulation
    from scipy import ndimage

    lo = xyz[:, :2].min(axis=0)
    hi = xyz[:, :2].max(axis=0)
    area = float(np.prod(np.maximum(hi - lo, 1e-9)))
    cell = max(base_cell, 2.0 * np.sqrt(area / len(xyz)), np.sqrt(area / MAX_CELLS))
    nx, ny = (np.floor((hi - lo) / cell).astype(np.int64) + 1).tolist()
    ci = np.minimum(((xyz[:, 0] - lo[0]) / cell).astype(np.int64), nx - 1)
    cj = np.minimum(((xyz[:, 1] - lo[1]) / cell).astype(np.int64), ny - 1)
    flat = cj * nx + ci
    order = np.lexsort((xyz[:, 2], flat))
    flat_s, z_s = flat[order], xyz[order, 2]
    starts = np.flatnonzero(np.r_[True, np.diff(flat_s) != 0])
    counts = np.diff(np.r_[starts, len(flat_s)])
    pick = starts + np.floor(percentile / 100.0 * (counts - 1)).astype(np.int64)
    grid = np.full(nx * ny, np.nan)
    grid[flat_s[starts]] = z_s[pick]
    grid = grid.reshape(ny, nx)
    missing = np.isnan(grid)
    if missing.any():
        known = ~missing
        jj, ii = np.nonzero(known)
        mj, mi = np.nonzero(missing)
        if len(jj) >= 3:
            # matplotlib's TIN (qhull Delaunay + a C++ trapezoid-map point locator), not scipy's:
            # scipy's point location first runs LAPACK, whose OpenBLAS thread pool spins for
            # seconds on a busy machine. A tiny fixed shift breaks the lattice's co-circularity.
            k = np.arange(len(ii))
            px = ii + 1e-3 * (((k * 0.6180339887) % 1.0) - 0.5)
            py = jj + 1e-3 * (((k * 0.7548776662) % 1.0) - 0.5)
            try:
                tin = LinearTriInterpolator(Triangulation(px, py), grid[known])
                filled = tin(mi.astype(np.float64), mj.astype(np.float64))
                grid[mj, mi] = np.ma.filled(filled, np.nan)
            except (RuntimeError, ValueError):  # collinear cells: the nearest fill handles it
                pass
        still = np.isnan(grid)
        if still.any():
            _, (nj, ni) = ndimage.distance_transform_edt(still, return_indices=True)
            grid = grid[nj, ni]
    return GroundModel(float(lo[0]), float(lo[1]), float(cell), grid)
