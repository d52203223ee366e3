"""Context windows around gaps: which points a generator sees, and how many points it must make.

A window is a square centred on the gap, big enough that the gap looks like the holes cut
during training (the gap spans about ``1 / scale`` of the window), minus the gap itself.
The number of points to generate is the window's density times the gap's area, so the filled
gap is as dense as its surroundings. Generated points are clipped to the gap polygon; the
frame change for models lives with the model generator (:mod:`pcgen.tasks.generators`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon, box

from pcgen.errors import InputError


@dataclass
class ContextConfig:
    """Window geometry (mirrored by ``conf/task/fill.yaml`` ``context:``)."""

    scale: float = 4.0          # window side / gap side
    min_half_size: float = 20.0  # CRS units; small gaps still see a training-tile-sized window
    min_points: int = 32        # fewer points around a gap is an error, not a guess
    max_points: int = 4096      # random subset above this (models see a fixed budget anyway)


@dataclass
class GapContext:
    """What a generator gets for one gap.

    Attributes:
        polygon: the gap, in the file's CRS.
        index: (M,) indices of the context points in the source cloud.
        xyz: (M, 3) float64 world coordinates of the context points.
        attributes: per-point arrays for the context points (laspy names), possibly empty.
        window: the square window (gap included).
        n_target: points to generate so the gap matches the window's density.
        density: points per unit² around the gap.
    """

    polygon: Polygon
    index: np.ndarray
    xyz: np.ndarray
    attributes: dict
    window: Polygon
    n_target: int
    density: float

    @property
    def gap_box(self) -> np.ndarray:
        """(4,) xmin, ymin, xmax, ymax of the gap in world coordinates."""
        return np.asarray(self.polygon.bounds, dtype=np.float64)


class SortedCloud:
    """A cloud sorted by x, so square windows are found by two binary searches, not a full scan
    (a gap's window in a 14 M-point survey: 1 ms instead of 200 ms).

    Attributes:
        xyz, cls: the points (and classes) in x order; ``order`` maps them back to the input.
    """

    def __init__(self, xyz: np.ndarray, classification: np.ndarray | None):
        self.order = np.argsort(xyz[:, 0], kind="stable")
        self.xyz = np.ascontiguousarray(xyz[self.order], dtype=np.float64)
        self.cls = None if classification is None else np.asarray(classification)[self.order]
        self.lo = self.xyz[:, :2].min(0)
        self.hi = self.xyz[:, :2].max(0)

    def window(self, xmin: float, ymin: float, xmax: float, ymax: float) -> np.ndarray:
        """Indices (in x order) of the points inside the closed box."""
        a = np.searchsorted(self.xyz[:, 0], xmin, side="left")
        b = np.searchsorted(self.xyz[:, 0], xmax, side="right")
        y = self.xyz[a:b, 1]
        return a + np.nonzero((y >= ymin) & (y <= ymax))[0]


def gap_window(polygon: Polygon, config: ContextConfig) -> Polygon:
    """Square window of side ``scale`` × the gap's larger side, at least ``2 * min_half_size``."""
    xmin, ymin, xmax, ymax = polygon.bounds
    half = max(config.min_half_size, 0.5 * config.scale * max(xmax - xmin, ymax - ymin))
    cx, cy = 0.5 * (xmin + xmax), 0.5 * (ymin + ymax)
    return box(cx - half, cy - half, cx + half, cy + half)


def window_index(xyz: np.ndarray, window: Polygon, cloud: SortedCloud | None = None) -> np.ndarray:
    """Sorted indices of the points of ``xyz`` inside ``window``'s bounds (``cloud``: ``xyz`` as a
    :class:`SortedCloud`, for many windows of one large file)."""
    xmin, ymin, xmax, ymax = window.bounds
    if cloud is None:
        return np.nonzero((xyz[:, 0] >= xmin) & (xyz[:, 0] <= xmax) & (xyz[:, 1] >= ymin) & (xyz[:, 1] <= ymax))[0]
    return np.sort(cloud.order[cloud.window(xmin, ymin, xmax, ymax)])


def build_context(xyz: np.ndarray, polygon: Polygon, config: ContextConfig | None = None,
                  attributes: dict | None = None, footprint: Polygon | None = None,
                  rng: np.random.Generator | None = None, gap_id: int | str = "",
                  cloud: SortedCloud | None = None) -> GapContext:
    """Collect the points around one gap and the number of points to generate inside it.

    Args:
        xyz: (N, 3) world coordinates of the whole tile.
        polygon: the gap.
        config: window geometry.
        attributes: per-point arrays of the tile (N,), sliced for the context.
        footprint: survey area; the density is measured over the part of the window inside it.
        rng: for the random subset when the window holds more than ``max_points``.
        gap_id: names the gap in errors.
        cloud: ``xyz`` as a :class:`SortedCloud`, built once for the many gaps of a large file.
    Returns:
        A :class:`GapContext`.
    Raises:
        InputError: fewer than ``min_points`` points around the gap, or the gap covers the
            survey around it.
    """
    cfg = config or ContextConfig()
    window = gap_window(polygon, cfg)
    near = window_index(xyz, window, cloud)
    outside_gap = ~shapely.contains_xy(polygon, xyz[near, 0], xyz[near, 1])
    index = near[outside_gap]
    if len(index) < cfg.min_points:
        raise InputError(f"gap {gap_id}: only {len(index)} points around it (need {cfg.min_points}); "
                         "nothing to fill from")
    around = window.difference(polygon)
    ring = around.intersection(footprint) if footprint is not None else around
    if ring.area < 0.01 * around.area:  # e.g. a mask over the whole tile
        raise InputError(f"gap {gap_id}: it covers all of the survey around it; there is no "
                         "surrounding density to fill it at")
    density = len(index) / ring.area
    n_target = int(round(density * polygon.area))
    if len(index) > cfg.max_points:
        rng = rng or np.random.default_rng(0)
        index = np.sort(rng.choice(index, cfg.max_points, replace=False))
        # density was measured on every point; only the generator's view is thinned
    attrs = {k: np.asarray(v)[index] for k, v in (attributes or {}).items()}
    return GapContext(polygon=polygon, index=index, xyz=np.asarray(xyz[index], dtype=np.float64),
                      attributes=attrs, window=window, n_target=n_target, density=density)


MIN_HIT_RATE = 0.01  # asks at most 100x the shortfall (a 1 x 100 m diagonal strip)


def draw_in_gap(generator, ctx: GapContext, rng: np.random.Generator,
                max_tries: int = 4) -> tuple[np.ndarray, np.ndarray | None]:
    """Ask ``generator`` for points until ``ctx.n_target`` of them fall inside the gap polygon.

    Generators produce points over the gap's bounding box; the polygon covers only part of it,
    so each try asks for the shortfall divided by the share of points that land inside: first
    polygon-area / box-area, then the share the last try got (a thin diagonal strip, a missed
    flight line, fills a few % of its box, and where points land is up to the generator).

    Returns:
        (ctx.n_target, 3) float64 world coordinates (fewer only if the generator keeps missing),
        and for generators with ``generate_with_source`` the (P,) context point each new point
        was made from (None for the others).
    """
    need = ctx.n_target
    traced = hasattr(generator, "generate_with_source")
    if need <= 0:
        return np.zeros((0, 3)), (np.zeros(0, np.int64) if traced else None)
    xmin, ymin, xmax, ymax = ctx.polygon.bounds
    fill_ratio = ctx.polygon.area / max((xmax - xmin) * (ymax - ymin), 1e-12)
    got: list[np.ndarray] = []
    got_src: list[np.ndarray] = []
    have = 0
    hit_rate = max(fill_ratio, MIN_HIT_RATE)
    for _ in range(max_tries):
        ask = int(np.ceil((need - have) / hit_rate * 1.15)) + 4
        if traced:
            pts, src = generator.generate_with_source(ctx, ask, rng)
        else:
            pts, src = generator.generate(ctx, ask, rng), None
        pts = np.asarray(pts, dtype=np.float64)
        inside = (shapely.contains_xy(ctx.polygon, pts[:, 0], pts[:, 1]) if len(pts)
                  else np.zeros(0, bool))
        got.append(pts[inside])
        if traced:
            got_src.append(np.asarray(src, dtype=np.int64)[inside])
        have += int(inside.sum())
        if have >= need:
            break
        if inside.any():
            hit_rate = max(float(inside.mean()), MIN_HIT_RATE)
    pts = np.concatenate(got) if got else np.zeros((0, 3))
    src = np.concatenate(got_src) if traced else None
    if len(pts) > need:
        keep = rng.choice(len(pts), need, replace=False)
        pts = pts[keep]
        src = None if src is None else src[keep]
    cls = ctx.attributes.get("classification") if ctx.attributes else None
    if src is not None and cls is not None and len(pts):
        seen = ~under_roofs(pts, np.asarray(cls)[src])
        pts, src = pts[seen], src[seen]
    return pts, src


def under_roofs(pts: np.ndarray, classes: np.ndarray, radius: float = 1.0, clearance: float = 1.0) -> np.ndarray:
    """(P,) True where a point lies more than ``clearance`` below a building point within ``radius`` in plan.

    A pulse does not pass through a roof, so a real scan has no return under one. A copy can
    put one there: the mirror pool superimposes the strips beside all four sides of a gap, so a
    roof reflected from one side lands on ground reflected from another. Such points are
    dropped; otherwise the ground under a copied roof lifts the roof to canopy height above any
    ground found from the points, and a classifier learns that tall things are buildings.
    """
    from scipy.spatial import cKDTree

    from pcgen.tasks.frame import BUILDING_CLASS

    roof = np.asarray(classes) == BUILDING_CLASS
    out = np.zeros(len(pts), bool)
    if not roof.any() or roof.all():
        return out
    roofs, others = pts[roof], np.nonzero(~roof)[0]
    k = min(8, len(roofs))
    dist, idx = cKDTree(roofs[:, :2]).query(pts[others, :2], k=k, distance_upper_bound=radius)
    dist, idx = dist.reshape(len(others), k), idx.reshape(len(others), k)
    near = np.isfinite(dist)
    top = np.where(near, roofs[np.minimum(idx, len(roofs) - 1), 2], -np.inf).max(1)
    out[others] = top > pts[others, 2] + clearance
    return out
