"""Split LAS/LAZ files and EPT datasets into square, buffered tiles, streaming so inputs larger
than memory work.

Grid and ownership
    Tiles sit on one global grid anchored at (0, 0) in the file's coordinates, so tiles of
    neighbouring files line up. Tile ``(i, j)`` owns the half-open core
    ``[i*S, (i+1)*S) x [j*S, (j+1)*S)``: every input point lies in exactly one core
    (``i = floor(x / S)``, ``j = floor(y / S)``, x and y as decoded from the raw integers).
    Its buffer holds the neighbours' points inside ``[i*S - B, (i+1)*S + B) x [j*S - B,
    (j+1)*S + B)``; those points are written again with the extra-bytes dimension
    ``buffer = 1`` (core points have ``buffer = 0``), so ``tile[tile.buffer == 0]`` recovers
    the cores exactly. With ``B = 0`` no buffer dimension is added. Tiles of an earlier run
    can be tiled again (another size): their buffer points are dropped as they are read, since
    each is a copy of a neighbouring tile's core point.

Pipeline per file (one process / Dask task per file, or per strip of the tile columns of an
EPT dataset or COPC file: `pcgen.data.tile_strips`)
    1. stream chunks (laspy's chunk iterator; an EPT dataset's octree nodes, one chunk each,
       through `pcgen.io.open_chunks`); group each chunk's raw point records by core
       tile with one ``argsort`` and append them to a store: in memory, or raw spill files
       when the file's records exceed ``max_memory``; collect ground candidates on the way.
    2. per core: voxel thinning (one point per voxel, the one nearest its centre; voxels on
       the global grid), height normalization (Z minus the ground surface), min-points drop.
    3. per tile: core + the neighbours' buffer bands (`pcgen.data.tile_cores.BufferBands`),
       written as LAZ with the source header (scales, offsets, CRS, VLRs/EVLRs; a
       height-normalized tile's Z offset is 0, so heights fit whatever the source's Z offset) by
       `pcgen.data.tile_writer.TileWriter`: the bytes laspy's writer would write, without its
       per-file set-up for each tile.
Point records are moved as raw bytes throughout, so points that are not thinned or
height-normalized leave bit-identical to how they came in.

This module runs the pipeline; its parts live beside it: input discovery and header checks in
`pcgen.data.tile_inputs`, the stores of step 1 in `pcgen.data.tile_store`, step 2 in
`pcgen.data.tile_cores`, raw-record helpers in `pcgen.data.tile_records`, tile files in
`pcgen.data.tile_writer`, the strips of an EPT dataset or COPC file in
`pcgen.data.tile_strips`.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import laspy
import numpy as np

import pcgen.io as pio
from pcgen.data.ground import GroundCollector
from pcgen.data.tile_cores import BufferBands, process_cores
from pcgen.data.tile_inputs import input_stem, read_headers, source_name, unique_stems
from pcgen.data.tile_records import (concat_records, decode_classification, decode_coords,
                                     decoded_bounds, take_records, widen_records)
from pcgen.data.tile_store import MemoryStore, SpillStore
from pcgen.data.tile_strips import Strip, plan_strips, strip_nodes
from pcgen.data.tile_writer import TileWriter
from pcgen.errors import ConfigError, InputError, OutputError
from pcgen.inputs import list_inputs
from pcgen.io.copc import strip_copc_vlrs
from pcgen.io.crs import crs_name
from pcgen.io.ept import EptDataset, is_ept
from pcgen.io.bounds import BoundsMiss, bounds_text, in_tile_box, parse_bounds
from pcgen.io.cloud import add_extra_dims
from pcgen.io.las import writable_header

BUFFER_DIM = "buffer"
BUFFER_DESCRIPTION = "1: buffer point, 0: tile core"
BATCH_POINTS = 262_144  # tile points coded together by lazrs' parallel coder (TileWriter.write_many)
_NEIGHBOURS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]


@dataclass(frozen=True)
class TileOptions:
    """How to tile.

    Attributes:
        size: tile side S in file units (> 0).
        buffer: buffer width B, 0 <= B < S.
        min_points: drop tiles whose core has fewer points (after thinning).
        ground_normalize: replace Z by height above the ground surface (see `pcgen.data.ground`).
        voxel: voxel size for thinning; None keeps every point.
        chunk_size: points per streamed chunk.
        max_memory: bytes of point records per file held in memory; larger files spill to disk.
        compress: write LAZ (True) or LAS.
        job_points: an EPT dataset or COPC file with more points is tiled as strips of
            about this many, each a job of its own (`pcgen.data.tile_strips`).
        bounds: tile only the points in this box, ``(xmin, ymin, xmax, ymax)`` or with z
            (`pcgen.io.bounds.parse_bounds`); EPT datasets and COPC files read only the
            octree nodes it meets, an input it misses gives no tiles.
    """

    size: float = 50.0
    buffer: float = 5.0
    min_points: int = 0
    ground_normalize: bool = False
    voxel: float | None = None
    chunk_size: int = 2_000_000
    max_memory: int = 2 * 1024 ** 3
    compress: bool = True
    job_points: int = 20_000_000
    bounds: tuple | None = None

    def validate(self) -> "TileOptions":
        for name in ("size", "buffer", "voxel"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.number))):
                raise ConfigError(f"{name} must be a number, got {value!r}")
        if not (math.isfinite(self.size) and self.size > 0):
            raise ConfigError(f"tile size must be > 0, got {self.size:g}")
        if not (math.isfinite(self.buffer) and self.buffer >= 0):
            raise ConfigError(f"buffer must be >= 0, got {self.buffer:g}")
        if self.buffer >= self.size:
            raise ConfigError(f"buffer ({self.buffer:g}) must be smaller than the tile size "
                              f"({self.size:g})")
        if self.voxel is not None and not (math.isfinite(self.voxel) and self.voxel > 0):
            raise ConfigError(f"voxel size must be > 0, got {self.voxel:g}")
        for name, low in (("min_points", 0), ("chunk_size", 1), ("job_points", 1), ("max_memory", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"{name.replace('_', '-')} must be a whole number >= {low}, got {value!r}")
        if self.bounds is not None:
            parse_bounds(self.bounds)
        return self


@dataclass
class RasterSpec:
    """A coarse raster over all inputs, filled by the workers for the overview picture."""

    x0: float
    y0: float
    cell: float
    nx: int
    ny: int

    def accumulate(self, xyz: np.ndarray, counts: np.ndarray, zmax: np.ndarray) -> None:
        i = np.clip(((xyz[:, 0] - self.x0) / self.cell).astype(np.int64), 0, self.nx - 1)
        j = np.clip(((xyz[:, 1] - self.y0) / self.cell).astype(np.int64), 0, self.ny - 1)
        flat = j * self.nx + i
        counts += np.bincount(flat, minlength=self.nx * self.ny).reshape(self.ny, self.nx)
        np.maximum.at(zmax.reshape(-1), flat, xyz[:, 2])


@dataclass
class FileResult:
    """What one file's tiling produced (returned from workers; small and picklable)."""

    source: str
    points: int
    tiles: list[dict] = field(default_factory=list)
    thinned_points: int = 0
    dropped_points: int = 0
    dropped_tiles: int = 0
    crs: str | None = None
    counts: np.ndarray | None = None
    zmax: np.ndarray | None = None

    @classmethod
    def merge(cls, parts: list["FileResult"]) -> "FileResult":
        """One input's result from the results of its strips (in column order)."""
        if len(parts) == 1:
            return parts[0]
        read = [p for p in parts if p.counts is not None or p.points] or parts
        out = cls(source=parts[0].source, points=sum(p.points for p in parts), crs=read[0].crs,
                  tiles=[t for p in parts for t in p.tiles],
                  thinned_points=sum(p.thinned_points for p in parts),
                  dropped_points=sum(p.dropped_points for p in parts),
                  dropped_tiles=sum(p.dropped_tiles for p in parts))
        rasters = [p for p in parts if p.counts is not None]
        if rasters:
            out.counts = sum(p.counts for p in rasters)
            out.zmax = np.max([p.zmax for p in rasters], axis=0)
        return out


