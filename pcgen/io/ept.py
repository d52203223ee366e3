"""Entwine Point Tiles (EPT): read an octree of LAZ nodes by bounds and resolution.

An EPT dataset is a folder with ``ept.json`` (bounds of the root cube, ``span``, schema,
SRS, data type), ``ept-hierarchy/*.json`` (node key ``"D-X-Y-Z"`` -> point count, ``-1``
meaning "continued in ``ept-hierarchy/D-X-Y-Z.json``") and ``ept-data/D-X-Y-Z.laz``, one LAZ
file per octree node. Every point is stored in exactly one node, so the union of the
nodes is the whole cloud; shallow nodes hold a coarse, evenly spread subset.

Node ``D-X-Y-Z`` is the cube of side ``W / 2**D`` (``W`` the root cube's side) whose
minimum corner is ``root_min + (X, Y, Z) * W / 2**D``; its points are about
``W / span / 2**D`` apart. A ``resolution`` r keeps depths ``0..ceil(log2(W / span / r))``,
the rule of PDAL's ``readers.ept`` and laspy's ``CopcReader``: the deepest kept depth is
the first whose spacing is at most r.

Specification: https://entwine.io/en/latest/entwine-point-tile.html
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import laspy
import numpy as np

from pcgen.errors import ConfigError, InputError
from pcgen.io.bounds import bounds_text, check_overlap, in_bounds, overlaps, parse_bounds
from pcgen.io.cloud import PointCloud, parse_crs
from pcgen.io.crs import store_crs
from pcgen.io.laz_batch import decode_many, parse_laz

EPT_NAME = "ept.json"
# Nodes decode in batches of about this many points, one parallel lazrs call each
# (`pcgen.io.laz_batch`), a batch or two ahead of the consumer: memory stays at a few batches.
_BATCH_POINTS = 400_000
_PREFETCH_PER_WORKER = 2


MIN_RESOLUTION = 1e-9  # a nanometre: finer than any octree's deepest level


def check_resolution(resolution) -> float:
    """``resolution`` as a positive float, else `ConfigError`."""
    try:
        if isinstance(resolution, bool):  # float(True) is 1.0: a flag, not a spacing
            raise TypeError
        value = float(resolution)
    except (TypeError, ValueError):
        raise ConfigError(f"resolution must be a number, got {resolution!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"resolution must be a finite number > 0, got {resolution!r}")
    if value < MIN_RESOLUTION:  # 1e-309: the octree depth it asks for overflowed
        raise ConfigError(f"resolution must be >= {MIN_RESOLUTION:g} (CRS units), got {resolution!r}")
    return value


# -- metadata ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EptNode:
    """One octree node: key (depth, x, y, z), its point count, its cube."""

    depth: int
    x: int
    y: int
    z: int
    count: int
    mins: tuple[float, float, float]
    maxs: tuple[float, float, float]

    @property
    def name(self) -> str:
        return f"{self.depth}-{self.x}-{self.y}-{self.z}"


def is_ept(path) -> bool:
    """True for an ``ept.json`` file or a folder holding one."""
    p = Path(path)
    return p.name == EPT_NAME or (p.is_dir() and (p / EPT_NAME).is_file())


def _parse_key(text: str) -> tuple[int, int, int, int]:
    parts = text.split("-")
    if len(parts) != 4:
        raise ValueError(f"node key {text!r} is not D-X-Y-Z")
    key = tuple(int(p) for p in parts)
    if min(key) < 0:
        raise ValueError(f"node key {text!r} is negative")
    return key  # type: ignore[return-value]


class EptDataset:
    """The metadata of one EPT dataset (``ept.json``), with node selection over its hierarchy.

    Args:
        path: ``ept.json`` or the folder that holds it.
    Raises:
        InputError: missing or corrupt ``ept.json``, or a data/hierarchy type pcgen cannot read.
    """

    def __init__(self, path):
        path = Path(path)
        self.path = path / EPT_NAME if path.is_dir() else path
        self.root = self.path.parent
        if not self.path.is_file():
            raise InputError("EPT dataset not found (no ept.json)", self.path)
        try:
            meta = json.loads(self.path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"corrupt ept.json ({str(exc)[:120]})", self.path) from None
        try:
            bounds = np.asarray([float(v) for v in meta["bounds"]], dtype=np.float64)
            self.span = int(meta["span"])
            self.points = int(meta["points"])
            self.data_type = str(meta["dataType"])
            hierarchy_type = str(meta.get("hierarchyType", "json"))
            self.srs = meta.get("srs") or {}
            if not isinstance(self.srs, dict):
                raise InputError(f'"srs" must be an object like {{"authority": "EPSG", "horizontal": '
                                 f'"32605"}}, got {str(self.srs)[:60]!r}', self.path)
            self.schema = list(meta.get("schema") or [])
            conforming = meta.get("boundsConforming", meta["bounds"])
            conforming = np.asarray([float(v) for v in conforming], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"corrupt ept.json (bad or missing {exc})", self.path) from None
        if len(bounds) != 6 or len(conforming) != 6 or not np.isfinite(bounds).all() \
                or (bounds[3:] <= bounds[:3]).any() or self.span <= 0:
            raise InputError("corrupt ept.json (bounds must be 6 finite numbers, min < max, and "
                             "span > 0)", self.path)
        if self.data_type != "laszip":
            raise InputError(f"EPT data type {self.data_type!r} is not supported (pcgen reads "
                             "'laszip' datasets; convert with 'entwine build' or PDAL)", self.path)
        if hierarchy_type != "json":
            raise InputError(f"EPT hierarchy type {hierarchy_type!r} is not supported (only 'json')",
                             self.path)
        self.mins, self.maxs = bounds[:3], bounds[3:]
        self.data_mins, self.data_maxs = conforming[:3], conforming[3:]

    # -- geometry -------------------------------------------------------------------------------
    @property
    def width(self) -> float:
        """Side of the root cube (EPT bounds are cubic; x is used as PDAL does)."""
        return float(self.maxs[0] - self.mins[0])

    def spacing(self, depth: int) -> float:
        """Approximate point spacing of the nodes at ``depth``."""
        return self.width / self.span / 2 ** depth

    def max_depth(self, resolution: float) -> int:
        """Deepest depth a query at ``resolution`` needs (the first with spacing <= it)."""
        return max(0, math.ceil(math.log2(self.spacing(0) / check_resolution(resolution))))

    def node(self, key: tuple[int, int, int, int], count: int) -> EptNode:
        d, x, y, z = key
        side = self.width / 2 ** d
        lo = self.mins + np.array([x, y, z], dtype=np.float64) * side
        return EptNode(d, x, y, z, count, tuple(lo.tolist()), tuple((lo + side).tolist()))

    @property
    def crs(self):
        """pyproj CRS from ``srs``: ``authority:horizontal[+vertical]`` when given (the code keeps
        its name through tiling and LAS headers), else the WKT; None when absent."""
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            if self.srs.get("authority") and self.srs.get("horizontal"):
                code = f"{self.srs['authority']}:{self.srs['horizontal']}"
                if self.srs.get("vertical"):
                    code += f"+{self.srs['vertical']}"
                return CRS.from_user_input(code)
            if self.srs.get("wkt"):
                return CRS.from_wkt(self.srs["wkt"])
        except CRSError as exc:
            raise InputError(f"unreadable srs in ept.json ({str(exc)[:120]})", self.path) from None
        return None

    # -- hierarchy ------------------------------------------------------------------------------
    def _page(self, name: str) -> dict[tuple[int, int, int, int], int]:
        page_path = self.root / "ept-hierarchy" / f"{name}.json"
        try:
            doc = json.loads(page_path.read_text())
        except FileNotFoundError:
            raise InputError("EPT hierarchy file missing", page_path) from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"corrupt EPT hierarchy file ({str(exc)[:120]})", page_path) from None
        try:
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            page = {}
            for key, count in doc.items():
                if not isinstance(count, int) or count < -1:
                    raise ValueError(f"count {count!r} of {key} is not an integer >= -1")
                page[_parse_key(key)] = count
        except ValueError as exc:
            raise InputError(f"corrupt EPT hierarchy file ({exc})", page_path) from None
        return page

    def select(self, bounds=None, resolution: float | None = None) -> list[EptNode]:
        """Nodes whose cube meets ``bounds`` (see `parse_bounds`), down to ``resolution``'s depth.

        Sub-hierarchy pages are read only for nodes that pass both tests. Returns nodes sorted
        by (depth, x, y, z).

        Raises:
            InputError: missing/corrupt hierarchy pages; bounds that miss the data; a whole-
                dataset walk whose counts do not add up to ``ept.json``'s ``points``.
        """
        lo, hi = (np.full(3, -np.inf), np.full(3, np.inf)) if bounds is None \
            else check_overlap(bounds, self.data_mins, self.data_maxs, self.path)
        depth_max = math.inf if resolution is None else self.max_depth(resolution)
        nodes: list[EptNode] = []
        pending, loaded, listed = ["0-0-0-0"], set(), {}
        while pending:
            name = pending.pop()
            loaded.add(name)
            for key, count in self._page(name).items():
                node = self.node(key, count)
                if key in listed and not (listed[key][0] == -1 and key == _parse_key(name)):
                    # a page lists its own root again; any other repeat would read a node twice
                    raise InputError(f"EPT hierarchy lists node {node.name} twice (pages {listed[key][1]} "
                                     f"and {name})", self.root / "ept-hierarchy" / f"{name}.json")
                listed[key] = (count, name)
                if key[0] > depth_max or not overlaps(lo, hi, np.array(node.mins),
                                                       np.array(node.maxs)):
                    continue
                if count == -1:
                    if node.name in loaded:
                        raise InputError(f"EPT hierarchy page {node.name} refers to itself",
                                         self.root / "ept-hierarchy" / f"{node.name}.json")
                    pending.append(node.name)
                elif count > 0:
                    nodes.append(node)
        if bounds is None and resolution is None:
            total = sum(n.count for n in nodes)
            if total != self.points:
                raise InputError(f"EPT hierarchy counts {total} points but ept.json says "
                                 f"{self.points}", self.path)
        return sorted(nodes, key=lambda n: (n.depth, n.x, n.y, n.z))

    def node_path(self, node: EptNode) -> Path:
        return self.root / "ept-data" / f"{node.name}.laz"


# -- decoding ------------------------------------------------------------------------------------
def _read_node(dataset: EptDataset, node: EptNode, header_only: bool = False):
    """(header, points) of one node file, checked against the hierarchy's count."""
    path = dataset.node_path(node)
    try:
        with laspy.open(path) as reader:
            header = reader.header
            if header.point_count != node.count:
                raise InputError(f"EPT node {node.name} holds {header.point_count} points but the "
                                 f"hierarchy says {node.count}", path)
            points = None if header_only else reader.read_points(-1)
    except FileNotFoundError:
        raise InputError(f"EPT node file missing (the hierarchy lists {node.count} points)",
                         path) from None
    except InputError:
        raise
    except BaseException as exc:  # lazrs raises pyo3 PanicException
        if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError)):
            raise
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise InputError(f"unreadable EPT node {node.name} ({text})", path) from None
    if points is not None and len(points) != node.count:
        raise InputError(f"EPT node {node.name} holds {len(points)} points but the hierarchy "
                         f"says {node.count}", path)
    return header, points


