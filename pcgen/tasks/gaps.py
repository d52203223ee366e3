"""Find gaps in a LiDAR tile: footprint cells whose point density falls far below their neighbourhood.

A gap is what a user would call a hole: inside the area the survey covers (the tile's
footprint), a patch of the occupancy grid holds far fewer points than the cells around it.
Cells with points of an excluded class (water, by default ASPRS 9), a ring around them, what
they enclose, and any sparse patch touching them are never gaps, because lakes legitimately
return few points or none. Connected gap cells merge into one
region, whose outline is traced between the points (finer than the grid) into a polygon in the
file's CRS; :func:`gaps_to_geojson` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import shapely
from scipy import ndimage
from scipy.spatial import cKDTree
from shapely.geometry import MultiPoint, Polygon, box, mapping

from pcgen.errors import ConfigError, InputError


@dataclass
class GapConfig:
    """Thresholds of the detector (mirrored by ``conf/task/fill.yaml`` ``gaps:``).

    ``cell_size`` None picks a cell holding ``min_expected_points`` points at the tile's mean
    density, so an empty cell is unlikely to be chance (Poisson P(0) = exp(-8) ≈ 3e-4).
    """

    cell_size: float | None = None
    min_expected_points: float = 8.0
    neighbourhood_cells: int = 7
    density_ratio: float = 0.15
    rim_ratio: float = 0.4
    min_gap_cells: int = 3
    exclude_classes: list[int] = field(default_factory=lambda: [9])
    exclude_buffer_cells: int = 1
    footprint_concavity: float = 0.3
    footprint_inset_cells: float = 0.5
    outline_radius_cells: float = 0.5


@dataclass
class Gap:
    """One gap: a polygon in the file's CRS and the density of the points around it."""

    id: int
    polygon: Polygon
    density_around: float  # points per m² (CRS unit²) in the surrounding cells
    n_cells: int
    properties: dict = field(default_factory=dict)

    @property
    def area(self) -> float:
        return float(self.polygon.area)


def gap_width(polygon) -> float:
    """Diameter of the largest circle inside a gap: how far its middle lies from the data around
    it (a 5 m square is 5 m wide, and so is a 5 m by 100 m strip)."""
    return 2.0 * float(shapely.maximum_inscribed_circle(polygon).length)


MIN_TILE_POINTS = 3  # fewer points span no footprint: nothing to find, fill or cut gaps in
# Density cells of one detection: about eight float grids this size are held at once (3 GB at
# the cap); a 7 km square at 1 m cells still fits.
MAX_GRID_CELLS = 5e7