class NoTilesKept(ConfigError):
    """``min_points`` dropped every tile: the run writes nothing."""


# -- tile names and headers ------------------------------------------------------------------------
def tile_name(stem: str, key, size: float) -> str:
    def fmt(v: float) -> str:
        return str(int(round(v))) if float(size).is_integer() else f"{v:.3f}"

    return f"{stem}_{fmt(key[0] * size)}_{fmt(key[1] * size)}"


def has_tile_buffer(header: laspy.LasHeader) -> bool:
    """Whether points carry the buffer flag ``pcgen tile`` writes (its name, type and description):
    their ``buffer = 1`` points are copies of a neighbouring tile's core."""
    fmt = header.point_format
    if BUFFER_DIM not in fmt.extra_dimension_names:
        return False
    dim = fmt.dimension_by_name(BUFFER_DIM)
    return dim.dtype == np.uint8 and dim.description == BUFFER_DESCRIPTION


def _tile_header(source: laspy.LasHeader, with_buffer: bool, path=None) -> laspy.LasHeader:
    """The source's header for its tiles, with the buffer flag when tiles have buffers.

    Raises:
        InputError: the file has a ``buffer`` dimension of its own (tiling would overwrite it,
            and its core points could not be told from the copies).
    """
    header = writable_header(strip_copc_vlrs(source))  # a COPC input's tiles are plain LAZ
    if with_buffer and BUFFER_DIM in header.point_format.dimension_names and not has_tile_buffer(header):
        raise InputError(f"the file has a dimension {BUFFER_DIM!r} of its own, where pcgen tile "
                         "writes its buffer flag; rename it, or tile with --buffer 0", path)
    if with_buffer and BUFFER_DIM not in header.point_format.dimension_names:
        add_extra_dims(header, [laspy.ExtraBytesParams(
            name=BUFFER_DIM, type=np.uint8, description=BUFFER_DESCRIPTION)])
    return header


