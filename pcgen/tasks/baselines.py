"""Baselines a user could use instead of pcgen, behind the same generator interface as the model.

Gap filling (``generate(ctx, n, rng) -> (P, 3)`` world points over the gap's bounding box;
generators that copy points also have ``generate_with_source``, which adds the context point each
new point was copied from, so its class and other attributes carry over instead of being guessed):

* :class:`MirrorFill` copies the surrounding points into the gap by reflecting the strips
  beside each side of the gap across that side (what a PDAL/CloudCompare user does by hand),
  each spot taking its copy mostly from the side nearest to it.
* :class:`HybridFill` is the mirror copy with its heights re-based from the ground it was
  copied from to the gap's own ground: the bar a model must clear.
* :class:`CanopyFill` is the hybrid copy with each point's height also scaled from the
  canopy height where it was copied from to the canopy height where it lands, so a crown
  copied in follows the canopy top interpolated across the gap.
* :class:`SurfaceFill` interpolates two surfaces from the surroundings, ground and first
  returns (Delaunay, IDW outside the hull: :class:`pcgen.tasks.frame.GroundSurface`), and
  samples them at the surrounding density.

Augmentation (``sample(n_tiles, n_points, rng) -> list of (n_points, 3)``):

* :class:`JitterResample` resamples training tiles and jitters them.
* the EM Gaussian mixture lives in :mod:`pcgen.tasks.gmm`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from pcgen.data.sampling import resample_index
from pcgen.tasks.context import GapContext
from pcgen.tasks.frame import GroundSurface, filtered_lowest, ground_points


NEAR_SIDE_POWER = 2.0  # how strongly a spot in the gap prefers the strip nearest to it (0: not at all)


def mirror_pool(ctx: GapContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reflections into the gap's box of the strips beside its four sides, and how much each counts.

    Each side contributes the strip outside it as wide (or tall) as the gap, mirrored across
    that side, so near the edge the copy continues the surface it touches. Where no strip
    touches the box, the context points themselves stand in (all weighted alike).

    A spot in the gap is covered by all four reflections, but the one across the nearest side
    was copied from closest by, and nearby ground and crowns are what it most resembles. So a
    reflected point weighs ``f(its copy distance)``, normalised over the strips present at the
    spot where it lands, with ``f(s) = (s + 0.05 w)^-NEAR_SIDE_POWER`` (``w`` the box's larger
    side): the weights at any spot sum to one, so drawing by them keeps the density even, and
    at the centre all strips count alike.

    Returns:
        (pool (P, 3) reflected world points, source (P,) the context point each is a copy of,
        weight (P,) its share in a draw).
    """
    xmin, ymin, xmax, ymax = ctx.gap_box
    w, h = xmax - xmin, ymax - ymin
    p = ctx.xyz
    pools, sources, sides = [], [], []
    for axis, lo, hi, width in ((0, xmin, xmax, w), (1, ymin, ymax, h)):
        other = 1 - axis
        olo, ohi = (ymin, ymax) if axis == 0 else (xmin, xmax)
        band = (p[:, other] >= olo) & (p[:, other] <= ohi)
        for edge, sign in ((lo, -1.0), (hi, 1.0)):
            d = (p[:, axis] - edge) * sign  # distance beyond the edge, outward
            sel = band & (d > 0) & (d <= width)
            q = p[sel].copy()
            q[:, axis] = edge - sign * d[sel]
            pools.append(q)
            sources.append(np.nonzero(sel)[0])
            sides.append(np.full(int(sel.sum()), len(sides)))
    pool = np.concatenate(pools)
    if len(pool) == 0:
        return ctx.xyz, np.arange(len(ctx.xyz)), np.ones(len(ctx.xyz))
    side = np.concatenate(sides)
    # twice the distance to each side (x low, x high, y low, y high): the copy distance of that side's reflection
    across = 2 * np.stack([pool[:, 0] - xmin, xmax - pool[:, 0], pool[:, 1] - ymin, ymax - pool[:, 1]], 1).clip(0)
    f = (across + 0.05 * max(w, h)) ** -NEAR_SIDE_POWER
    present = np.bincount(side, minlength=4) > 0
    weight = f[np.arange(len(pool)), side] / f[:, present].sum(1)
    return pool, np.concatenate(sources), weight