def tile_footprint(xy: np.ndarray, concavity: float = 0.3) -> Polygon:
    """Area the survey covers: a concave hull of the points (``concavity`` 1 = convex hull).

    Args:
        xy: (N, 2) planar coordinates.
        concavity: shapely ``concave_hull`` ratio; lower follows curved tile edges more closely.
    Returns:
        A shapely Polygon.
    """
    if len(xy) < MIN_TILE_POINTS:
        raise InputError(f"{len(xy)} points cannot span a footprint")
    step = max(1, len(xy) // 20000)  # the hull of a thinned set is the same shape, far faster
    pts = MultiPoint(xy[::step])
    hull = shapely.concave_hull(pts, ratio=concavity) if concavity < 1 else pts.convex_hull
    if hull.geom_type != "Polygon":
        hull = pts.convex_hull
    if hull.geom_type != "Polygon" or hull.area <= 0:
        raise InputError("points are collinear; no footprint")
    return hull


def _auto_cell(n_points: int, area: float, min_expected: float) -> float:
    density = n_points / max(area, 1e-12)
    return float(np.sqrt(min_expected / density))


def _cells_polygon(rows: np.ndarray, cols: np.ndarray, origin, cell: float):
    """Union of the grid cells (rows, cols), one box per run of consecutive columns in a row."""
    x0, y0 = origin
    boxes = []
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    start = np.r_[True, (np.diff(rows) != 0) | (np.diff(cols) != 1)]
    ends = np.r_[start[1:], True]
    for r, c0, c1 in zip(rows[start], cols[start], cols[ends]):
        boxes.append(box(x0 + c0 * cell, y0 + r * cell, x0 + (c1 + 1) * cell, y0 + (r + 1) * cell))
    return shapely.unary_union(boxes)


def _traced_outline(tree, rows: np.ndarray, cols: np.ndarray, allowed: np.ndarray, origin, cell: float,
                    radius: float, fine: int = 4, at: tuple[int, int] = (0, 0)):
    """The gap's outline traced between the points, finer than the grid (None if nothing is empty).

    A hole's edge runs through cells, so the cells alone miss the part of the hole in its edge
    cells (a 10 m hole in 2.5 m cells loses a third of its area). On a grid ``fine`` times finer,
    the spots with no point within ``radius`` that connect to the gap's cells form its empty
    core; grown back by ``radius`` (the union of the point-free discs) it reaches the points
    around the hole. Only the gap's cells and the allowed ring around them are searched.
    ``allowed`` may be a window of the grid whose first cell is ``at`` (row, column).
    """
    x0, y0 = origin
    r0, r1 = max(rows.min() - 1, 0), rows.max() + 2
    c0, c1 = max(cols.min() - 1, 0), cols.max() + 2
    sub = allowed[r0 - at[0]:r1 - at[0], c0 - at[1]:c1 - at[1]]
    step = cell / fine
    fr, fc = np.meshgrid(np.arange(sub.shape[0] * fine), np.arange(sub.shape[1] * fine), indexing="ij")
    ok = sub[fr // fine, fc // fine]
    centres = np.c_[x0 + c0 * cell + (fc[ok] + 0.5) * step, y0 + r0 * cell + (fr[ok] + 0.5) * step]
    dist, _ = tree.query(centres, k=1, distance_upper_bound=radius)
    empty = np.zeros(ok.shape, dtype=bool)
    empty[ok] = ~np.isfinite(dist)
    core = np.zeros(sub.shape, dtype=bool)
    core[rows - r0, cols - c0] = True
    seed = core[fr // fine, fc // fine]
    parts, _ = ndimage.label(empty, structure=np.ones((3, 3)))
    keep = np.isin(parts, np.unique(parts[seed & empty]))
    keep &= parts > 0
    if not keep.any():
        return None
    reach = int(np.ceil(radius / step))
    yy, xx = np.mgrid[-reach:reach + 1, -reach:reach + 1]
    disc = (yy**2 + xx**2) * step**2 <= radius**2
    grown = ndimage.binary_dilation(keep, structure=disc) & ok
    gr, gc = np.nonzero(grown)
    return _cells_polygon(gr, gc, (x0 + c0 * cell, y0 + r0 * cell), step)


def detect_gaps(xyz: np.ndarray, classification: np.ndarray | None = None,
                config: GapConfig | None = None, footprint: Polygon | None = None) -> list[Gap]:
    """Detect low-density patches inside the footprint.

    Args:
        xyz: (N, 3) real-world coordinates.
        classification: (N,) ASPRS classes, used to exclude ``config.exclude_classes``.
        config: thresholds; defaults to :class:`GapConfig`.
        footprint: survey area; defaults to :func:`tile_footprint`.
    Returns:
        Gaps sorted by decreasing area, ids 0..G-1.
    """
    cfg = config or GapConfig()
    xy = np.asarray(xyz, dtype=np.float64)[:, :2]
    if footprint is None:
        footprint = tile_footprint(xy, cfg.footprint_concavity)
    cell = cfg.cell_size or _auto_cell(len(xy), footprint.area, cfg.min_expected_points)
    xmin, ymin, xmax, ymax = footprint.bounds
    cells = max(xmax - xmin, cell) / cell * (max(ymax - ymin, cell) / cell)
    if not cells <= MAX_GRID_CELLS:  # float first: a tiny cell overflows the integer grid size
        key = (f"gaps.cell_size={cfg.cell_size:g}" if cfg.cell_size else
               f"gaps.min_expected_points={cfg.min_expected_points:g} (a {cell:.3g} cell)")
        raise ConfigError(f"{key} cuts this {xmax - xmin:.0f} x {ymax - ymin:.0f} extent into "
                          f"{cells:.3g} density cells, more than the {MAX_GRID_CELLS:.0e} the "
                          "gap detector can hold; use a larger cell")
    nx, ny = max(1, int(np.ceil((xmax - xmin) / cell))), max(1, int(np.ceil((ymax - ymin) / cell)))
    ix = np.clip(((xy[:, 0] - xmin) / cell).astype(np.int64), 0, nx - 1)
    iy = np.clip(((xy[:, 1] - ymin) / cell).astype(np.int64), 0, ny - 1)
    counts = np.bincount(iy * nx + ix, minlength=nx * ny).reshape(ny, nx).astype(np.float64)

    # Candidate cells: centre inside the footprint shrunk by a fraction of a cell, so the
    # ragged boundary (half-covered cells) is never called a gap.
    cx = xmin + (np.arange(nx) + 0.5) * cell
    cy = ymin + (np.arange(ny) + 0.5) * cell
    gx, gy = np.meshgrid(cx, cy)
    inner = footprint.buffer(-cfg.footprint_inset_cells * cell)
    inside = shapely.contains_xy(inner, gx, gy) if not inner.is_empty else np.zeros_like(gx, bool)

    excluded = np.zeros((ny, nx), dtype=bool)
    if classification is not None and len(cfg.exclude_classes):
        ex = np.isin(np.asarray(classification), np.asarray(list(cfg.exclude_classes)))
        if ex.any():
            excluded.reshape(-1)[np.unique(iy[ex] * nx + ix[ex])] = True
            if cfg.exclude_buffer_cells > 0:
                excluded = ndimage.binary_dilation(excluded, iterations=cfg.exclude_buffer_cells)
            # a lake's middle may return nothing at all: what its water ring encloses is water too
            excluded = ndimage.binary_fill_holes(excluded)

    # Neighbourhood density: mean count of the footprint's non-gap cells in a window (masked
    # box filter). Inside a hole wider than the window every neighbour is empty too, so the
    # cells found first seed a region that grows: each round leaves the gap cells out of the
    # mean, doubles the window, and adds sparse cells within half a window of the region, until
    # no cell joins. Whole holes are found, and intact areas without a seed are never re-tested.
    size = cfg.neighbourhood_cells
    sparse = np.zeros((ny, nx), dtype=bool)
    for round_ in range(32):
        valid = (inside & ~excluded & ~sparse).astype(np.float64)
        num = ndimage.uniform_filter(counts * valid, size=size, mode="constant")
        den = ndimage.uniform_filter(valid, size=size, mode="constant")
        around = np.divide(num, den, out=np.zeros_like(num), where=den > 1e-9)
        new = inside & ~excluded & (counts < cfg.density_ratio * around) & (around >= 0.5 * cfg.min_expected_points)
        if round_:
            new &= ndimage.binary_dilation(sparse, structure=np.ones((3, 3)), iterations=max(1, size // 2))
        if not (new & ~sparse).any():
            break
        sparse |= new
        size = min(2 * size + 1, 8 * cfg.neighbourhood_cells + 1)
    # A hole's edge cuts through cells: those beside a gap holding under rim_ratio of their
    # neighbourhood's count are partly in the hole, and join it.
    rim = ndimage.binary_dilation(sparse, structure=np.ones((3, 3))) & ~sparse & inside & ~excluded
    seeds = sparse.copy()
    sparse |= rim & (counts < cfg.rim_ratio * around)
    valid = (inside & ~excluded).astype(np.float64)

    labels, n = ndimage.label(sparse, structure=np.ones((3, 3)))
    # a sparse patch touching water is the silent part of that water body (no returns at all)
    wet = set(np.unique(labels[ndimage.binary_dilation(excluded, structure=np.ones((3, 3)))]).tolist())
    gaps: list[Gap] = []
    tree = None
    # Each patch is looked at through its bounding box grown by the two cells its rings reach:
    # the same cells as on the whole raster, without a raster-sized pass per patch (a 1 km
    # survey has thousands of patches on a raster of millions of cells).
    for lab, box_ in enumerate(ndimage.find_objects(labels), start=1):
        if box_ is None or lab in wet:
            continue
        R0, C0 = max(box_[0].start - 2, 0), max(box_[1].start - 2, 0)
        win = np.s_[R0:box_[0].stop + 2, C0:box_[1].stop + 2]
        mine = labels[win] == lab
        rows, cols = np.nonzero(mine)
        # Chance leaves a lone cell of a sparse stand empty now and then, and the rim rule made
        # it a gap. A patch is kept when its sparse cells (the rim left out) should have held at
        # least two cells' worth of points by their neighbourhoods: chance empties those
        # e^-16 of the time, a lone cell where 5 points are due e^-5.
        due = float(around[win][mine & seeds[win]].sum())
        if len(rows) < cfg.min_gap_cells or due < 2 * cfg.min_expected_points:
            continue
        rows, cols = rows + R0, cols + C0
        poly = None
        if cfg.outline_radius_cells > 0:
            if tree is None:  # only the points that can lie within an outline's reach
                near = ndimage.binary_dilation(labels > 0, structure=np.ones((3, 3)), iterations=3)
                tree = cKDTree(xy[near[iy, ix]])
            allowed = ndimage.binary_dilation(mine, structure=np.ones((3, 3))) & inside[win] & ~excluded[win]
            poly = _traced_outline(tree, rows, cols, allowed, (xmin, ymin), cell, cfg.outline_radius_cells * cell,
                                   at=(R0, C0))
        if poly is None or poly.geom_type != "Polygon":
            cells_poly = _cells_polygon(rows, cols, (xmin, ymin), cell)
            poly = cells_poly if poly is None else shapely.unary_union([poly, cells_poly])
        if poly.geom_type != "Polygon":  # 8-connected diagonal touch: keep the hull of the pieces
            poly = poly.convex_hull
        ring = ndimage.binary_dilation(mine, iterations=2) & ~mine & (valid[win] > 0)
        density = float(counts[win][ring].mean() / cell**2) if ring.any() else float(around[rows, cols].mean() / cell**2)
        gaps.append(Gap(id=0, polygon=poly, density_around=density, n_cells=len(rows),
                        properties={"cell_size": cell}))
    gaps = _merge_overlaps(gaps)
    gaps.sort(key=lambda g: -g.area)
    for i, g in enumerate(gaps):
        g.id = i
    return gaps


def _merge_overlaps(gaps: list[Gap]) -> list[Gap]:
    """Gaps whose outlines overlap become one, their union: outlines traced around separate
    patches can reach into each other (or one lie inside another), and a spot in two gaps would
    be filled twice. Gaps that only touch stay apart, as in a user's mask."""
    if len(gaps) < 2:
        return gaps
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    polys = [g.polygon for g in gaps]
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    pairs = [(i, j) for i, j in zip(a.tolist(), b.tolist())
             if i < j and polys[i].intersection(polys[j]).area > 0]
    if not pairs:
        return gaps
    i, j = np.array(pairs).T
    n = len(gaps)
    _, label = connected_components(coo_matrix((np.ones(len(pairs)), (i, j)), shape=(n, n)), directed=False)
    merged = []
    for lab in np.unique(label).tolist():
        members = [gaps[i] for i in np.flatnonzero(label == lab).tolist()]
        if len(members) == 1:
            merged.append(members[0])
            continue
        poly = shapely.unary_union([g.polygon for g in members])
        if poly.geom_type != "Polygon":
            poly = poly.convex_hull
        cells = sum(g.n_cells for g in members)
        density = sum(g.density_around * g.n_cells for g in members) / cells
        largest = max(members, key=lambda g: g.area)
        merged.append(Gap(id=0, polygon=poly, density_around=density, n_cells=cells,
                          properties=dict(largest.properties)))
    return merged


REPORT_MARK = "pcgen gaps"  # a foreign member of every gap report: pcgen wrote this file


def is_gap_report(path) -> bool:
    """Whether ``path`` is a gap report pcgen wrote (the one kind of file ``pcgen fill
    --overwrite`` may replace besides its filled files)."""
    from pcgen.outputs import is_pcgen_report

    return is_pcgen_report(path, REPORT_MARK)


def gaps_to_geojson(gaps: Sequence[Gap], crs=None) -> dict:
    """A GeoJSON FeatureCollection of the gaps, in the file's CRS (named in a ``crs`` member).

    RFC 7946 assumes WGS84; projected LiDAR coordinates need the (GDAL-read) 2008 ``crs`` member
    (`pcgen.io.crs.crs_member`).
    """
    from pcgen.io.crs import crs_member

    collection = {"type": "FeatureCollection", "generator": REPORT_MARK, "features": [
        {"type": "Feature", "geometry": mapping(g.polygon),
         "properties": {"id": g.id, "area": round(g.area, 3), "cells": g.n_cells,
                        # null where unmeasured (a mask's gap, reported before any fill)
                        "density_around": round(g.density_around, 4)
                        if np.isfinite(g.density_around) else None, **g.properties}}
        for g in gaps]}
    member = crs_member(crs)
    if member:
        collection["crs"] = member
    return collection