# -- one file ----------------------------------------------------------------------------------
def tile_file(path, out_dir, options: TileOptions, raster: RasterSpec | None = None,
              stem: str | None = None, progress: Callable[[int], None] | None = None,
              strip: Strip | None = None) -> FileResult:
    """Tile one LAS/LAZ file or EPT dataset into ``out_dir`` (which must exist). See the module
    docstring.

    Args:
        path: input LAS/LAZ, or an EPT ``ept.json``.
        out_dir: folder for the tiles (callers make it atomic).
        options: `TileOptions`.
        raster: optional overview raster to accumulate final core points into.
        stem: tile name prefix (default: the file's stem, an EPT dataset's folder name).
        progress: called with the number of input points consumed, chunk by chunk (an EPT
            dataset's chunks are its octree nodes).
        strip: tile only these columns of an EPT dataset or COPC file
            (`pcgen.data.tile_strips`).
    Returns:
        `FileResult` with one dict per written tile (name, bounds, counts); its ``points``
        are the input points the tiles' cores own (a strip's own columns).
    """
    path, out_dir = Path(path), Path(out_dir)
    options = options.validate()
    stem = stem or input_stem(path)
    S, B = float(options.size), float(options.buffer)
    box = _read_box(path, strip, options.bounds)
    try:
        if box is False or (strip is not None and is_ept(path) and not EptDataset(path).select(box)):
            return FileResult(source=str(path), points=0)  # a strip over a hole in the data, or off the box
    except BoundsMiss:
        return FileResult(source=str(path), points=0)
    # every chunk keeps the points in the box, half-open in x and y as the tiles' cores are (a
    # box ending on a tile edge makes no sliver tiles of the points on that edge)
    keep_box = None if options.bounds is None else parse_bounds(options.bounds)
    with contextlib.ExitStack() as stack:
        try:
            reader = stack.enter_context(pio.open_chunks(path, options.chunk_size, bounds=box))
        except BoundsMiss:  # the box misses this input (tile_files refuses a box that misses them all)
            return FileResult(source=str(path), points=0)
        header = reader.header
        if reader.point_count == 0:
            if strip is not None or options.bounds is not None:
                return FileResult(source=str(path), points=0)
            raise InputError("contains no points", path)
        fmt = header.point_format
        scales = np.asarray(header.scales, dtype=np.float64)
        offsets = np.asarray(header.offsets, dtype=np.float64)
        tile_header = _tile_header(header, with_buffer=B > 0, path=path)
        # tiles of an earlier run: their buffer points are copies of a neighbour's core, kept once
        retile = has_tile_buffer(header)
        dtype = tile_header.point_format.dtype()
        if reader.point_count * dtype.itemsize > options.max_memory:
            spill_dir = Path(tempfile.mkdtemp(prefix=f".spill-{stem}-", dir=out_dir))
            store = SpillStore(spill_dir, dtype)
        else:
            store = MemoryStore()
        ground = GroundCollector(reader.point_count) if options.ground_normalize else None
        try:
            total = 0
            for chunk in reader:
                rows = chunk.points.array
                if progress is not None:
                    progress(len(rows))
                if retile:
                    rows = take_records(rows, rows[BUFFER_DIM] == 0)
                if keep_box is not None:
                    xyz = np.stack(decode_coords(rows, scales, offsets, axes=(0, 1, 2)), axis=1)
                    rows = take_records(rows, in_tile_box(xyz, *keep_box))
                    if len(rows) == 0:
                        continue
                x, y = decode_coords(rows, scales, offsets)
                ix = np.floor(x / S).astype(np.int64)
                if strip is not None:
                    total += int(strip.owns(ix).sum())
                    keep = strip.reads(ix)
                    if not keep.all():
                        rows, x, y, ix = take_records(rows, keep), x[keep], y[keep], ix[keep]
                    if len(rows) == 0:
                        continue
                else:
                    total += len(rows)
                rows = widen_records(rows, dtype)
                iy = np.floor(y / S).astype(np.int64)
                key = (ix - ix.min()) * (int(iy.max() - iy.min()) + 1) + (iy - iy.min())
                if key.max() < 2 ** 16:  # numpy sorts 16-bit keys stably by radix: ~8x faster
                    key = key.astype(np.uint16)
                order = np.argsort(key, kind="stable")
                ks = key[order]
                starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
                ends = np.r_[starts[1:], len(ks)]
                grouped = take_records(rows, order)
                for s, e in zip(starts.tolist(), ends.tolist()):
                    o = order[s]
                    store.append((int(ix[o]), int(iy[o])), grouped[s:e])
                if ground is not None:
                    z = rows["Z"] * scales[2] + offsets[2]
                    ground.add(np.c_[x, y, z],
                               decode_classification(rows, tile_header.point_format))
            model = ground.fit() if ground is not None else None
            result = FileResult(source=str(path), points=total, crs=crs_name(reader.crs))
            if raster is not None:
                result.counts = np.zeros((raster.ny, raster.nx), np.int64)
                result.zmax = np.full((raster.ny, raster.nx), -np.inf)
            owned = None if strip is None else (lambda key: strip.owns(key[0]))
            out_offsets = offsets
            if model is not None:  # heights above ground sit near 0, not near the source's Z
                out_offsets = offsets.copy()
                out_offsets[2] = 0.0
                tile_header.offsets = out_offsets
            process_cores(store, options, fmt, scales, offsets, model, result, owned, out_offsets[2])
            _write_tiles(store, options, tile_header, scales, out_offsets, out_dir, stem, raster,
                         result, owned)
        finally:
            store.close()
    return result