def _read_batch(dataset: EptDataset, nodes: list[EptNode]) -> list:
    """(header, points) of each node, their chunks decoded together on every core.

    A batch the fast path cannot take (a missing or broken node file, nodes coded with
    different LAZ settings) is read node by node, so a broken node raises its own error.
    """
    try:
        files = [parse_laz(dataset.node_path(n).read_bytes()) for n in nodes]
        arrays = decode_many(files)
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except BaseException:  # noqa: BLE001 (lazrs raises pyo3 PanicException)
        return [_read_node(dataset, n) for n in nodes]
    out = []
    for node, f, rows in zip(nodes, files, arrays):
        if f.header.point_count != node.count:
            raise InputError(f"EPT node {node.name} holds {f.header.point_count} points but the "
                             f"hierarchy says {node.count}", dataset.node_path(node))
        out.append((f.header, laspy.PackedPointRecord(rows, f.header.point_format)))
    return out


def _batches(nodes: list[EptNode], points: int = _BATCH_POINTS) -> list[list[EptNode]]:
    """Consecutive runs of nodes holding about ``points`` points each (a node is never split)."""
    out, run, n = [], [], 0
    for node in nodes:
        if run and n + node.count > points:
            out.append(run)
            run, n = [], 0
        run.append(node)
        n += node.count
    return out + [run] if run else out


