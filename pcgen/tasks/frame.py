"""The gap frame: metres, centred on the gap, heights above the interpolated ground.

One frame serves every site and gap size: x, y are offsets from the gap's centre in CRS units
and z is the height above a ground surface interpolated from the context's ground returns
(ASPRS class 2; where a tile has no ground class, the lowest point of each 2 m cell that a
morphological filter keeps). Forest
canopies are height fields over the terrain, so in this frame a crown looks the same on a hill
in Hawaiʻi and on a flat plot in Ontario, and the gap's own terrain is taken out of what a model
has to learn. :class:`GroundSurface` is the one interpolator of a surface from returns in
gap filling, its baselines and its evaluation (the surface baseline also lays it over first
returns, for the canopy top).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

GROUND_CLASS = 2
BUILDING_CLASS = 6
LOWEST_CELL = 2.0      # m; cell of the lowest-point ground fallback
IDW_NEIGHBOURS = 8
MORPH_MAX_CELLS = 4_000_000  # filtered_lowest's grid


def lowest_per_cell(xyz: np.ndarray, cell: float = LOWEST_CELL) -> np.ndarray:
    """(N,) bool mask of the lowest point in each ``cell`` × ``cell`` column of (N, 3) points."""
    if len(xyz) == 0:
        return np.zeros(0, bool)
    key = np.floor(xyz[:, :2] / cell).astype(np.int64)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.lexsort((xyz[:, 2], inv))
    first = np.ones(len(order), bool)
    first[1:] = inv[order][1:] != inv[order][:-1]
    mask = np.zeros(len(xyz), bool)
    mask[order[first]] = True
    return mask


def filtered_lowest(xyz: np.ndarray, cell: float = LOWEST_CELL) -> np.ndarray:
    """(N,) bool mask of the ground among (N, 3) unclassified returns: the lowest point per cell
    that a progressive morphological filter keeps (:func:`pcgen.data.ground.morphological_ground`).

    Under a crown the lowest return of a 2 m cell is often a branch, and the surface through
    such points bends up into the canopy. On the training sites' class-2 ground (40 m windows,
    5 m holes cut), the filter took the mean error of the interpolated ground from 0.16 to
    0.09 m (Topography.laz) and 0.10 to 0.04 m (lastools_fusa.laz); it stayed 0.09 m where the
    lowest points were ground already (hawaii_ept). A grid over :data:`MORPH_MAX_CELLS` cells
    (a sparse, huge extent) keeps the lowest points as they are. The last few results are kept:
    a gap's K draws ask three times each for the same context's ground.
    """
    xyz = np.ascontiguousarray(xyz, dtype=np.float64)
    return _FILTERED.get(float(cell), xyz, lambda pts: _filtered_lowest(pts, cell)).copy()


def _filtered_lowest(xyz: np.ndarray, cell: float) -> np.ndarray:
    from pcgen.data.ground import morphological_ground

    low = lowest_per_cell(xyz, cell)
    p = xyz[low]
    if len(p) < 3:
        return low
    ij = np.floor(p[:, :2] / cell).astype(np.int64)  # lowest_per_cell's cells: one point each
    ij -= ij.min(0)
    shape = ij.max(0) + 1
    if shape[0] * shape[1] > MORPH_MAX_CELLS:
        return low
    grid, xy = np.full(shape, np.nan), np.zeros((*shape, 2))
    grid[ij[:, 0], ij[:, 1]], xy[ij[:, 0], ij[:, 1]] = p[:, 2], p[:, :2]
    keep = morphological_ground(grid, cell, xy)
    out = np.zeros(len(xyz), bool)
    out[np.flatnonzero(low)[keep[ij[:, 0], ij[:, 1]]]] = True
    return out


def ground_points(xyz: np.ndarray, classification=None) -> np.ndarray:
    """The (G, 3) ground returns of a point set: class 2 when at least 3 exist, else
    :func:`filtered_lowest`."""
    if classification is not None:
        g = np.asarray(classification) == GROUND_CLASS
        if g.sum() >= 3:
            return xyz[g]
    return xyz[filtered_lowest(xyz)]


class GroundSurface:
    """A single-valued surface z(x, y) interpolated from (G, 3) returns: mostly the ground.

    Named for its main use, the ground under a gap from its ground returns; the surface
    baseline (:class:`pcgen.tasks.baselines.SurfaceFill`) lays the same surface over first
    returns for the canopy top. Linear over the returns' Delaunay triangulation where a point
    lies inside it (exact on a plane, which IDW is not: across a 10 m hole on a 30% slope IDW
    is off by up to a metre); the Delaunay triangulation of returns in general position is
    unique, so which library triangulates hardly matters. Outside it, inverse distance
    weighting of the 8 nearest returns. Built once per gap, called for every point set of
    that gap.

    Args:
        ground: (G, 3) the returns the surface passes through.
        power: exponent of the inverse-distance weights outside the triangulation.
    """

    def __init__(self, ground: np.ndarray, power: float = 2.0):
        self.ground = np.asarray(ground, dtype=np.float64).reshape(-1, 3)
        self.power = float(power)
        self.origin = self.ground[:, :2].mean(0) if len(self.ground) else np.zeros(2)
        self._tree = cKDTree(self.ground[:, :2]) if len(self.ground) else None
        self._tin = None
        if len(self.ground) >= 3:
            from matplotlib.tri import LinearTriInterpolator, Triangulation

            # matplotlib's TIN (qhull + a C++ point locator): scipy's point location runs LAPACK,
            # whose thread pool spins on a busy machine (see pcgen.data.ground)
            xy, keep = np.unique(np.round(self.ground[:, :2] - self.origin, 6), axis=0, return_index=True)
            try:
                self._tin = LinearTriInterpolator(Triangulation(xy[:, 0], xy[:, 1]), self.ground[keep, 2])
            except (RuntimeError, ValueError):  # collinear or too few distinct points: IDW alone
                self._tin = None

    @classmethod
    def of(cls, ground: np.ndarray, power: float = 2.0) -> "GroundSurface":
        """The surface through ``ground``, built once for the same returns and power.

        ``pcgen fill --samples K`` draws K times from one gap, and each draw fits the same
        surfaces (the frame's ground, the copy's ground, the surface fill's ground and canopy
        top); triangulating them was a third of a fill's time. A surface is never changed after
        it is built, so the last few are kept and handed out again when the returns are equal.
        """
        ground = np.ascontiguousarray(ground, dtype=np.float64).reshape(-1, 3)
        return _SURFACES.get(float(power), ground, lambda g: cls(g, power))

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """(P,) surface elevation at (P, 2) ``xy``; zeros when there are no returns at all."""
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        if self._tree is None or len(xy) == 0:
            return np.zeros(len(xy))
        z = np.full(len(xy), np.nan)
        if self._tin is not None:
            local = xy - self.origin
            z = np.ma.filled(self._tin(local[:, 0], local[:, 1]), np.nan).astype(np.float64)
        out = ~np.isfinite(z)
        if out.any():
            k = min(IDW_NEIGHBOURS, len(self.ground))
            d, i = self._tree.query(xy[out], k=k)
            d, i = d.reshape(-1, k), i.reshape(-1, k)
            w = 1.0 / np.maximum(d, 1e-3) ** self.power
            z[out] = (w * self.ground[i, 2]).sum(1) / w.sum(1)
        return z


class _LastFew:
    """The last few results of a pure function of a float64 array, handed out again when it is
    called with an equal array: a gap's K draws fit the same grounds and surfaces K times."""

    def __init__(self, kept: int = 8):
        self.kept = kept
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tag, array: np.ndarray, make):
        key = (tag, array.shape, hash(array.tobytes()))
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and np.array_equal(hit[0], array):
                self._items.move_to_end(key)
                return hit[1]
        value = make(array)
        with self._lock:
            self._items[key] = (array.copy(), value)
            while len(self._items) > self.kept:
                self._items.popitem(last=False)
        return value