def _read_box(path, strip: Strip | None, bounds):
    """What `pcgen.io.open_chunks` queries for one job: the strip's box cut to ``bounds``
    (False when they do not meet), ``bounds`` alone, or None. A plain file has no octree to
    query: None, and the job keeps the points in ``bounds`` itself."""
    if bounds is None or not (is_ept(path) or pio.is_copc(path)):
        return None if strip is None else strip.box
    lo, hi = parse_bounds(bounds)
    if strip is None:
        return (*lo, *hi) if np.isfinite(lo[2]) or np.isfinite(hi[2]) else (lo[0], lo[1], hi[0], hi[1])
    x0, y0 = max(lo[0], strip.box[0]), max(lo[1], strip.box[1])
    x1, y1 = min(hi[0], strip.box[2]), min(hi[1], strip.box[3])
    if x0 > x1 or y0 > y1:
        return False
    z = (lo[2], hi[2]) if np.isfinite(lo[2]) or np.isfinite(hi[2]) else None
    return (x0, y0, x1, y1) if z is None else (x0, y0, z[0], x1, y1, z[1])


def _write_tiles(store, options: TileOptions, tile_header, scales, offsets, out_dir: Path,
                 stem: str, raster: RasterSpec | None, result: FileResult,
                 owned: Callable[[tuple], bool] | None = None) -> None:
    S, B = float(options.size), float(options.buffer)
    writer = TileWriter(tile_header, options.compress)
    bands_of = BufferBands(store, S, B, scales, offsets)
    suffix = ".laz" if options.compress else ".las"
    source = source_name(result.source)
    pending: list[tuple[Path, np.ndarray]] = []

    def flush() -> None:
        try:
            writer.write_many(pending)
        except OSError as exc:
            raise OutputError(f"cannot write tile ({exc.strerror or exc})",
                              exc.filename or out_dir) from None
        pending.clear()

    for key in store.keys():
        if owned is not None and not owned(key):
            continue  # a neighbour column, read for its buffer bands only
        core = store.get(key)
        xmin, ymin = key[0] * S, key[1] * S
        bands = []
        if B > 0:
            bands_of.release(key[0] - 1)
            for dx, dy in _NEIGHBOURS:
                nkey = (key[0] + dx, key[1] + dy)
                if nkey not in store:
                    continue
                inside = bands_of.indices(nkey, key)
                if len(inside):
                    band = take_records(store.get(nkey), inside)
                    band[BUFFER_DIM] = 1
                    bands.append(band)
        name = tile_name(stem, key, S) + suffix
        pending.append((out_dir / name, concat_records(core, bands)))
        if sum(len(rows) for _, rows in pending) >= BATCH_POINTS:
            flush()
        n_buffer = sum(len(b) for b in bands)
        if raster is not None:
            xyz = np.column_stack(decode_coords(core, scales, offsets, axes=(0, 1, 2)))
            raster.accumulate(xyz, result.counts, result.zmax)
        result.tiles.append({
            "name": name, "source": source, "tile": list(key),
            "core_bounds": [xmin, ymin, xmin + S, ymin + S],
            "buffer_bounds": [xmin - B, ymin - B, xmin + S + B, ymin + S + B],
            "data_bounds": decoded_bounds(core, scales, offsets),
            "points": int(len(core) + n_buffer), "core_points": int(len(core)), "buffer_points": int(n_buffer),
            "crs": result.crs,
        })
    flush()


