"""COPC (Cloud Optimized Point Cloud) files: bounds and resolution queries via laspy's CopcReader.

A COPC file is a LAZ 1.4 file whose chunks are the nodes of an octree (the EPT layout in one
file), described by a ``copc`` info VLR (the first VLR) and a hierarchy EVLR. Any LAZ reader
reads it whole, so whole-file reads and tiling go through the plain LAS path; only a query
(``bounds``/``resolution``) needs the octree, and laspy's ``CopcReader`` (lazrs backend)
walks it, decoding only the nodes the query touches.

Writing COPC: laspy cannot (its ``CopcInfoVlr`` refuses to serialize) and pcgen does not
either; PDAL's ``writers.copc`` and untwine can.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path

import laspy
import numpy as np

from pcgen.errors import InputError
from pcgen.io.bounds import check_overlap, in_bounds
from pcgen.io.cloud import PointCloud

_LAS14_HEADER_SIZE = 375  # the COPC info VLR must follow the LAS 1.4 header directly


def is_copc(path) -> bool:
    """True when ``path`` is a LAS 1.4 file whose first VLR is the ``copc`` info VLR (record 1)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_LAS14_HEADER_SIZE + 20)
    except OSError:
        return False
    if len(head) < _LAS14_HEADER_SIZE + 20 or head[:4] != b"LASF" or head[24:26] != b"\x01\x04":
        return False
    vlr = head[_LAS14_HEADER_SIZE:]
    return vlr[2:18].rstrip(b"\0") == b"copc" and int.from_bytes(vlr[18:20], "little") == 1


def strip_copc_vlrs(header: laspy.LasHeader) -> laspy.LasHeader:
    """A deep copy without COPC (E)VLRs: a query result or a tile is not an octree any more,
    and a file claiming COPC with stale hierarchy offsets would mislead COPC readers."""
    header = copy.deepcopy(header)
    if any(_is_copc_vlr(v) for v in [*header.vlrs, *(header.evlrs or [])]):
        header.vlrs = laspy.vlrs.vlrlist.VLRList(v for v in header.vlrs if not _is_copc_vlr(v))
        if header.evlrs is not None:
            header.evlrs = laspy.vlrs.vlrlist.VLRList(
                v for v in header.evlrs if not _is_copc_vlr(v))
    return header


def _is_copc_vlr(vlr) -> bool:
    return vlr.user_id.rstrip("\0") == "copc"


def _plain_header(header: laspy.LasHeader, point_count: int) -> laspy.LasHeader:
    header = strip_copc_vlrs(header)
    header.point_count = point_count
    return header


def read_copc(path, bounds=None, resolution: float | None = None) -> PointCloud:
    """Points of a COPC file inside ``bounds`` down to ``resolution``, as one `PointCloud`.

    Args:
        path: a COPC ``.copc.laz`` file.
        bounds: ``(xmin, ymin, xmax, ymax)`` or ``(xmin, ymin, zmin, xmax, ymax, zmax)``, closed
            box in the file's CRS units; None for all.
        resolution: coarsest acceptable point spacing: only octree levels
            ``0..ceil(log2(spacing / resolution))`` are decoded (laspy's rule, as for EPT).
    Raises:
        InputError: not a readable COPC file, bounds that miss the data.
        ConfigError: malformed ``bounds`` or ``resolution``.
    """
    from pcgen.io.ept import check_resolution

    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    if resolution is not None:
        resolution = check_resolution(resolution)  # "2" reached laspy as a string
    with open_copc(path) as reader:
        header = reader.header
        query = None
        if bounds is not None:
            lo, hi = check_overlap(bounds, header.mins, header.maxs, path)
            # laspy fills open z from the header; +-inf would not survive its integer rounding
            lo, hi = np.maximum(lo, header.mins), np.minimum(hi, header.maxs)
            query = laspy.copc.Bounds(mins=lo, maxs=hi)
        try:
            points = reader.query(bounds=query, resolution=resolution)
        except BaseException as exc:  # noqa: BLE001
            _reraise(exc, path)
    cloud = PointCloud(header=_plain_header(header, len(points)), points=points)
    if bounds is not None:
        # laspy compares rounded integer coordinates; keep the same closed box as EPT and LAS
        cloud = cloud.select(in_bounds(cloud.xyz, lo, hi))
        cloud.header.point_count = len(cloud)
    return cloud


@contextlib.contextmanager
def open_copc(path: Path) -> Iterator[laspy.CopcReader]:
    """laspy's ``CopcReader`` on ``path``, its failures (and a truncated octree) as one-line
    `InputError`s naming the file."""
    try:
        reader = laspy.CopcReader.open(str(path))
    except BaseException as exc:  # noqa: BLE001 - lazrs raises pyo3 PanicException
        _reraise(exc, path)
    with reader:
        info = reader.copc_info
        # laspy reads past the end of a truncated file as an empty hierarchy: 0 points, no error
        if info.hierarchy_root_offset + info.hierarchy_root_size > Path(path).stat().st_size:
            raise InputError("truncated COPC file (its octree hierarchy lies past the end)", path)
        yield reader


def copc_nodes(path: Path) -> tuple[list, laspy.LasHeader]:
    """Every node of a COPC file's octree (laspy's, with bounds and point counts) and its header."""
    from laspy.copc import load_octree_for_query

    with open_copc(path) as reader:
        try:
            return load_octree_for_query(reader.source, reader.copc_info, reader.root_page), reader.header
        except BaseException as exc:  # noqa: BLE001
            _reraise(exc, path)


def _reraise(exc: BaseException, path) -> None:
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError, InputError)):
        raise exc
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    raise InputError(f"not a readable COPC file ({text})", path) from None