class EptChunkReader:
    """Iterate the selected nodes of an EPT dataset as `PointCloud` chunks, one per node.

    Same face as `pcgen.io.ChunkReader` (``path``, ``header``, ``crs``, ``point_count``) plus
    ``nodes``. ``point_count`` is exact for an unbounded query and an upper bound otherwise
    (nodes cut by the bounds lose points; nodes left empty are skipped, as laspy's chunk
    iterator never yields an empty chunk). Nodes decode in batches, each batch's chunks in one
    parallel call (`pcgen.io.laz_batch`), a batch or two ahead of the consumer on a thread
    pool, so memory stays at a few batches.
    """

    def __init__(self, dataset: EptDataset, bounds=None, resolution: float | None = None,
                 workers: int | None = None):
        self.dataset = dataset
        self.path = dataset.path
        self.nodes = dataset.select(bounds, resolution)
        if not self.nodes:
            what = "the dataset" if bounds is None else f"bounds {bounds_text(bounds)}"
            raise InputError(f"{what} hold no points in any EPT node", dataset.path)
        self._bounds = None if bounds is None else parse_bounds(bounds)
        self.point_count = sum(n.count for n in self.nodes)
        header, _ = _read_node(dataset, self.nodes[0], header_only=True)
        # no srs in ept.json: the nodes' own CRS, as every chunk and the tile index then say
        self.crs = dataset.crs if dataset.crs is not None else parse_crs(header)
        self.header = _dataset_header(header, self.crs, self.point_count)
        # the extent a caller plans with (tiling's overview raster): the data, cut by the box
        lo, hi = dataset.data_mins, dataset.data_maxs
        if self._bounds is not None:
            lo, hi = np.maximum(lo, self._bounds[0]), np.minimum(hi, self._bounds[1])
        self.header.mins, self.header.maxs = lo, hi
        self.workers = workers or min(4, os.cpu_count() or 1)

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[PointCloud]:
        fmt = self.header.point_format
        dtype = fmt.dtype()
        grid = (np.asarray(self.header.scales), np.asarray(self.header.offsets))
        window = max(1, self.workers * _PREFETCH_PER_WORKER)
        batches = _batches(self.nodes)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="ept") as pool:
            futures = [pool.submit(_read_batch, self.dataset, b) for b in batches[:window]]
            for i in range(len(batches)):
                decoded = futures[i].result()
                futures[i] = None  # drop the decoded batch once it is handed on
                if i + window < len(batches):
                    futures.append(pool.submit(_read_batch, self.dataset, batches[i + window]))
                yield from self._chunks(decoded, dtype, grid)

    def _chunks(self, decoded, dtype, grid) -> Iterator[PointCloud]:
        """One `PointCloud` per decoded node, in the dataset's format and grid, cut to the bounds."""
        for header, points in decoded:
            if points.array.dtype != dtype or not (
                    np.array_equal(header.scales, grid[0])
                    and np.array_equal(header.offsets, grid[1])):
                # a node in another format or grid: pack it into the dataset's
                points = PointCloud(header=header, points=points).to_record(self.header)
            cloud = PointCloud(header=self.header, points=points, crs=self.crs)
            if self._bounds is not None:
                cloud = cloud.select(in_bounds(cloud.xyz, *self._bounds))
                if len(cloud) == 0:
                    continue  # a node whose cube meets the box but none of its points
            yield cloud