# -- many files ----------------------------------------------------------------------------------
def _tile_one(args) -> FileResult:
    """Worker entry (process pool / Dask task): tile one file or one strip of it."""
    path, out_dir, options, raster, stem, strip = args
    return tile_file(path, out_dir, options, raster, stem, strip=strip)


def overview_areas(headers: list[laspy.LasHeader], size: float) -> list[list[int]]:
    """Indices of the inputs the overview draws together, largest area (in points) first.

    One picture over inputs in different CRSs, or from sites far apart, shrinks each to a dot:
    inputs share an area only if they share a CRS and their boxes, each grown by the larger of
    a tile and a tenth of its diagonal, touch (directly or through others).
    """
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    def crs_key(h):
        try:
            crs = h.parse_crs()
        except Exception:  # noqa: BLE001 - an unreadable CRS VLR only groups as "no CRS"
            crs = None
        return crs_name(crs) if crs is not None else None

    keys = [crs_key(h) for h in headers]
    lo, hi = _header_boxes(headers)
    reach = np.maximum(float(size), 0.1 * np.hypot(*(hi - lo).T))[:, None]
    boxes = shapely.box(*(lo - reach).T, *(hi + reach).T)
    a, b = shapely.STRtree(boxes).query(boxes, predicate="intersects")
    same = np.array([keys[i] == keys[j] for i, j in zip(a.tolist(), b.tolist())], dtype=bool)
    n = len(headers)
    graph = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    areas: dict[int, list[int]] = {}
    for i, lab in enumerate(label.tolist()):
        areas.setdefault(lab, []).append(i)
    return sorted(areas.values(), key=lambda m: -sum(int(headers[i].point_count) for i in m))