class _Copy:
    """What the copies share: how they draw from :func:`mirror_pool`.

    Args:
        near_side: each spot takes its copy mostly from the strip nearest to it (the pool's
            weights); False draws all four reflections alike, as gap models trained before the
            weights do (their checkpoints say so).
    """

    def __init__(self, near_side: bool = True):
        self.near_side = bool(near_side)

    def draw(self, ctx: GapContext, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3) points drawn from :func:`mirror_pool` and the (n,) context point each is a copy of.

        With ``near_side``, by the pool's weights (without repeats while the pool lasts; the
        whole pool once per ``len(pool)`` beyond it); without, every pool point alike (every one
        once before any repeats).
        """
        pool, source, weight = mirror_pool(ctx)
        if not self.near_side:
            idx = resample_index(len(pool), n, rng)
            return pool[idx], source[idx]
        whole, rest = divmod(int(n), len(pool))
        idx = np.r_[np.tile(np.arange(len(pool)), whole),
                    rng.choice(len(pool), rest, replace=False, p=weight / weight.sum())].astype(np.int64)
        return pool[idx], source[idx]

    def generate(self, ctx: GapContext, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.generate_with_source(ctx, n, rng)[0]


class MirrorFill(_Copy):
    """Reflect the points beside each side of the gap's box into the box (:func:`mirror_pool`).

    ``n`` points are drawn from the pool of all four reflections, each spot mostly from the
    reflection across the side nearest to it (:func:`mirror_pool`'s weights).
    """

    name = "mirror"

    def generate_with_source(self, ctx: GapContext, n: int, rng: np.random.Generator):
        """(n, 3) points and (n,) the context point each is a copy of (its attributes carry over)."""
        return self.draw(ctx, n, rng)


class HybridFill(_Copy):
    """The mirror copy re-based onto the gap's own ground.

    Points are drawn from :func:`mirror_pool` (the strips beside all four sides, reflected
    across their side). Each keeps its height above the ground where it was copied from and is
    set at that height above the ground where it lands; the ground is interpolated from the
    context's class-2 returns (lowest point per 2 m cell without them) by
    :class:`pcgen.tasks.frame.GroundSurface`. On sloped terrain this keeps copied ground on the
    ground and copied crowns at their height instead of floating or buried.
    """

    name = "hybrid"

    def generate_with_source(self, ctx: GapContext, n: int, rng: np.random.Generator):
        """(n, 3) points and (n,) the context point each is a copy of (its attributes carry over)."""
        pts, src = self.draw(ctx, n, rng)  # a fresh array: re-based in place below
        ground = GroundSurface.of(ground_points(ctx.xyz, ctx.attributes.get("classification")))
        pts[:, 2] += ground(pts[:, :2]) - ground(ctx.xyz[src, :2])
        return pts, src


def canopy_top(xyz: np.ndarray, cell: float = 2.0) -> GroundSurface:
    """The canopy top: the highest return of each ``cell``-sized square, triangulated
    (:class:`pcgen.tasks.frame.GroundSurface`). Across a gap it interpolates the tops around it."""
    key = np.floor(xyz[:, :2] / cell).astype(np.int64)
    order = np.lexsort((-xyz[:, 2], key[:, 1], key[:, 0]))
    k = key[order]
    highest = np.r_[True, np.any(k[1:] != k[:-1], axis=1)]
    return GroundSurface.of(xyz[order][highest])


class CanopyFill(_Copy):
    """The hybrid copy, its heights scaled to the canopy where they land.

    A copied point keeps its height above the ground as a share of the canopy height (canopy top
    minus ground, :func:`canopy_top`) where it was copied from and is set at that share of the
    canopy height where it lands: a crown top copied from beside a tall stand into a gap in a
    low one lands on the low canopy's top, not above it, and one copied into open ground lands
    on the ground. A point copied from under ``min_canopy`` of canopy (open ground, where a
    share means nothing) is re-based on the ground only, as :class:`HybridFill` does; the share
    is kept within ``share_range`` so a point above a thin spot of the canopy top does not shoot
    up. The same draw of the strips as the mirror and hybrid copies.

    Args:
        min_canopy: canopy height (m) where a point was copied from under which it is only
            re-based on the ground.
        share_range: bounds of a point's height as a share of the canopy height.
        near_side: as for every copy (:class:`_Copy`).
    """

    name = "canopy"

    def __init__(self, min_canopy: float = 2.0, share_range: tuple[float, float] = (-0.5, 1.3),
                 near_side: bool = True):
        from pcgen.options import check_range

        super().__init__(near_side)
        self.min_canopy = check_range("min_canopy", min_canopy, 0, 1e4)
        low = check_range("share_range[0]", share_range[0], -1e3, 1e3)
        self.share_range = (low, check_range("share_range[1]", share_range[1], low, 1e3))  # clip(lo > hi) gave hi everywhere

    def generate_with_source(self, ctx: GapContext, n: int, rng: np.random.Generator):
        """(n, 3) points and (n,) the context point each is a copy of (its attributes carry over)."""
        pts, src = self.draw(ctx, n, rng)  # a fresh array: moved in place below
        ground = GroundSurface.of(ground_points(ctx.xyz, ctx.attributes.get("classification")))
        top = canopy_top(ctx.xyz)
        was, lands = ctx.xyz[src], pts
        g0, g = ground(was[:, :2]), ground(lands[:, :2])
        c0, c = top(was[:, :2]) - g0, top(lands[:, :2]) - g
        h0 = was[:, 2] - g0
        tall = c0 > self.min_canopy
        share = np.clip(h0 / np.where(tall, c0, 1.0), *self.share_range)
        pts[:, 2] = np.where(tall, g + share * np.maximum(c, 0.0), g + h0)
        return pts, src


class SurfaceFill:
    """Sample interpolated ground and first-return surfaces at the surrounding density.

    Both surfaces are :class:`pcgen.tasks.frame.GroundSurface`s: linear over the Delaunay
    triangulation of their returns, inverse distance weighting outside its hull.

    Args:
        ground_class: ASPRS class of ground points (2).
        idw_power: exponent of the inverse-distance weights used outside the Delaunay hull.
    """

    name = "surface"

    def __init__(self, ground_class: int = 2, idw_power: float = 2.0):
        self.ground_class = ground_class
        self.idw_power = idw_power

    def generate(self, ctx: GapContext, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.generate_with_source(ctx, n, rng)[0]

    def generate_with_source(self, ctx: GapContext, n: int, rng: np.random.Generator):
        """(n, 3) surface samples and (n,) the context return each one stands for.

        A ground sample stands for the nearest ground return in plan, a canopy sample for the
        nearest first return, so labelled fills give the interpolated ground the ground class.
        """
        from scipy.spatial import cKDTree

        xmin, ymin, xmax, ymax = ctx.gap_box
        xy = np.c_[rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)]
        # only the ring next to the gap shapes the surface; triangulating the whole window is waste
        pad = max(xmax - xmin, ymax - ymin, 4.0)
        near = np.all((ctx.xyz[:, :2] >= [xmin - pad, ymin - pad]) & (ctx.xyz[:, :2] <= [xmax + pad, ymax + pad]), 1)
        if near.sum() < 16:
            near[:] = True
        p = ctx.xyz[near]
        cls = ctx.attributes.get("classification")
        ret = ctx.attributes.get("return_number")
        cls = None if cls is None else np.asarray(cls)[near]
        ret = None if ret is None else np.asarray(ret)[near]
        ground = np.asarray(cls) == self.ground_class if cls is not None else np.zeros(len(p), bool)
        if ground.sum() < 3:  # no ground class: the filtered lowest points stand in (as in the frame)
            ground = filtered_lowest(p)
        first = (np.asarray(ret) == 1) & ~ground if ret is not None else ~ground
        frac_ground = ground.mean()
        zg = GroundSurface.of(p[ground], power=self.idw_power)(xy)
        on_top = rng.random(n) >= frac_ground
        if first.sum() < 3:
            on_top[:] = False
        z = np.where(on_top, GroundSurface.of(p[first], power=self.idw_power)(xy), zg) if on_top.any() else zg
        index = np.zeros(n, np.int64)
        for part, returns in ((~on_top, ground), (on_top, first)):
            if part.any() and returns.any():
                rows = np.flatnonzero(near)[returns]
                index[part] = rows[cKDTree(p[returns, :2]).query(xy[part])[1]]
        return np.c_[xy, z], index


# The gap-filling baselines by name, in the order the evaluation tables list them: `pcgen fill
# --baseline`, `pcgen eval-fill` and `pcgen demo` all take them from here.
FILL_BASELINES = {"mirror": MirrorFill, "hybrid": HybridFill, "canopy": CanopyFill, "surface": SurfaceFill}


class JitterResample:
    """Augmentation baseline: pick a training tile, resample its points, jitter them.

    Args:
        tiles: training tiles, each (N_i, 3) in the normalized frame.
        sigma: jitter standard deviation in that frame.
    """

    name = "jitter"

    def __init__(self, tiles: Sequence[np.ndarray], sigma: float = 0.01):
        from pcgen.errors import ConfigError
        from pcgen.options import check_range

        self.tiles = [np.asarray(t, dtype=np.float32) for t in tiles]
        bad = [i for i, t in enumerate(self.tiles) if t.ndim != 2 or t.shape[1] != 3 or len(t) == 0]
        if not self.tiles or bad:  # sample() failed on them with numpy's words, tiles later
            raise ConfigError("JitterResample needs at least one tile of (N, 3) points, N >= 1"
                              + (f"; tile {bad[0]} has shape {self.tiles[bad[0]].shape}" if bad else ""))
        self.sigma = check_range("sigma", sigma, 0, 1e6)

    def sample(self, n_tiles: int, n_points: int, rng: np.random.Generator) -> list[np.ndarray]:
        out = []
        for _ in range(n_tiles):
            t = self.tiles[rng.integers(len(self.tiles))]
            idx = resample_index(len(t), n_points, rng)
            out.append(t[idx] + rng.normal(0, self.sigma, (n_points, 3)).astype(np.float32))
        return out
