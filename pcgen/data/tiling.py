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
    the cores exactly. With ``B = 0`` no buffer dimension is added.

Pipeline per file (one process / Dask task per file or EPT dataset)
    1. stream chunks (laspy's chunk iterator; an EPT dataset's octree nodes, one chunk each,
       through `pcgen.io.open_chunks`); group each chunk's raw point records by core
       tile with one ``argsort`` and append them to a store: in memory, or raw spill files
       when the file's records exceed ``max_memory``; collect ground candidates on the way.
    2. per core: voxel thinning (one point per voxel, the one nearest its centre; voxels on
       the global grid), height normalization (Z minus the ground surface), min-points drop.
    3. per tile: core + the neighbours' buffer bands, written as LAZ with the source header
       (scales, offsets, CRS, VLRs/EVLRs) through laspy's writer.
Point records are moved as raw bytes throughout, so points that are not thinned or
height-normalized leave bit-identical to how they came in.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import laspy
import numpy as np

import pcgen.io as pio
from pcgen.data.ground import GroundCollector, GroundModel
from pcgen.errors import ConfigError, InputError, OutputError
from pcgen.io.copc import strip_copc_vlrs
from pcgen.io.ept import EPT_NAME, EptDataset, is_ept
from pcgen.io.las import check_header, write_las_records

BUFFER_DIM = "buffer"
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
    """

    size: float = 50.0
    buffer: float = 5.0
    min_points: int = 0
    ground_normalize: bool = False
    voxel: float | None = None
    chunk_size: int = 2_000_000
    max_memory: int = 2 * 1024 ** 3
    compress: bool = True

    def validate(self) -> "TileOptions":
        if not (math.isfinite(self.size) and self.size > 0):
            raise ConfigError(f"tile size must be > 0, got {self.size:g}")
        if not (math.isfinite(self.buffer) and self.buffer >= 0):
            raise ConfigError(f"buffer must be >= 0, got {self.buffer:g}")
        if self.buffer >= self.size:
            raise ConfigError(f"buffer ({self.buffer:g}) must be smaller than the tile size "
                              f"({self.size:g})")
        if self.min_points < 0:
            raise ConfigError(f"min-points must be >= 0, got {self.min_points}")
        if self.voxel is not None and not (math.isfinite(self.voxel) and self.voxel > 0):
            raise ConfigError(f"voxel size must be > 0, got {self.voxel:g}")
        if self.chunk_size <= 0:
            raise ConfigError("chunk size must be > 0")
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


# -- stores: core records grouped by tile key --------------------------------------------------
class _MemoryStore:
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
            self._xy[key] = tuple(_coords(self.get(key), scales, offsets))
        return self._xy[key]

    def __contains__(self, key) -> bool:
        return key in self._parts

    def close(self) -> None:
        self._parts.clear()
        self._xy.clear()


class _SpillStore:
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
        return tuple(_coords(self.get(key), scales, offsets))

    def __contains__(self, key) -> bool:
        return key in self._keys

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


# -- helpers on raw records --------------------------------------------------------------------
def _coords(rows: np.ndarray, scales, offsets, axes=(0, 1)) -> list[np.ndarray]:
    names = ("X", "Y", "Z")
    return [rows[names[a]] * scales[a] + offsets[a] for a in axes]


def _classification(rows: np.ndarray, fmt: laspy.PointFormat) -> np.ndarray:
    record = laspy.PackedPointRecord(rows, fmt)
    return np.asarray(record["classification"])


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


def _laz_backend(n_points: int):
    """lazrs' parallel coder only pays off over several 50 000-point LAZ chunks."""
    if n_points < 150_000 and laspy.LazBackend.Lazrs.is_available():
        return laspy.LazBackend.Lazrs
    return None


def tile_name(stem: str, key, size: float) -> str:
    def fmt(v: float) -> str:
        return str(int(round(v))) if float(size).is_integer() else f"{v:.3f}"

    return f"{stem}_{fmt(key[0] * size)}_{fmt(key[1] * size)}"


def _tile_header(source: laspy.LasHeader, with_buffer: bool) -> laspy.LasHeader:
    header = strip_copc_vlrs(source)  # a COPC input's tiles are plain LAZ, not octrees
    if with_buffer and BUFFER_DIM not in header.point_format.dimension_names:
        header.add_extra_dims([laspy.ExtraBytesParams(
            name=BUFFER_DIM, type=np.uint8, description="1: buffer point, 0: tile core")])
    return header