_SURFACES = _LastFew()  # GroundSurface.of: a gap's few surfaces, kept while its K draws are made
_FILTERED = _LastFew()  # filtered_lowest: the frame's and the copies' ground of a gap's context


def ground_heights(ground: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Ground elevation at (P, 2) ``xy`` from (G, 3) ground returns (one-off :class:`GroundSurface`)."""
    return GroundSurface(ground)(xy)


@dataclass
class GapFrame:
    """World ↔ gap frame for one gap.

    Attributes:
        center: (2,) gap centre in world xy.
        ground: the surface heights are measured from.
    """

    center: np.ndarray
    ground: GroundSurface

    @classmethod
    def fit(cls, context_xyz: np.ndarray, gap_box, classification=None) -> "GapFrame":
        """Frame of a gap from its (M, 3) world context points and (xmin, ymin, xmax, ymax) box."""
        xmin, ymin, xmax, ymax = gap_box
        center = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2], dtype=np.float64)
        return cls(center=center, ground=GroundSurface.of(ground_points(np.asarray(context_xyz, np.float64), classification)))

    def to_frame(self, xyz: np.ndarray) -> np.ndarray:
        """(P, 3) world points → (P, 3) float64 (dx, dy, height above ground)."""
        xyz = np.asarray(xyz, dtype=np.float64)
        return np.c_[xyz[:, :2] - self.center, xyz[:, 2] - self.ground(xyz[:, :2])]

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """(P, 3) gap-frame points → (P, 3) float64 world points (inverse of :meth:`to_frame`)."""
        local = np.asarray(local, dtype=np.float64)
        xy = local[:, :2] + self.center
        return np.c_[xy, local[:, 2] + self.ground(xy)]
