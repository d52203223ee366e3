"""The per-core steps between reading a file and writing its tiles: voxel thinning, height
normalization and the min-points drop; then the cut of each core into its neighbours' buffers.

They run on each tile's core once every chunk is stored and before any tile is written, because
a tile's buffer band is cut from its neighbours' final cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from pcgen.data.tile_records import decode_coords, take_records
from pcgen.errors import OutputError

if TYPE_CHECKING:
    from pcgen.data.ground import GroundModel
    from pcgen.data.tiling import FileResult, TileOptions


def voxel_keep(xyz: np.ndarray, voxel: float) -> np.ndarray:
    """Indices (ascending) of one point per voxel: the one nearest its voxel's centre.

    Args:
        xyz: (N, 3) coordinates; voxels are ``floor(xyz / voxel)`` on the global grid.
    Returns:
        (M,) int64 indices into ``xyz``.
    """
    if len(xyz) == 0:
        return np.zeros(0, dtype=np.int64)
    cell = np.floor(xyz / voxel)
    offset = xyz / voxel - cell - 0.5
    dist = (offset * offset).sum(axis=1)
    ijk = (cell - cell.min(axis=0)).astype(np.int64)
    n = ijk.max(axis=0) + 1
    if float(n[0]) * float(n[1]) * float(n[2]) < 2 ** 62:
        key = (ijk[:, 0] * n[1] + ijk[:, 1]) * n[2] + ijk[:, 2]
        order = np.lexsort((dist, key))
        ks = key[order]
        first = np.r_[True, ks[1:] != ks[:-1]]
    else:  # astronomically large extent / voxel ratio: compare the three indices directly
        order = np.lexsort((dist, ijk[:, 2], ijk[:, 1], ijk[:, 0]))
        s = ijk[order]
        first = np.r_[True, (s[1:] != s[:-1]).any(axis=1)]
    return np.sort(order[first])


def process_cores(store, options: TileOptions, fmt, scales, offsets,
                  ground: GroundModel | None, result: FileResult,
                  owned: Callable[[tuple], bool] | None = None, height_offset: float = 0.0) -> None:
    """Thin, height-normalize and drop cores in place in the store; ``owned(key)`` says which
    cores ``result`` counts (a strip's own, not the neighbour columns it reads for buffers).
    Heights are stored on the source's Z scale around ``height_offset`` (the tiles' Z offset)."""
    for key in store.keys():
        core = store.get(key)
        changed = False
        counted = owned is None or owned(key)
        if options.voxel is not None:
            x, y, z = decode_coords(core, scales, offsets, axes=(0, 1, 2))
            keep = voxel_keep(np.c_[x, y, z], options.voxel)
            if len(keep) < len(core):
                result.thinned_points += (len(core) - len(keep)) * counted
                core = take_records(core, keep)
                changed = True
        if len(core) < options.min_points:
            result.dropped_points += len(core) * counted
            result.dropped_tiles += counted
            store.drop(key)
            continue
        if ground is not None:
            x, y, z = decode_coords(core, scales, offsets, axes=(0, 1, 2))
            height = z - ground(x, y)
            z_int = np.round((height - height_offset) / scales[2])
            if len(z_int) and (z_int.min() < -2 ** 31 or z_int.max() >= 2 ** 31):
                raise OutputError(f"heights above ground ({height.min():g} to {height.max():g}) do not "
                                  f"fit the source's Z scale {scales[2]:g}", result.source)
            core = core.copy() if not changed else core
            core["Z"] = z_int.astype(np.int32)
            changed = True
        if changed:
            store.put(key, core)


class BufferBands:
    """Which points of each core fall in a neighbouring tile's buffer, cut once per core.

    Tile ``t`` takes from neighbour core ``n`` the points inside ``[t0*S - B, t0*S + S + B) x
    [t1*S - B, t1*S + S + B)``. Testing that box on all of ``n``'s points for each of its 8
    neighbours was most of tiling's own per-tile work; the points near one of ``n``'s edges
    (inside the box of the tile beyond it on one axis) are few, so they are found once per core
    and each band tests only them, with the same comparisons, so bands hold the same points in
    the same order.
    """

    def __init__(self, store, size: float, buffer: float, scales, offsets):
        self.store, self.S, self.B = store, float(size), float(buffer)
        self.scales, self.offsets = scales, offsets
        self._edges: dict = {}

    def _inside(self, v: np.ndarray, t: int) -> np.ndarray:
        lo = t * self.S
        return (v >= lo - self.B) & (v < lo + self.S + self.B)

    def _edge(self, nkey):
        if nkey not in self._edges:
            x, y = self.store.xy(nkey, self.scales, self.offsets)
            self._edges[nkey] = (x, y, {d: np.flatnonzero(self._inside(x, nkey[0] + d))
                                        for d in (-1, 1)},
                                 {d: np.flatnonzero(self._inside(y, nkey[1] + d)) for d in (-1, 1)})
        return self._edges[nkey]

    def indices(self, nkey, key) -> np.ndarray:
        """Ascending indices of core ``nkey``'s points in tile ``key``'s buffer box
        (``key`` is one of ``nkey``'s 8 neighbours)."""
        x, y, near_x, near_y = self._edge(nkey)
        dx, dy = key[0] - nkey[0], key[1] - nkey[1]
        if dx:
            base = near_x[dx]
            return base[self._inside(y[base], key[1])]
        base = near_y[dy]
        return base[self._inside(x[base], key[0])]

    def release(self, below: int) -> None:
        """Forget cores in columns ``< below`` (tiles are written column by column)."""
        for k in [k for k in self._edges if k[0] < below]:
            del self._edges[k]
