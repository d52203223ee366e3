"""Baselines a user could use instead of pcgen, behind the same generator interface as the model.

Gap filling (``generate(ctx, n, rng) -> (P, 3)`` world points over the gap's bounding box):

* :class:`MirrorFill` copies the surrounding points into the gap by reflecting the strips
  beside each side of the gap across that side (what a PDAL/CloudCompare user does by hand).
* :class:`SurfaceFill` interpolates two surfaces from the surroundings, ground and first
  returns (Delaunay, IDW outside the hull), and samples them at the surrounding density.

Augmentation (``sample(n_tiles, n_points, rng) -> list of (n_points, 3)``):

* :class:`JitterResample` resamples training tiles and jitters them.
* the EM Gaussian mixture lives in :mod:`pcgen.tasks.gmm`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.interpolate import LinearNDInterpolator
from scipy.spatial import Delaunay, cKDTree

from pcgen.tasks.context import GapContext


class MirrorFill:
    """Reflect the points beside each side of the gap's box into the box.

    Each side contributes the strip as wide (or tall) as the gap, mirrored across that side;
    near the edge the copy continues the surface it touches. ``n`` points are drawn from the
    pool of all reflections.
    """

    name = "mirror"

    def generate(self, ctx: GapContext, n: int, rng: np.random.Generator) -> np.ndarray:
        xmin, ymin, xmax, ymax = ctx.gap_box
        w, h = xmax - xmin, ymax - ymin
        p = ctx.xyz
        pools = []
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
        pool = np.concatenate(pools) if pools else np.zeros((0, 3))
        if len(pool) == 0:  # no strip touches the box: copy the nearest points instead
            pool = ctx.xyz
        idx = rng.choice(len(pool), size=n, replace=len(pool) < n)
        return pool[idx]


class SurfaceFill:
    """Sample interpolated ground and first-return surfaces at the surrounding density.

    Args:
        ground_class: ASPRS class of ground points (2).
        idw_power: exponent of the inverse-distance weights used outside the Delaunay hull.
    """

    name = "surface"

    def __init__(self, ground_class: int = 2, idw_power: float = 2.0):
        self.ground_class = ground_class
        self.idw_power = idw_power

    def _surface(self, pts: np.ndarray, xy: np.ndarray) -> np.ndarray:
        if len(pts) == 0:
            return np.full(len(xy), np.nan)
        origin = xy.mean(0) if len(xy) else np.zeros(2)
        pts = np.c_[pts[:, :2] - origin, pts[:, 2]]  # qhull is slow and fragile at UTM magnitudes
        xy = xy - origin
        tree = cKDTree(pts[:, :2])
        k = min(8, len(pts))
        dist, idx = tree.query(xy, k=k)
        dist, idx = dist.reshape(len(xy), k), idx.reshape(len(xy), k)
        wts = 1.0 / np.maximum(dist, 1e-6) ** self.idw_power
        z = (wts * pts[idx, 2]).sum(1) / wts.sum(1)
        if len(pts) >= 4:
            try:
                # a prebuilt Delaunay: LinearNDInterpolator(points, ...) is ~100x slower here
                lin = LinearNDInterpolator(Delaunay(pts[:, :2]), pts[:, 2])(xy)
                z = np.where(np.isfinite(lin), lin, z)
            except Exception:  # degenerate (collinear) support: IDW alone
                pass
        return z

    def generate(self, ctx: GapContext, n: int, rng: np.random.Generator) -> np.ndarray:
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
        if ground.sum() < 3:  # no ground class: the lowest point of each 2 m cell stands in
            ground = _lowest_per_cell(p, cell=2.0)
        first = (np.asarray(ret) == 1) & ~ground if ret is not None else ~ground
        frac_ground = ground.mean()
        zg = self._surface(p[ground], xy)
        on_top = rng.random(n) >= frac_ground
        if first.sum() >= 3:
            zf = self._surface(p[first], xy)
            z = np.where(on_top, zf, zg)
        else:
            z = zg
        return np.c_[xy, z]


def _lowest_per_cell(p: np.ndarray, cell: float) -> np.ndarray:
    key = np.floor(p[:, :2] / cell).astype(np.int64)
    _, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.lexsort((p[:, 2], inv))
    first = np.ones(len(order), bool)
    first[1:] = inv[order][1:] != inv[order][:-1]
    mask = np.zeros(len(p), bool)
    mask[order[first]] = True
    return mask


class JitterResample:
    """Augmentation baseline: pick a training tile, resample its points, jitter them.

    Args:
        tiles: training tiles, each (N_i, 3) in the normalized frame.
        sigma: jitter standard deviation in that frame.
    """

    name = "jitter"

    def __init__(self, tiles: Sequence[np.ndarray], sigma: float = 0.01):
        self.tiles = [np.asarray(t, dtype=np.float32) for t in tiles]
        self.sigma = sigma

    def sample(self, n_tiles: int, n_points: int, rng: np.random.Generator) -> list[np.ndarray]:
        out = []
        for _ in range(n_tiles):
            t = self.tiles[rng.integers(len(self.tiles))]
            idx = rng.choice(len(t), n_points, replace=len(t) < n_points)
            out.append(t[idx] + rng.normal(0, self.sigma, (n_points, 3)).astype(np.float32))
        return out