def _take(rows: np.ndarray, index) -> np.ndarray:
    """``rows[index]`` through a void view: numpy gathers odd-sized packed records ~10x
    faster as opaque bytes than field by field."""
    void = np.dtype((np.void, rows.dtype.itemsize))
    return np.ascontiguousarray(rows).view(void)[index].view(rows.dtype)


def _concat(core: np.ndarray, bands: list[np.ndarray]) -> np.ndarray:
    if not bands:
        return core
    void = np.dtype((np.void, core.dtype.itemsize))
    return np.concatenate([np.ascontiguousarray(a).view(void) for a in (core, *bands)]).view(
        core.dtype)


def _widen(rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Source records in the tile layout (source fields + a trailing u1 ``buffer`` = 0).

    Done once per chunk so tiles are written without another copy of their core points.
    """
    if rows.dtype == dtype:
        return rows
    out = np.zeros(len(rows), dtype=dtype)
    src = np.ascontiguousarray(rows)
    out.view(np.uint8).reshape(len(rows), dtype.itemsize)[:, :rows.dtype.itemsize] = \
        src.view(np.uint8).reshape(len(rows), rows.dtype.itemsize)
    return out


# -- one file ----------------------------------------------------------------------------------
def tile_file(path, out_dir, options: TileOptions, raster: RasterSpec | None = None,
              stem: str | None = None, progress: Callable[[int], None] | None = None) -> FileResult:
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
    Returns:
        `FileResult` with one dict per written tile (name, bounds, counts).
    """
    path, out_dir = Path(path), Path(out_dir)
    options = options.validate()
    stem = stem or input_stem(path)
    S, B = float(options.size), float(options.buffer)
    with pio.open_chunks(path, options.chunk_size) as reader:
        header = reader.header
        if reader.point_count == 0:
            raise InputError("contains no points", path)
        fmt = header.point_format
        scales = np.asarray(header.scales, dtype=np.float64)
        offsets = np.asarray(header.offsets, dtype=np.float64)
        tile_header = _tile_header(header, with_buffer=B > 0)
        dtype = tile_header.point_format.dtype()
        if reader.point_count * dtype.itemsize > options.max_memory:
            spill_dir = Path(tempfile.mkdtemp(prefix=f".spill-{stem}-", dir=out_dir))
            store = _SpillStore(spill_dir, dtype)
        else:
            store = _MemoryStore()
        ground = GroundCollector(reader.point_count) if options.ground_normalize else None
        try:
            total = 0
            for chunk in reader:
                rows = _widen(chunk._record.array, dtype)
                x, y = _coords(rows, scales, offsets)
                ix = np.floor(x / S).astype(np.int64)
                iy = np.floor(y / S).astype(np.int64)
                key = (ix - ix.min()) * (int(iy.max() - iy.min()) + 1) + (iy - iy.min())
                order = np.argsort(key, kind="stable")
                ks = key[order]
                starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
                ends = np.r_[starts[1:], len(ks)]
                grouped = _take(rows, order)
                for s, e in zip(starts.tolist(), ends.tolist()):
                    o = order[s]
                    store.append((int(ix[o]), int(iy[o])), grouped[s:e])
                if ground is not None:
                    z = rows["Z"] * scales[2] + offsets[2]
                    ground.add(np.c_[x, y, z], _classification(rows, tile_header.point_format))
                total += len(rows)
                if progress is not None:
                    progress(len(rows))
            model = ground.fit() if ground is not None else None
            result = FileResult(source=str(path), points=total, crs=_crs_text(reader.crs))
            if raster is not None:
                result.counts = np.zeros((raster.ny, raster.nx), np.int64)
                result.zmax = np.full((raster.ny, raster.nx), -np.inf)
            _process_cores(store, options, fmt, scales, offsets, model, result)
            _write_tiles(store, options, tile_header, scales, offsets, out_dir, stem, raster,
                         result)
        finally:
            store.close()
    return result


def _crs_text(crs) -> str | None:
    """"EPSG:n" when the CRS was given by code, else its name (identifying a WKT CRS against
    the EPSG database can take a third of a second per file)."""
    if crs is None:
        return None
    if crs.srs.upper().startswith("EPSG:"):
        return crs.srs.upper()
    epsg = crs.to_epsg(min_confidence=100) if len(crs.srs) < 64 else None
    return f"EPSG:{epsg}" if epsg else crs.name


def _process_cores(store, options: TileOptions, fmt, scales, offsets,
                   ground: GroundModel | None, result: FileResult) -> None:
    """Thin, height-normalize and drop cores in place in the store."""
    for key in store.keys():
        core = store.get(key)
        changed = False
        if options.voxel is not None:
            x, y, z = _coords(core, scales, offsets, axes=(0, 1, 2))
            keep = voxel_keep(np.c_[x, y, z], options.voxel)
            if len(keep) < len(core):
                result.thinned_points += len(core) - len(keep)
                core = _take(core, keep)
                changed = True
        if len(core) < options.min_points:
            result.dropped_points += len(core)
            result.dropped_tiles += 1
            store.drop(key)
            continue
        if ground is not None:
            x, y, z = _coords(core, scales, offsets, axes=(0, 1, 2))
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


def _write_tiles(store, options: TileOptions, tile_header, scales, offsets, out_dir: Path,
                 stem: str, raster: RasterSpec | None, result: FileResult) -> None:
    S, B = float(options.size), float(options.buffer)
    fmt = tile_header.point_format
    suffix = ".laz" if options.compress else ".las"
    for key in store.keys():
        core = store.get(key)
        xmin, ymin = key[0] * S, key[1] * S
        bands = []
        if B > 0:
            for dx, dy in _NEIGHBOURS:
                nkey = (key[0] + dx, key[1] + dy)
                if nkey not in store:
                    continue
                nb = store.get(nkey)
                x, y = store.xy(nkey, scales, offsets)
                inside = (x >= xmin - B) & (x < xmin + S + B) & (y >= ymin - B) & (y < ymin + S + B)
                if inside.any():
                    band = _take(nb, inside)
                    band[BUFFER_DIM] = 1
                    bands.append(band)
        name = tile_name(stem, key, S) + suffix
        # one record per tile: laspy's writer pays a header update per write_points call
        rows = _concat(core, bands)
        try:
            write_las_records(out_dir / name, tile_header, [laspy.PackedPointRecord(rows, fmt)],
                              compress=options.compress, laz_backend=_laz_backend(len(rows)))
        except OSError as exc:
            raise OutputError(f"cannot write tile ({exc.strerror or exc})", out_dir / name) from None
        n_buffer = sum(len(b) for b in bands)
        xyz = np.column_stack(_coords(core, scales, offsets, axes=(0, 1, 2)))
        if raster is not None:
            raster.accumulate(xyz, result.counts, result.zmax)
        result.tiles.append({
            "name": name, "source": _source_name(result.source), "tile": list(key),
            "core_bounds": [xmin, ymin, xmin + S, ymin + S],
            "buffer_bounds": [xmin - B, ymin - B, xmin + S + B, ymin + S + B],
            "data_bounds": [*xyz.min(axis=0).tolist(), *xyz.max(axis=0).tolist()],
            "points": int(len(core) + n_buffer), "core_points": int(len(core)), "buffer_points": int(n_buffer),
            "crs": result.crs,
        })


# -- many files ----------------------------------------------------------------------------------
def _tile_one(args) -> FileResult:
    """Worker entry (process pool / Dask task): tile one file."""
    path, out_dir, options, raster, stem = args
    return tile_file(path, out_dir, options, raster, stem)


def input_files(inputs: Iterable) -> list[Path]:
    """Expand files and folders (their ``*.las``/``*.laz``) into a sorted, de-duplicated list.

    An EPT dataset (its ``ept.json`` or the folder holding it) is one input, named by its
    ``ept.json``; COPC files are LAZ files.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if is_ept(p):
            files.append(p / EPT_NAME if p.is_dir() else p)
        elif p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in (".las", ".laz"))
            if not found:
                raise InputError("folder holds no .las/.laz files (nor an EPT ept.json)", p)
            files.extend(found)
        elif p.is_file():
            if p.suffix.lower() not in (".las", ".laz"):
                raise InputError("not a .las/.laz file", p)
            files.append(p)
        else:
            raise InputError("file not found", p)
    seen, out = set(), []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            out.append(f)
    return out


def read_headers(files: list[Path]) -> list[laspy.LasHeader]:
    """Open and check every header up front so a bad file fails the run before anything is
    written: scales, offsets and bounds go through `pcgen.io.las.check_header`, the one check
    every reader applies (a 0 or NaN scale collapses every X; NaN bounds break the grid).

    An EPT dataset's header is its first node's, with the dataset's point count and extent.
    """
    headers = []
    for f in files:
        if is_ept(f):
            with pio.open_chunks(f) as reader:
                headers.append(check_header(reader.header, f))
            continue
        try:
            with laspy.open(f) as reader:
                header = reader.header
        except BaseException as exc:  # noqa: BLE001 - lazrs panics derive from BaseException
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise InputError(f"not a readable LAS/LAZ file ({str(exc).strip()[:200]})", f) \
                from None
        if header.point_count == 0:
            raise InputError("contains no points", f)
        headers.append(check_header(header, f))
    return headers


def _source_name(path: str) -> str:
    """A tile's source as the index names it: the file name, ``<folder>/ept.json`` for EPT."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.name == EPT_NAME else p.name


def input_stem(path: Path) -> str:
    """Tile-name prefix of an input: the file's stem, an EPT dataset's folder name."""
    path = Path(path)
    return path.resolve().parent.name if is_ept(path) else path.stem


def unique_stems(files: list[Path]) -> list[str]:
    stems, used = [], set()
    for f in files:
        base = input_stem(f)
        stem, n = base, 2
        while stem in used:
            stem, n = f"{base}-{n}", n + 1
        used.add(stem)
        stems.append(stem)
    return stems


def overview_raster(headers: list[laspy.LasHeader], pixels: int = 512) -> RasterSpec:
    lo = np.min([h.mins[:2] for h in headers], axis=0)
    hi = np.max([h.maxs[:2] for h in headers], axis=0)
    area = float(np.prod(np.maximum(hi - lo, 1e-9)))
    points = sum(int(h.point_count) for h in headers)
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
        inputs: files and/or folders.
        out_dir: output folder; must not exist or be empty unless ``overwrite``.
        options: `TileOptions` (size, buffer, min_points, ground_normalize, voxel...).
        workers: processes, one file each (1 = in this process).
        dask_address: Dask scheduler address; files become tasks on that cluster
            (workers must see the same file system).
        overwrite: replace a non-empty ``out_dir``.
        progress: show a tqdm bar over input points.
        overview: render ``overview.png``.
    Returns:
        The tile index as a GeoJSON-like dict (also written to ``tile_index.geojson``).
    """
    from pcgen.atomic import atomic_dir
    from pcgen.data.tile_index import build_index, render_overview, write_index

    options = (options or TileOptions()).validate()
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    files = input_files(inputs)
    if not files:
        raise InputError("no input files given")
    headers = read_headers(files)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError("output path exists and is not a folder", out_dir)
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OutputError("output folder exists and is not empty (pass --overwrite to replace it)",
                          out_dir)
    stems = unique_stems(files)
    raster = overview_raster(headers) if overview else None
    weights = [int(h.point_count) for h in headers]
    # EPT datasets advance the bar node by node (their chunks); other inputs point by point
    by_node = all(is_ept(f) for f in files)
    steps = [len(EptDataset(f).select()) for f in files] if by_node else weights
    from tqdm import tqdm

    bar = tqdm(total=sum(steps), unit="node" if by_node else "pt", unit_scale=not by_node,
               disable=not progress, desc="tiling")
    try:
        with atomic_dir(out_dir) as tmp:
            jobs = [(f, tmp, options, raster, s) for f, s in zip(files, stems)]
            results = _run_jobs(jobs, workers, dask_address, bar, weights, steps, by_node)
            index = build_index(results, options)
            write_index(index, tmp / "tile_index.geojson")
            if overview:
                render_overview(results, raster, index, tmp / "overview.png")
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
        return tile_file(*job, progress=step)

    def done(i: int, _result) -> None:
        bar.update(steps[i] - shown[0])
        shown[0] = 0

    return run_all(_tile_one, jobs, workers=workers, dask_address=dask_address, on_done=done,
                   weights=weights, preload=["pcgen.data.tiling"], local=tile_here)
