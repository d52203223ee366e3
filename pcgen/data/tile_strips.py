"""Split one EPT dataset or COPC file into strips of tile columns that tile as separate jobs.

Why: one input is one tiling job, and one job holds every record of its input until its tiles
are written. A billion-point dataset would run in one process, spilling to disk, however many
workers (or Dask nodes) were given. An octree (EPT or COPC) is read by bounds, so the input is
cut into strips of whole tile columns of about ``TileOptions.job_points`` points each,
balanced by the octree's point counts. Each job reads its strip plus one whole tile column on
each side: the neighbours its buffers are cut from, read whole so that thinning and the
min-points drop see the same cores as a run of one job. It then writes only the tiles of its
own columns, byte for byte those of one job (both read the nodes in the same order: EPT by
key, COPC by file offset).

The price is the octree nodes that cross a cut, which both jobs decode: about a fifth more
decoding for two strips of the shared 14.1 M-point EPT dataset. An input under ``job_points``
is one job, since one job already decodes and codes on every core. On 2 cores, two strips of
that dataset tiled in 12.8-17.2 s against 11.0-15.0 s for one job (three runs). Ground
normalization fits one surface to the whole input, so those runs are not split. A COPC strip
is decoded in one query (laspy's ``CopcReader``), so it holds its points at once: about
``job_points``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcgen.io.copc import is_copc
from pcgen.io.ept import EptDataset, is_ept

MIN_COLUMNS = 4  # narrower strips would decode mostly their neighbours' nodes
_FAR_LEFT, _FAR_RIGHT = -(2 ** 62), 2 ** 62


@dataclass(frozen=True)
class Strip:
    """Tile columns ``lo <= i < hi`` of one input (None: open on that side), read from ``box``
    (``xmin, ymin, xmax, ymax``: the strip, one more column on each side, every y)."""

    lo: int | None
    hi: int | None
    box: tuple[float, float, float, float]

    def owns(self, ix):
        """Whether tile column(s) ``ix`` are this strip's own."""
        lo = _FAR_LEFT if self.lo is None else self.lo
        hi = _FAR_RIGHT if self.hi is None else self.hi
        return (ix >= lo) & (ix < hi)

    def reads(self, ix: np.ndarray) -> np.ndarray:
        """Which tile columns the job keeps: its own and one neighbour column on each side."""
        return Strip(None if self.lo is None else self.lo - 1,
                     None if self.hi is None else self.hi + 1, self.box).owns(ix)


@dataclass
class Octree:
    """What planning needs of an input's octree: each node's x range and point count, and a
    box holding every point."""

    node_x: np.ndarray  # (N, 2) xmin, xmax of each node's cube
    counts: np.ndarray  # (N,)
    extent: tuple[float, float, float, float]

    @classmethod
    def of(cls, path) -> "Octree | None":
        """The octree of an EPT dataset or a COPC file; None for other inputs."""
        if is_ept(path):
            dataset = EptDataset(path)
            nodes = dataset.select()
            return cls(np.array([[n.mins[0], n.maxs[0]] for n in nodes]),
                       np.array([n.count for n in nodes]),
                       (*dataset.mins[:2].tolist(), *dataset.maxs[:2].tolist()))
        if Path(path).suffix.lower() in (".las", ".laz") and is_copc(path):
            from pcgen.io.copc import copc_nodes

            nodes, header = copc_nodes(Path(path))
            return cls(np.array([[n.bounds.mins[0], n.bounds.maxs[0]] for n in nodes]),
                       np.array([n.point_count for n in nodes]),
                       (*header.mins[:2].tolist(), *header.maxs[:2].tolist()))
        return None


def plan_strips(path, size: float, job_points: int, ground_normalize: bool) -> list[Strip | None]:
    """The jobs one input tiles as: ``[None]`` (the whole input, one job) or its strips.

    An EPT dataset or COPC file is cut into ``ceil(points / job_points)`` strips of at least
    `MIN_COLUMNS` columns each, each holding about as many points.
    """
    octree = None if ground_normalize else Octree.of(path)
    if octree is None:
        return [None]
    x0, y0, x1, y1 = octree.extent
    c0 = math.floor(x0 / size)
    columns = math.floor(x1 / size) + 1 - c0
    parts = min(math.ceil(int(octree.counts.sum()) / job_points), columns // MIN_COLUMNS)
    if parts <= 1:
        return [None]
    # points per column: each node's count spread evenly over the columns its cube crosses
    weight = np.zeros(columns)
    for (lo, hi), count in zip(octree.node_x.tolist(), octree.counts.tolist()):
        a = min(max(math.floor(lo / size) - c0, 0), columns - 1)
        b = min(max(math.ceil(hi / size) - c0, a + 1), columns)
        weight[a:b] += count / (b - a)
    cum = np.cumsum(weight)
    cuts = [int(np.searchsorted(cum, cum[-1] * k / parts)) + 1 for k in range(1, parts)]
    edges = [0]
    for c in cuts:  # every strip at least MIN_COLUMNS wide
        c = max(c, edges[-1] + MIN_COLUMNS)
        if columns - c >= MIN_COLUMNS:
            edges.append(c)
    if len(edges) == 1:
        return [None]
    cols = [None] + [c0 + e for e in edges[1:]] + [None]
    return [Strip(lo, hi, (x0 if lo is None else (lo - 1) * size, y0,
                           x1 if hi is None else (hi + 1) * size, y1))
            for lo, hi in zip(cols[:-1], cols[1:])]


def strip_nodes(path, strip: Strip | None) -> int:
    """Octree nodes one job of an EPT dataset decodes (its share of a node-by-node bar)."""
    return len(EptDataset(path).select(None if strip is None else strip.box))
