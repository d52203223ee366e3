"""Where one file's core point records wait, grouped by tile key, between reading and writing.

Tiling reads a file once and writes each tile after every chunk is in, so the records must be
held somewhere: in memory when they fit ``max_memory``, else in raw spill files (one per tile)
so inputs larger than memory still tile. Both stores share one small interface.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from pcgen.data.tile_records import decode_coords


class MemoryStore:
    """Records kept as arrays per tile key: the fast path when a file fits ``max_memory``."""

    def __init__(self):
        self._parts: dict[tuple[int, int], list[np.ndarray]] = {}
        self._xy: dict = {}

    def append(self, key, rows: np.ndarray) -> None:
        self._parts.setdefault(key, []).append(rows)

    def keys(self):
        return sorted(self._parts)

    def get(self, key) -> np.ndarray:
        parts = self._parts[key]
        if len(parts) > 1:
            parts[:] = [np.concatenate(parts)]
        return parts[0]

    def put(self, key, rows: np.ndarray) -> None:
        self._parts[key] = [rows]
        self._xy.pop(key, None)

    def drop(self, key) -> None:
        del self._parts[key]
        self._xy.pop(key, None)

    def xy(self, key, scales, offsets) -> tuple[np.ndarray, np.ndarray]:
        """Decoded x, y of a tile's core, cached: each core is read by up to 8 neighbours."""
        if key not in self._xy:
            self._xy[key] = tuple(decode_coords(self.get(key), scales, offsets))
        return self._xy[key]

    def __contains__(self, key) -> bool:
        return key in self._parts

    def close(self) -> None:
        self._parts.clear()
        self._xy.clear()


class SpillStore:
    """Raw point records appended to one file per tile: bounded memory for huge inputs."""

    def __init__(self, folder: Path, dtype: np.dtype):
        self.folder, self.dtype = folder, dtype
        folder.mkdir(parents=True, exist_ok=True)
        self._keys: set = set()

    def _path(self, key) -> Path:
        return self.folder / f"{key[0]}_{key[1]}.bin"

    def append(self, key, rows: np.ndarray) -> None:
        with open(self._path(key), "ab") as fh:
            fh.write(rows.tobytes())
        self._keys.add(key)

    def keys(self):
        return sorted(self._keys)

    def get(self, key) -> np.ndarray:
        return np.fromfile(self._path(key), dtype=self.dtype)

    def put(self, key, rows: np.ndarray) -> None:
        rows.tofile(self._path(key))

    def drop(self, key) -> None:
        self._path(key).unlink()
        self._keys.discard(key)

    def xy(self, key, scales, offsets) -> tuple[np.ndarray, np.ndarray]:
        return tuple(decode_coords(self.get(key), scales, offsets))

    def __contains__(self, key) -> bool:
        return key in self._keys

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
