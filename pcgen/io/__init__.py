"""Point-cloud I/O: ``read``/``write`` by file suffix, ``open_chunks`` for files larger than memory.

LAS/LAZ (1.0–1.4) go through laspy + lazrs and round-trip bit-exact; PLY/PCD/XYZ go through
open3d. Every failure a user can cause raises ``pcgen.errors.InputError``/``OutputError``
naming the file.

Example:
    >>> cloud = pcgen.io.read("plot.laz")
    >>> ground = cloud.select(cloud.attributes["classification"] == 2)
    >>> pcgen.io.write(ground, "ground.laz")
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from pcgen.errors import InputError, OutputError
from pcgen.io.cloud import PointAttributes, PointCloud, concat, parse_crs
from pcgen.io.las import LAS_SUFFIXES, ChunkReader, open_las_chunks, read_las, write_las
from pcgen.io.o3d import O3D_SUFFIXES, read_o3d, write_o3d

SUFFIXES = LAS_SUFFIXES + O3D_SUFFIXES

__all__ = ["PointCloud", "PointAttributes", "ChunkReader", "read", "write", "open_chunks",
           "concat", "parse_crs", "SUFFIXES"]


def _suffix(path, error) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise error(f"unsupported file type {suffix or '(none)'!r}; "
                    f"expected one of {', '.join(SUFFIXES)}", path)
    return suffix


def read(path) -> PointCloud:
    """Read a LAS/LAZ/PLY/PCD/XYZ file into a `PointCloud`."""
    if _suffix(path, InputError) in LAS_SUFFIXES:
        return read_las(path)
    return read_o3d(path)


def write(cloud: PointCloud, path) -> None:
    """Write ``cloud`` by suffix (``.las``, ``.laz``, ``.ply``, ``.pcd``, ``.xyz``...), atomically."""
    if _suffix(path, OutputError) in LAS_SUFFIXES:
        write_las(cloud, path)
    else:
        write_o3d(cloud, path)


@contextlib.contextmanager
def open_chunks(path, chunk_size: int = 1_000_000) -> Iterator[ChunkReader]:
    """Read a file as an iterable of `PointCloud` chunks of at most ``chunk_size`` points.

    LAS/LAZ stream from disk; other formats are read whole and split.

    Example:
        >>> with pcgen.io.open_chunks("big.laz", 2_000_000) as chunks:
        ...     for chunk in chunks:
        ...         print(len(chunk), chunk.xyz.mean(axis=0))
    """
    if _suffix(path, InputError) in LAS_SUFFIXES:
        with open_las_chunks(path, chunk_size) as reader:
            yield reader
    else:
        yield _WholeChunks(read_o3d(path), Path(path), chunk_size)


class _WholeChunks:
    def __init__(self, cloud: PointCloud, path: Path, chunk_size: int):
        self.path, self.header, self.crs = path, cloud.header, cloud.crs
        self.point_count, self.chunk_size, self._cloud = len(cloud), chunk_size, cloud

    def __iter__(self):
        for start in range(0, self.point_count, self.chunk_size):
            yield self._cloud.select(slice(start, start + self.chunk_size))
