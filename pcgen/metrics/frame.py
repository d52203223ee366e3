"""The metric frame: square tiles in metres, x, y from the tile's centre, z = height above its ground.

A per-cloud unit normalization (``normalize="box"``) rescales every tile into [-1, 1]^3, so a
generator whose trees are twice too tall, or whose points float 10 m above the terrain, scores
like a perfect one; on real LiDAR, jittered copies of one site's tiles score 1-NNA ≈ 0.5 against
another site's tiles. In this frame nothing is rescaled: a tile is a ``tile_size`` square, its
x, y are offsets in metres from the square's centre and z is the height above the tile's ground,
so canopy height, ground flatness and point spacing all count. Every tile is a random subset of
``points`` points, so the distances compare shapes at one sampling.

This module does the geometry only. The ground itself (which returns are ground, and the
surface through them) is ``pcgen.tasks.frame``'s interpolator, applied by the caller
(``pcgen.tasks.augment.metric_tiles``) and passed in as per-point ground heights: the metrics
layer never imports the tasks layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pcgen.data.sampling import resample_index
from pcgen.errors import ConfigError
from pcgen.options import check_range

# Whole squares are cut from an extent up to this much short of a multiple of the tile size:
# a 40 m tile written by ``pcgen tile`` spans a little under 40 m of points.
EDGE_TOLERANCE = 0.05


@dataclass(frozen=True)
class MetricFrame:
    """Tile size, points per tile and the height range of the occupancy grid.

    Attributes:
        tile_size: side of a square tile, metres.
        points: points per tile (random subset; every return plus repeats for sparser tiles).
        height_range: (low, high) metres above ground covered by the JSD occupancy grid;
            heights outside are clamped into its bottom / top layer.
        min_points: squares holding fewer returns are skipped (mostly water or no data).
    """

    tile_size: float = 40.0
    points: int = 2048
    height_range: tuple[float, float] = (-5.0, 45.0)
    min_points: int = 64

    def __post_init__(self):
        check_range("tile size", self.tile_size, 0.0, 1e6, open_low=True)
        check_range("points per tile", self.points, 1, 10_000_000, integer=True)
        check_range("min_points", self.min_points, 1, 10_000_000, integer=True)
        try:
            low, high = self.height_range
        except (TypeError, ValueError):
            raise ConfigError(f"height range must be (low, high), got {self.height_range!r}") from None
        for value in (low, high):  # an infinite range put every height in one layer: JSD 0
            check_range("height range", value, -1e5, 1e5)
        if not low < high:
            raise ConfigError(f"height range must be (low, high) with low < high, got {self.height_range}")

    def bounds(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """(low corner, high corner) of the tile's box in the frame, for the occupancy JSD."""
        h = self.tile_size / 2
        return (-h, -h, float(self.height_range[0])), (h, h, float(self.height_range[1]))

    def squares(self, xy: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Whole ``tile_size`` squares laid on a grid centred in the points' extent.

        Points are binned once (one sort), so a 14 M-point dataset of 600 squares costs seconds.

        Args:
            xy: (N, 2) plan coordinates of one file or tile.
        Returns:
            [(center (2,), index (K,) ascending indices of the points inside)], row by row;
            squares with fewer than ``min_points`` points are left out, and an extent smaller
            than one square (less ``EDGE_TOLERANCE``) gives none.
        """
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"xy must be (N, 2), got {xy.shape}")
        if len(xy) == 0:
            return []
        if not np.isfinite(xy).all():
            raise ValueError("xy holds NaN or infinite coordinates")
        lo, hi = xy.min(0), xy.max(0)
        counts = np.floor((hi - lo) / self.tile_size + EDGE_TOLERANCE).astype(np.int64)
        if (counts < 1).any():
            return []
        start = (lo + hi) / 2 - counts * self.tile_size / 2
        cell = np.floor((xy - start) / self.tile_size).astype(np.int64)
        inside = np.all((cell >= 0) & (cell < counts), axis=1)
        members = np.nonzero(inside)[0]
        key = cell[inside, 1] * counts[0] + cell[inside, 0]
        order = np.argsort(key, kind="stable")
        # only the occupied squares: a sparse, huge extent has more empty ones than memory holds
        occupied, first = np.unique(key[order], return_index=True)
        edges = np.r_[first, len(order)]
        out = []
        for j, k in enumerate(occupied):
            if edges[j + 1] - edges[j] >= self.min_points:
                center = start + (np.array([k % counts[0], k // counts[0]]) + 0.5) * self.tile_size
                out.append((center, members[order[edges[j]:edges[j + 1]]]))
        return out

    def subsample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(points,) indices into a tile of ``n`` returns: a random subset, or every return plus
        random repeats when n < points (:func:`pcgen.data.sampling.resample_index`)."""
        return resample_index(n, self.points, rng)

    def place(self, xyz: np.ndarray, center: np.ndarray, ground_z: np.ndarray) -> np.ndarray:
        """World points → frame: (x - cx, y - cy, z - ground).

        Args:
            xyz: (P, 3) world points; center: (2,) square centre; ground_z: (P,) ground height
                under each point.
        Returns:
            (P, 3) float32.
        """
        xyz = np.asarray(xyz, dtype=np.float64)
        return np.c_[xyz[:, :2] - np.asarray(center, np.float64), xyz[:, 2] - ground_z].astype(np.float32)

    def describe(self) -> dict:
        """The protocol in words and numbers, for reports."""
        lo, hi = self.height_range
        return {"frame": "metres: x, y from the tile centre (not rescaled), z = height above the tile's ground",
                "tile_size_m": float(self.tile_size), "points_per_tile": int(self.points),
                "jsd_height_range_m": [float(lo), float(hi)], "min_points": int(self.min_points)}
