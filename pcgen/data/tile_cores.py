"""The per-core steps between reading a file and writing its tiles: voxel thinning, height
normalization and the min-points drop.

They run on each tile's core once every chunk is stored and before any tile is written, because
a tile's buffer band is cut from its neighbours' final cores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
                  ground: GroundModel | None, result: FileResult) -> None:
    """Thin, height-normalize and drop cores in place in the store."""
    for key in store.keys():
        core = store.get(key)
        changed = False
        if options.voxel is not None:
            x, y, z = decode_coords(core, scales, offsets, axes=(0, 1, 2))
            keep = voxel_keep(np.c_[x, y, z], options.voxel)
            if len(keep) < len(core):
                result.thinned_points += len(core) - len(keep)
                core = take_records(core, keep)
                changed = True
        if len(core) < options.min_points:
            result.dropped_points += len(core)
            result.dropped_tiles += 1
            store.drop(key)
            continue
        if ground is not None:
            x, y, z = decode_coords(core, scales, offsets, axes=(0, 1, 2))
            height = z - ground(x, y)
            z_int = np.round((height - offsets[2]) / scales[2])
            if len(z_int) and (z_int.min() < -2 ** 31 or z_int.max() >= 2 ** 31):
                raise OutputError(f"heights do not fit the source's Z grid (offset {offsets[2]:g}, "
                                  f"scale {scales[2]:g})", result.source)
            core = core.copy() if not changed else core
            core["Z"] = z_int.astype(np.int32)
            changed = True
        if changed:
            store.put(key, core)