def _dataset_header(node_header: laspy.LasHeader, crs, point_count: int) -> laspy.LasHeader:
    """The first node's header standing for the dataset: its point format, grid and VLRs, with
    the EPT SRS as CRS when the node carries none or another one."""
    header = copy.deepcopy(node_header)
    if crs is not None and parse_crs(header) != crs:
        with contextlib.suppress(ValueError):  # a LAS 1.2 node cannot hold it: writing says so
            store_crs(header, crs)
    header.point_count = point_count
    return header


@contextlib.contextmanager
def open_ept_chunks(path, bounds=None, resolution: float | None = None,
                    workers: int | None = None) -> Iterator[EptChunkReader]:
    """Context manager yielding an `EptChunkReader` over the nodes a query needs.

    Example:
        >>> with open_ept_chunks("hawaii_ept/ept.json", bounds=(202000, 2184000, 202100, 2184100)) as nodes:
        ...     for chunk in nodes:
        ...         print(len(chunk))
    """
    yield EptChunkReader(EptDataset(path), bounds, resolution, workers)


def read_ept(path, bounds=None, resolution: float | None = None,
             workers: int | None = None,
             progress: Callable[[int], None] | None = None) -> PointCloud:
    """Read an EPT dataset (``ept.json`` or its folder) into one `PointCloud`.

    Args:
        path: ``ept.json`` or the dataset folder.
        bounds: ``(xmin, ymin, xmax, ymax)`` or ``(xmin, ymin, zmin, xmax, ymax, zmax)`` in the
            dataset's CRS units, closed box; None for everything.
        resolution: coarsest acceptable point spacing; keeps only the octree depths needed.
        workers: decoding threads (default: up to 4).
        progress: called once per decoded node with its number of points.
    Returns:
        `PointCloud` in the first node's point format and grid, CRS from the EPT ``srs``.
    Raises:
        InputError: see `EptDataset`, `EptDataset.select`, and missing, unreadable or miscounted
            node files. ConfigError: malformed ``bounds`` or ``resolution``.
    """
    with open_ept_chunks(path, bounds, resolution, workers) as reader:
        dtype = reader.header.point_format.dtype()
        out = np.empty(reader.point_count, dtype=dtype)  # filled in place: one copy in memory
        n = 0
        for chunk in reader:
            rows = chunk.points.array
            out[n:n + len(rows)] = rows
            n += len(rows)
            if progress is not None:
                progress(len(rows))
        header = copy.deepcopy(reader.header)
        header.point_count = n
        record = laspy.PackedPointRecord(out[:n].copy() if n < len(out) else out,
                                         header.point_format)
        return PointCloud(header=header, points=record, crs=reader.crs)
