"""LAS 1.0–1.4 and LAZ through laspy (lazrs backend), with laspy failures turned into `InputError`."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator
from pathlib import Path

import laspy
import numpy as np

from pcgen.atomic import atomic_path
from pcgen.errors import ConfigError, InputError, OutputError
from pcgen.io.cloud import PointCloud, parse_crs
from pcgen.io.crs import store_crs

LAS_SUFFIXES = (".las", ".laz")
COPC_SUFFIX = ".copc.laz"  # the name readers (PDAL, QGIS) take as a promise of a COPC octree
# Header values a real file can hold: scales from 1e-12 (degrees need 1e-7) to 1e6, coordinates
# within 1e15 file units. Outside these, X = raw * scale + offset collapses or overflows the
# int64 grid keys tiling and gap detection build from coordinates.
MIN_SCALE, MAX_SCALE = 1e-12, 1e6
MAX_COORDINATE = 1e15


def _problem(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _reraise(exc: BaseException, path) -> None:
    """Turn any laspy/lazrs failure (including lazrs' Rust panics) into an InputError."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)):
        raise exc
    if isinstance(exc, InputError):
        raise exc
    raise InputError(f"not a readable LAS/LAZ file ({_problem(exc)})", path) from None


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError("file not found", path)
    if not path.is_file():
        raise InputError("not a file", path)


def check_header(header: laspy.LasHeader, path) -> laspy.LasHeader:
    """Refuse header scales, offsets and bounds that would silently corrupt coordinates.

    Raises:
        InputError: a scale that is zero, negative, NaN or out of range; a NaN/infinite or
            out-of-range offset; a NaN/infinite bounding box (files holding points only).
    """
    for axis, scale, offset in zip("XYZ", np.asarray(header.scales, float).tolist(),
                                   np.asarray(header.offsets, float).tolist()):
        if not (math.isfinite(scale) and MIN_SCALE <= scale <= MAX_SCALE):
            raise InputError(f"header {axis} scale {scale!r} is not a usable scale "
                             f"({MIN_SCALE:g}..{MAX_SCALE:g})", path)
        if not (math.isfinite(offset) and abs(offset) <= MAX_COORDINATE):
            raise InputError(f"header {axis} offset {offset!r} is not finite or beyond "
                             f"{MAX_COORDINATE:g}", path)
    if int(header.point_count) > 0:
        bounds = np.concatenate([np.asarray(header.mins, float), np.asarray(header.maxs, float)])
        if not np.all(np.isfinite(bounds)) or np.any(np.abs(bounds) > MAX_COORDINATE):
            raise InputError(f"header bounding box {bounds.tolist()} is not finite or beyond "
                             f"{MAX_COORDINATE:g}", path)
    return header


EVLR_HEADER_SIZE = 60  # bytes of an extended VLR's header (LAS 1.4)


def check_records(path) -> None:
    """Refuse a file whose point records disagree with its header where laspy reads on silently.

    laspy reads as many records as the header counts: extra records are dropped without a
    word (a fill written from such a file would lose them), and extended VLRs cut off the end
    (an interrupted download of a LAS 1.4 or COPC file) read as none. Compressed files are
    counted from their chunk table; a LAZ file without one is left to the reader.

    Raises:
        InputError: the extended VLRs run past the end of the file, or the file holds more
            point records than the header says.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        try:
            header = laspy.LasHeader.read_from(fh)
        except BaseException as exc:  # noqa: BLE001 - the reader names what is wrong
            _reraise(exc, path)
        end = size
        evlrs = int(getattr(header, "number_of_evlrs", 0) or 0)
        if evlrs:
            end = int(header.start_of_first_evlr)
            if _evlrs_end(fh, end, evlrs, size) > size:
                raise InputError(f"truncated: its {evlrs} extended VLR(s) from byte {end} run past the "
                                 f"end of the file ({size} bytes)", path)
        count = int(header.point_count)
        if header.are_points_compressed:
            held, most = _laz_records(fh, header)
        else:
            held = most = (end - header.offset_to_point_data) // header.point_format.size
    if held is not None and held > count:
        more = "at least " if header.are_points_compressed else ""
        raise InputError(f"the header says {count} points but the file holds {more}{held} point records; "
                         f"readers would drop the rest, so fix the header's point count first", path)
    if most is not None and most < count:  # before a reader allocates the header's count
        more = "at most " if header.are_points_compressed else ""
        raise InputError(f"truncated: header says {count} points, file holds {more}{max(most, 0)}", path)


def _evlrs_end(fh, start: int, count: int, size: int) -> int:
    """The byte after the last of ``count`` extended VLRs from ``start`` (past ``size``: cut off)."""
    import struct

    at = start
    for _ in range(count):
        if at + EVLR_HEADER_SIZE > size:
            return at + EVLR_HEADER_SIZE
        fh.seek(at + 20)  # reserved (2), user id (16), record id (2), then the record's length
        at += EVLR_HEADER_SIZE + struct.unpack("<Q", fh.read(8))[0]
    return at


def _laz_records(fh, header: laspy.LasHeader) -> tuple[int | None, int | None]:
    """How many records a LAZ file's chunk table holds at least and at most (None: no readable
    table)."""
    import lazrs

    zips = [v for v in header.vlrs if isinstance(v, laspy.vlrs.known.LasZipVlr)]
    if not zips:
        return None
    try:
        vlr = lazrs.LazVlr(zips[0].record_data_bytes())
        fh.seek(header.offset_to_point_data)
        table = lazrs.read_chunk_table(fh, vlr)
    except BaseException as exc:  # noqa: BLE001 - streamed LAZ has no table; lazrs panics
        if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        return None, None
    if not table:
        return None, None
    # a fixed-size table lists the full chunk size for the last chunk too: it holds 1 to that many
    before = sum(int(n) for n, _ in table[:-1])
    if vlr.uses_variable_size_chunks():
        return before + int(table[-1][0]), before + int(table[-1][0])
    return before + 1, before + int(table[-1][0])


def read_las(path) -> PointCloud:
    """Read a whole LAS/LAZ file. Raises `InputError` for corrupt, truncated or non-LAS files."""
    path = Path(path)
    _check_exists(path)
    check_records(path)
    try:
        with laspy.open(path) as reader:
            header = reader.header
            expected = header.point_count
            points = reader.read_points(expected)
    except BaseException as exc:  # noqa: BLE001 - lazrs raises pyo3 PanicException
        _reraise(exc, path)
    check_header(header, path)
    if len(points) != expected:
        raise InputError(f"truncated: header says {expected} points, file holds {len(points)}",
                         path)
    return PointCloud(header=header, points=points)


class ChunkReader:
    """Iterate a LAS/LAZ file as `PointCloud` chunks; ``header``, ``crs`` and ``point_count`` up front."""

    def __init__(self, reader: laspy.LasReader, path: Path, chunk_size: int):
        self._reader = reader
        self.path = path
        self.header = reader.header
        self.point_count = int(reader.header.point_count)
        self.chunk_size = int(chunk_size)
        self.crs = parse_crs(self.header)

    def __iter__(self) -> Iterator[PointCloud]:
        seen = 0
        try:
            for points in self._reader.chunk_iterator(self.chunk_size):
                if len(points) == 0:
                    break
                seen += len(points)
                yield PointCloud(header=self.header, points=points, crs=self.crs)
        except BaseException as exc:  # noqa: BLE001
            _reraise(exc, self.path)
        if seen != self.point_count:
            raise InputError(f"truncated: header says {self.point_count} points, file holds "
                             f"{seen}", self.path)


@contextlib.contextmanager
def open_las_chunks(path, chunk_size: int = 1_000_000) -> Iterator[ChunkReader]:
    """Context manager yielding a `ChunkReader` over ``path`` (never the whole file in memory);
    ``chunk_size`` is checked by :func:`pcgen.io.open_chunks`."""
    path = Path(path)
    _check_exists(path)
    check_records(path)
    try:
        reader = laspy.open(path)
    except BaseException as exc:  # noqa: BLE001
        _reraise(exc, path)
    try:
        check_header(reader.header, path)
        yield ChunkReader(reader, path, chunk_size)
    finally:
        reader.close()


def default_header(cloud: PointCloud, scale: float = 0.001) -> laspy.LasHeader:
    """A LAS 1.4 header fitting ``cloud``'s attributes: the smallest standard point format that
    holds them, millimetre scales, offsets at the floor of the minimum."""
    names = set(cloud.attributes)
    has_rgb = {"red", "green", "blue"} <= names
    has_nir = "nir" in names
    has_time = "gps_time" in names
    if has_nir:
        fmt = 8
    elif has_rgb:
        fmt = 3 if has_time else 2
    else:
        fmt = 1 if has_time else 0
    if "classification" in names and len(cloud) and cloud.attributes["classification"].max() > 31:
        fmt = {0: 6, 1: 6, 2: 7, 3: 7}.get(fmt, fmt)
    header = laspy.LasHeader(point_format=fmt, version="1.4" if fmt >= 6 else "1.2")
    header.scales = np.array([scale] * 3)
    header.offsets = np.floor(cloud.xyz.min(axis=0)) if len(cloud) else np.zeros(3)
    return header


def writable_header(header: laspy.LasHeader) -> laspy.LasHeader:
    """``header``, or a copy stating LAS 1.2 for a LAS 1.0 one: laspy writes 1.1-1.4 only. Point
    formats 0 and 1 are the same bytes in 1.2; 1.1 and 1.2 only give meaning to fields 1.0
    reserves (file source ID, global encoding), which stay 0."""
    if header.version.minor > 0:
        return header
    header = copy.deepcopy(header)
    header.version = laspy.header.Version(1, 2)
    return header


def check_las_output(path) -> None:
    """Refuse an output named ``*.copc.laz``: pcgen writes plain LAZ (laspy cannot write COPC),
    and a COPC reader given that name fails on the missing octree."""
    if str(path).lower().endswith(COPC_SUFFIX):
        raise OutputError(f"pcgen writes plain LAZ, not COPC; name the output "
                          f"{Path(path).name[:-len(COPC_SUFFIX)]}.laz", path)


def write_las(cloud: PointCloud, path, *, compress: bool | None = None) -> None:
    """Write ``cloud`` as LAS/LAZ (by suffix unless ``compress`` is given), atomically.

    Header metadata, CRS, VLRs and EVLRs of ``cloud.header`` are kept; bounds, counts and
    return histograms are recomputed by laspy.
    """
    path = Path(path)
    check_las_output(path)
    header = writable_header(cloud.las_header(cloud.header if cloud.header is not None
                                              else default_header(cloud)))
    if cloud.crs is not None and parse_crs(header) != cloud.crs:  # a CRS the header lacks
        header = copy.deepcopy(header)
        try:
            store_crs(header, cloud.crs)
        except ValueError as exc:
            raise OutputError(str(exc), path) from None
    try:
        record = cloud.to_record(header)
    except (ConfigError, OutputError) as exc:  # the record knows no path: name the file
        raise OutputError(exc.message, path) from None
    if compress is None:
        compress = path.suffix.lower() == ".laz"
    evlrs = header.evlrs if header.evlrs is not None else []
    if len(evlrs) and header.version.minor < 4:
        evlrs = []
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as fh, laspy.LasWriter(fh, header, do_compress=compress,
                                                         closefd=False) as writer:
                writer.write_points(record)
                if len(evlrs):
                    writer.write_evlrs(evlrs)
        except OSError as exc:
            raise OutputError(f"cannot write ({exc.strerror or exc})", path) from None


class _SharedPartsHeader(laspy.LasHeader):
    """A header whose deep copy shares the parts laspy's writer only reads.

    `laspy.LasWriter` deep-copies its header; with GeoTIFF/WKT VLRs and extra-bytes point
    formats that copy costs milliseconds, which dominates writing thousands of small tiles.
    The writer resets counts and bounds, the extra-bytes statistics and the VLR list, so
    those are still copied; CRS VLRs, other VLR payloads and the point format are shared.

    laspy has no public way to hand its writer a header it may share (no ``copy=False``),
    so this is the one place pcgen relies on ``LasHeader``'s instance ``__dict__``.
    """

    def __deepcopy__(self, memo):
        memo[id(self.point_format)] = self.point_format
        for vlr in list(self.vlrs) + list(self.evlrs or []):
            if not isinstance(vlr, (laspy.vlrs.known.ExtraBytesVlr, laspy.vlrs.known.LasZipVlr)):
                memo[id(vlr)] = vlr
        new = laspy.LasHeader.__new__(laspy.LasHeader)
        memo[id(self)] = new
        new.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return new

    @classmethod
    def wrap(cls, header: laspy.LasHeader) -> _SharedPartsHeader:
        view = cls.__new__(cls)
        view.__dict__.update(header.__dict__)
        return view


def write_las_records(path, header: laspy.LasHeader, records, *, compress: bool,
                      laz_backend=None) -> None:
    """Stream already-packed records (same point format/grid as ``header``) into one file.

    Used by tiling, which packs once and writes many; not atomic by itself (callers wrap it).
    ``laz_backend``: e.g. ``laspy.LazBackend.Lazrs``; the single-threaded coder is faster than
    the parallel one for files under a few LAZ chunks (50 000 points each).
    """
    backend = laz_backend if compress else None
    header = _SharedPartsHeader.wrap(header)
    with open(path, "wb") as fh, laspy.LasWriter(fh, header, do_compress=compress,
                                                 laz_backend=backend, closefd=False) as writer:
        for record in records:
            writer.write_points(record)
        evlrs = header.evlrs if header.evlrs is not None else []
        if len(evlrs) and header.version.minor >= 4:
            writer.write_evlrs(evlrs)