OVERVIEW_AREAS = 4  # rows of the overview picture, largest areas first


def _header_boxes(headers: list[laspy.LasHeader]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) lower and upper xy corners of each header's box, ends in order (a writer that
    swapped min and max leaves the data fine and the box inverted)."""
    mins = np.array([h.mins[:2] for h in headers], dtype=np.float64)
    maxs = np.array([h.maxs[:2] for h in headers], dtype=np.float64)
    return np.minimum(mins, maxs), np.maximum(mins, maxs)


def overview_raster(headers: list[laspy.LasHeader], pixels: int = 512, bounds=None) -> RasterSpec:
    """The overview's grid over the headers' boxes (cut to ``bounds``, the tiled box, when given)."""
    lo, hi = _header_boxes(headers)
    lo, hi = lo.min(axis=0), hi.max(axis=0)
    area = float(np.prod(np.maximum(hi - lo, 1e-9)))
    points = sum(int(h.point_count) for h in headers)
    if bounds is not None:
        b_lo, b_hi = parse_bounds(bounds)
        cut_lo, cut_hi = np.maximum(lo, b_lo[:2]), np.minimum(hi, b_hi[:2])
        if np.all(cut_lo <= cut_hi):  # the points it likely holds: its share of the area
            lo, hi = cut_lo, cut_hi
            cut = float(np.prod(np.maximum(hi - lo, 1e-9)))
            points, area = points * min(cut / area, 1.0), cut
    # about 4 points per pixel on average so sparse files still read as a surface
    cell = max(float((hi - lo).max()) / pixels, 2.0 * np.sqrt(area / max(points, 1)), 1e-9)
    nx, ny = (np.floor((hi - lo) / cell).astype(int) + 1).tolist()
    return RasterSpec(float(lo[0]), float(lo[1]), cell, int(nx), int(ny))


def tile_files(inputs, out_dir, options: TileOptions | None = None, *, workers: int = 1,
               dask_address: str | None = None, overwrite: bool = False,
               progress: bool = False, overview: bool = True) -> dict:
    """Tile LAS/LAZ files (or folders of them) into ``out_dir``, atomically.

    Writes ``<stem>_<xmin>_<ymin>.laz`` tiles, ``tile_index.geojson`` and ``overview.png``
    into a temporary sibling folder that replaces ``out_dir`` only when everything succeeded.

    Args:
        inputs: files and/or folders (EPT datasets, tile indexes), or one of them.
        out_dir: output folder; must not exist or be empty unless ``overwrite``.
        options: `TileOptions` (size, buffer, min_points, ground_normalize, voxel...).
        workers: processes, one file each (1 = in this process); an EPT dataset or COPC
            file over ``options.job_points`` points is cut into strips, a job each.
        dask_address: Dask scheduler address; files become tasks on that cluster
            (workers must see the same file system).
        overwrite: replace a non-empty ``out_dir``.
        progress: show a tqdm bar over input points.
        overview: render ``overview.png``.
    Returns:
        The tile index as a GeoJSON-like dict (also written to ``tile_index.geojson``).
    Raises:
        OutputError: ``out_dir`` is unsafe (`pcgen.outputs.check_output`: an input, inside
            one, or non-empty without ``overwrite``).
    """
    from pcgen.atomic import atomic_dir
    from pcgen.data.tile_index import INDEX_NAME, build_index, render_overview, write_index
    from pcgen.outputs import check_output

    options = (options or TileOptions()).validate()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number >= 1, got {workers}")
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    out_dir = check_output(out_dir, inputs, folder=True, overwrite=overwrite,
                           overwrite_hint="overwrite=True")
    files = list_inputs(inputs)
    if not files:
        raise InputError("no input files given")
    headers = read_headers(files)
    stems = unique_stems(files)
    # one raster per area the overview draws (inputs of other areas are not rasterized)
    all_areas = overview_areas(headers, options.size) if overview else []
    areas = all_areas[:OVERVIEW_AREAS]
    raster_of: dict[int, RasterSpec] = {}
    for area in areas:
        spec = overview_raster([headers[i] for i in area], bounds=options.bounds)
        raster_of.update({i: spec for i in area})
    # jobs: each input whole, or an EPT dataset's strips; owner[k] is job k's input
    plans = [plan_strips(f, options.size, options.job_points, options.ground_normalize)
             for f in files]
    owner = [i for i, plan in enumerate(plans) for _ in plan]
    strips = [s for plan in plans for s in plan]
    weights = [int(headers[i].point_count) // len(plans[i]) for i in owner]
    # EPT datasets advance the bar node by node (their chunks); other inputs point by point
    by_node = all(is_ept(f) for f in files)
    steps = [strip_nodes(files[i], s) for i, s in zip(owner, strips)] \
        if by_node else weights
    from tqdm import tqdm

    bar = tqdm(total=sum(steps), unit="node" if by_node else "pt", unit_scale=not by_node,
               disable=not progress, desc="tiling")
    try:
        with atomic_dir(out_dir) as tmp:
            # a Dask worker resolves a relative path from its own folder: send absolute ones
            sent = [Path(os.path.abspath(f)) for f in files] if dask_address else files
            jobs = [(sent[i], tmp, options, raster_of.get(i), stems[i], s)
                    for i, s in zip(owner, strips)]
            done = _run_jobs(jobs, workers, dask_address, bar, weights, steps, by_node)
            results = [FileResult.merge([r for r, i in zip(done, owner) if i == k])
                       for k in range(len(files))]
            if options.bounds is not None and not any(r.tiles or r.dropped_tiles for r in results):
                raise InputError(f"bounds {bounds_text(options.bounds)} hold no point of "
                                 f"{'the input' if len(files) == 1 else f'the {len(files)} inputs'}",
                                 files[0] if len(files) == 1 else None)
            dropped = sum(r.dropped_tiles for r in results)
            if dropped and not any(r.tiles for r in results):
                raise NoTilesKept(f"min-points {options.min_points} dropped every one of the "
                                  f"{dropped} tiles (nothing written)")
            index = build_index(results, options)
            write_index(index, tmp / INDEX_NAME)
            if overview:
                render_overview([[results[i] for i in area] for area in areas],
                                [raster_of[area[0]] for area in areas], tmp / "overview.png",
                                areas_in_all=len(all_areas))
    finally:
        bar.close()
    return index


def _run_jobs(jobs, workers: int, dask_address: str | None, bar, weights: list[int],
              steps: list[int], by_node: bool) -> list[FileResult]:
    """Tile every job through `pcgen.dispatch.run_all`; ``steps[i]`` is job i's share of the
    bar (points, or EPT nodes). Files tiled in this process advance it chunk by chunk."""
    from pcgen.dispatch import run_all

    shown = [0]  # the current in-process file's chunks already on the bar

    def step(n: int) -> None:
        n = 1 if by_node else n
        shown[0] += n
        bar.update(n)

    def tile_here(job) -> FileResult:
        path, out_dir, options, raster, stem, strip = job
        return tile_file(path, out_dir, options, raster, stem, progress=step, strip=strip)

    def done(i: int, _result) -> None:
        bar.update(steps[i] - shown[0])
        shown[0] = 0

    return run_all(_tile_one, jobs, workers=workers, dask_address=dask_address, on_done=done,
                   weights=weights, preload=["pcgen.data.tiling"], local=tile_here)
