"""Point-cloud I/O: ``read``/``write`` by file suffix, ``open_chunks`` for files larger than memory.

LAS/LAZ (1.0–1.4) go through laspy + lazrs and round-trip bit-exact; PLY/PCD/XYZ go through
open3d. EPT datasets (``ept.json`` or its folder) and COPC files are read by ``bounds`` and
``resolution`` through their octrees (`pcgen.io.ept`, `pcgen.io.copc`). Every failure a user
can cause raises ``pcgen.errors.InputError``/``OutputError`` naming the file.

Example:
    >>> cloud = pcgen.io.read("plot.laz")
    >>> ground = cloud.select(cloud.attributes["classification"] == 2)
    >>> pcgen.io.write(ground, "ground.laz")
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import numpy as np

from pcgen.errors import ConfigError, InputError, OutputError
from pcgen.io.bounds import crop
from pcgen.io.cloud import PointAttributes, PointCloud, concat, parse_crs
from pcgen.io.copc import is_copc, read_copc, strip_copc_vlrs
from pcgen.io.ept import is_ept, open_ept_chunks, read_ept
from pcgen.io.las import LAS_SUFFIXES, ChunkReader, open_las_chunks, read_las, write_las
from pcgen.io.o3d import O3D_SUFFIXES, read_o3d, write_o3d

SUFFIXES = LAS_SUFFIXES + O3D_SUFFIXES

__all__ = ["PointCloud", "PointAttributes", "ChunkReader", "read", "write", "open_chunks",
           "concat", "parse_crs", "SUFFIXES", "is_ept", "is_copc", "read_ept", "read_copc"]


def _suffix(path, error) -> str:
    if error is InputError and Path(path).is_dir():  # is_ept said no: no ept.json in it
        raise InputError("a folder without ept.json; give a point-cloud file or an EPT dataset", path)
    suffix = Path(path).suffix.lower()
    if error is InputError and not suffix and not Path(path).exists():  # a folder name mistyped
        raise InputError("file or EPT dataset not found", path)
    if suffix not in SUFFIXES:
        raise error(f"unsupported file type {suffix or '(none)'!r}; "
                    f"expected one of {', '.join(SUFFIXES)}", path)
    return suffix


def _once(bounds):
    """Bounds as a tuple: they are read more than once, and an iterator gives its values once."""
    if bounds is None or isinstance(bounds, (str, bytes)):
        return bounds
    try:
        return tuple(bounds)
    except TypeError:  # not a sequence: parse_bounds names it
        return bounds


def read(path, bounds=None, resolution: float | None = None) -> PointCloud:
    """Read a LAS/LAZ/PLY/PCD/XYZ file or an EPT dataset into a `PointCloud`.

    Args:
        path: a file, an EPT ``ept.json`` or the folder holding it.
        bounds: keep points in the closed box ``(xmin, ymin, xmax, ymax)`` or
            ``(xmin, ymin, zmin, xmax, ymax, zmax)`` (the data's CRS units). EPT and COPC
            decode only the octree nodes the box meets; other files are read and cropped.
        resolution: coarsest acceptable point spacing; EPT and COPC only (octree depths).
    Raises:
        InputError: unreadable input, or bounds that miss the data.
        ConfigError: malformed bounds/resolution, or a resolution for a file without octree.
    """
    bounds = _once(bounds)
    if is_ept(path):
        return read_ept(path, bounds, resolution)
    is_las = _suffix(path, InputError) in LAS_SUFFIXES
    if (bounds is not None or resolution is not None) and is_las and is_copc(path):
        return read_copc(path, bounds, resolution)
    if resolution is not None:
        raise ConfigError("a resolution needs an octree: an EPT dataset or a COPC file", path)
    cloud = read_las(path) if is_las else read_o3d(path)
    if is_las and is_copc(path):
        # laspy cannot write the COPC VLRs, and the cloud once edited is no octree anyway
        cloud.header = strip_copc_vlrs(cloud.header)
    return cloud if bounds is None else crop(cloud, bounds, path)


def write(cloud: PointCloud, path) -> None:
    """Write ``cloud`` by suffix (``.las``, ``.laz``, ``.ply``, ``.pcd``, ``.xyz``...), atomically.

    Raises:
        TypeError: ``cloud`` is not a :class:`PointCloud`.
        OutputError: coordinates that are NaN or infinite (:func:`read` refuses such a file, and
            LAS cannot hold them), an unsupported suffix, or a file that cannot be written.
    """
    if not isinstance(cloud, PointCloud):
        raise TypeError(f"write wants a pcgen.io.PointCloud, got {type(cloud).__name__}")
    bad = int((~np.isfinite(cloud.xyz)).any(axis=1).sum())
    if bad:
        raise OutputError(f"{bad} of {len(cloud)} points have NaN or infinite coordinates", path)
    if _suffix(path, OutputError) in LAS_SUFFIXES:
        write_las(cloud, path)
    else:
        write_o3d(cloud, path)


@contextlib.contextmanager
def open_chunks(path, chunk_size: int = 1_000_000, bounds=None) -> Iterator[ChunkReader]:
    """Read a file as an iterable of `PointCloud` chunks of at most ``chunk_size`` points.

    LAS/LAZ (COPC included) stream from disk; an EPT dataset streams one chunk per octree
    node (nodes are already small, ``chunk_size`` does not apply); other formats are read
    whole and split. With ``bounds`` (an EPT dataset or a COPC file only) only the points in
    the box are read: EPT node by node, COPC in one query (held whole, then split).

    Example:
        >>> with pcgen.io.open_chunks("big.laz", 2_000_000) as chunks:
        ...     for chunk in chunks:
        ...         print(len(chunk), chunk.xyz.mean(axis=0))
    """
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    bounds = _once(bounds)
    if is_ept(path):
        with open_ept_chunks(path, bounds) as reader:
            yield reader
        return
    is_las = _suffix(path, InputError) in LAS_SUFFIXES
    if bounds is not None:
        if not (is_las and is_copc(path)):
            raise ConfigError("chunks by bounds need an EPT dataset or a COPC file", path)
        cloud = read_copc(path, bounds)
        yield _WholeChunks(cloud, Path(path), chunk_size)
        return
    if is_las:
        with open_las_chunks(path, chunk_size) as reader:
            if is_copc(path):
                reader.header = strip_copc_vlrs(reader.header)
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
