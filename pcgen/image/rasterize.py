"""LiDAR → PNG rasters (canopy height model or digital surface model) the image LDM can train on.

Per cell of ``res`` file units (by default the finest that the sparsest input fills, see
:func:`auto_res`): the highest return (DSM), minus the ground surface for a CHM
(pcgen's ground model: class-2 points when present, else a low percentile of all points), with
single-cell pits (ground-only cells inside crowns) filled by default.
A 3-channel raster adds point density and the standard deviation of z per cell (vertical
structure), so an RGB-shaped LDM sees more than height. Empty cells are filled from the nearest
filled cell; tiles that are mostly empty are dropped. An ``index.json`` records, per PNG, the source,
bounds and the value range each channel's 0–255 maps to.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from pcgen.atomic import atomic_dir
from pcgen.errors import ConfigError, InputError, ShapeError
from pcgen.options import MAX_EXTENT

__all__ = ["Raster", "auto_res", "fill_pits", "rasterize_points", "rasterize_files"]

AUTO_POINTS_PER_CELL = 3.0  # expected points in a cell at the auto resolution: e^-3, 5% empty where even
NICE_RES = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)  # what ``res="auto"`` picks from


@dataclass
class Raster:
    """Channels ``(H, W, C)`` float64 (row 0 = north), ``valid`` ``(H, W)`` cells that held points,
    the upper-left corner ``(x0, y1)``, cell size ``res`` and channel names."""

    values: np.ndarray
    valid: np.ndarray
    x0: float
    y1: float
    res: float
    channels: tuple[str, ...]


def fill_pits(height: np.ndarray, depth: float) -> np.ndarray:
    """Raise cells more than ``depth`` below the median of their 3×3 neighbourhood to that median.

    In sparse canopy data a cell often catches only a ground return between crown hits; left as
    is it prints a black speck inside every crown ("pits"). Crown edges and real gaps, wider than
    one cell, keep their neighbourhood median low and stay.
    """
    med = ndimage.median_filter(height, size=3, mode="nearest")
    return np.where(height < med - depth, med, height)


def point_density(xy: np.ndarray) -> float:
    """Points per unit² over the area the points cover (not their bounding box, which a plot that
    is not a rectangle, or a survey with holes, leaves partly empty): cells holding about 50
    points each on average, and the area of those that hold any."""
    lo, hi = xy.min(0), xy.max(0)
    span = np.maximum(hi - lo, 1e-9)
    cell = max(float(np.sqrt(50.0 * np.prod(span) / len(xy))), 1e-6)
    occupied = np.unique(np.floor((xy - lo) / cell).astype(np.int64), axis=0)
    sides = np.clip(span - occupied * cell, 0.0, cell)  # the last row and column end at the points' edge
    return len(xy) / max(float(np.prod(sides, axis=1).sum()), 1e-12)


def auto_res(density: float) -> float:
    """The finest of :data:`NICE_RES` at which a cell expects :data:`AUTO_POINTS_PER_CELL` points
    of a cloud of ``density`` points per unit²: 0.5 for 12 points/m², 2 for 1.5 (a fixed 0.5
    left most cells of a 1-2 points/m² survey empty, and every tile was dropped)."""
    need = float(np.sqrt(AUTO_POINTS_PER_CELL / density))
    return next((r for r in NICE_RES if r >= need * (1 - 1e-9)), float(np.ceil(need)))


def _check_raster(res, kind: str, channels: int, pit_depth, auto: bool = False) -> None:
    """The settings of one raster, checked once for :func:`rasterize_points` and :func:`rasterize_files`
    (``auto``: ``res`` may be ``"auto"``)."""
    from pcgen.options import check_range

    if not (auto and res == "auto"):
        check_range("res", res, 0.0, 1e6, open_low=True)
    if kind not in ("chm", "dsm"):
        raise ConfigError(f"kind must be chm or dsm, got {kind!r}")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ConfigError(f"channels must be 1 or 3, got {channels!r}")
    check_range("pit_depth", pit_depth, 0.0, MAX_EXTENT, open_low=True, nullable=True)


def rasterize_points(xyz: np.ndarray, res: float, kind: Literal["chm", "dsm"] = "chm", channels: int = 1,
                     ground=None, pit_depth: float | None = None) -> Raster:
    """Grid ``(N, 3)`` points into a height raster.

    Args:
        xyz: point coordinates in file units.
        res: cell size in the same units.
        kind: ``"dsm"`` (max z) or ``"chm"`` (max z − ground, ≥ 0).
        channels: 1 (height) or 3 (height, points per cell, std of z per cell).
        ground: callable ``ground(x, y) -> z`` for a CHM (e.g. a ``pcgen.data.ground.GroundModel``).
        pit_depth: if set, :func:`fill_pits` the height channel with this depth (file units).

    Raises:
        ConfigError: a setting out of range, or a CHM without ``ground``.
        InputError: no points, or a coordinate that is NaN or infinite.
    """
    _check_raster(res, kind, channels, pit_depth)
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] < 3:
        raise ShapeError(f"points must be an (N, 3) array, got shape {xyz.shape}")
    if len(xyz) == 0:
        raise InputError("no points to rasterize")
    if not np.isfinite(xyz[:, :3]).all():
        raise InputError("points with NaN or infinite coordinates cannot be rasterized")
    lo, hi = xyz[:, :2].min(0), xyz[:, :2].max(0)
    nx, ny = (np.floor((hi - lo) / res).astype(np.int64) + 1).tolist()
    if nx * ny > 100_000_000:
        raise ConfigError(f"res {res} gives a {nx}×{ny} raster; use a coarser resolution")
    col = np.minimum(((xyz[:, 0] - lo[0]) / res).astype(np.int64), nx - 1)
    row = np.minimum(((hi[1] - xyz[:, 1]) / res).astype(np.int64), ny - 1)  # row 0 = north
    flat = row * nx + col
    z = xyz[:, 2].astype(np.float64)
    top = np.full(nx * ny, -np.inf)
    np.maximum.at(top, flat, z)
    count = np.bincount(flat, minlength=nx * ny).astype(np.float64)
    valid = count > 0
    height = top.reshape(ny, nx)
    if kind == "chm":
        if ground is None:
            raise ConfigError("a CHM needs a ground model")
        cx = lo[0] + (np.arange(nx) + 0.5) * res
        cy = hi[1] - (np.arange(ny) + 0.5) * res
        gx, gy = np.meshgrid(cx, cy)
        height = np.maximum(height - ground(gx.ravel(), gy.ravel()).reshape(ny, nx), 0.0)
    layers, names = [height], [kind]
    if channels == 3:
        s1 = np.bincount(flat, weights=z, minlength=nx * ny)
        s2 = np.bincount(flat, weights=z * z, minlength=nx * ny)
        mean = np.divide(s1, count, out=np.zeros_like(s1), where=valid)
        var = np.divide(s2, count, out=np.zeros_like(s2), where=valid) - mean ** 2
        layers += [count.reshape(ny, nx), np.sqrt(np.maximum(var, 0)).reshape(ny, nx)]
        names += ["density", "z_std"]
    values = np.stack(layers, -1)
    valid = valid.reshape(ny, nx)
    if not valid.all():  # nearest filled cell, so gaps do not read as "zero height"
        _, (ii, jj) = ndimage.distance_transform_edt(~valid, return_indices=True)
        values = values[ii, jj]
    if pit_depth is not None:
        values[..., 0] = fill_pits(values[..., 0], pit_depth)
    return Raster(values, valid, float(lo[0]), float(hi[1]), float(res), tuple(names))


def _scale(values: np.ndarray, name: str, kind: str, max_height: float) -> tuple[np.ndarray, list[float]]:
    """One channel → uint8 with the ``[lo, hi]`` that 0 and 255 stand for."""
    if name == "chm":
        lo, hi = 0.0, max_height
    else:
        lo, hi = float(values.min()), float(np.percentile(values, 99.5))
        hi = hi if hi > lo else lo + 1.0
    u8 = np.clip((values - lo) / (hi - lo), 0, 1) * 255
    return u8.round().astype(np.uint8), [lo, hi]


def _ground_model(cloud):
    from pcgen.data.ground import GroundCollector

    cls = cloud.attributes["classification"] if "classification" in cloud.attributes else np.zeros(len(cloud), np.uint8)
    collector = GroundCollector(len(cloud))
    collector.add(np.asarray(cloud.xyz), np.asarray(cls))
    return collector.fit()


def _density(cloud, path) -> float:
    """:func:`point_density` of a cloud read from ``path`` (named when it cannot be measured)."""
    xy = np.asarray(cloud.xyz)[:, :2]
    if len(xy) == 0:
        raise InputError("file holds no points", path)
    if not np.isfinite(xy).all():
        raise InputError("points with NaN or infinite coordinates cannot be rasterized", path)
    return point_density(xy)


def rasterize_files(paths: Sequence[str | os.PathLike] | str | os.PathLike, out_dir: str | os.PathLike,
                    res: float | str = "auto", kind: Literal["chm", "dsm"] = "chm", channels: int = 1,
                    tile: int = 256, max_height: float = 40.0, min_valid: float = 0.5,
                    pit_depth: float | None = 2.0, *, overwrite: bool = False,
                    counts: list[int] | None = None, chosen: list[float] | None = None) -> list[Path]:
    """Rasterize LAS/LAZ (or any ``pcgen.io`` format) files into PNG tiles under ``out_dir``.

    Args:
        paths: input point clouds, or one of them.
        res: cell size in file units (metres or feet, as the file's CRS), or ``"auto"``: one size
            for every input, :func:`auto_res` of the sparsest (:func:`point_density`).
        kind: ``"chm"`` or ``"dsm"``.
        channels: 1 (grayscale PNG) or 3 (RGB PNG: height, density, z std).
        tile: tile side in cells (a whole number, 0 to 65536); 0 writes each raster whole.
        max_height: CHM height mapped to 255 (file units).
        min_valid: tiles with a smaller fraction (0 to 1) of cells holding points are dropped.
        pit_depth: CHM pit filling depth (:func:`fill_pits`); ``None`` keeps pits. DSMs are never filled.
        overwrite: write into a non-empty ``out_dir`` (replacing only files pcgen wrote there).
        counts: if given, the number of PNGs written from each input is appended to it, in input
            order (0 for an input with no tile dense enough).
        chosen: if given, the cell size used is appended to it (what ``"auto"`` picked).
    Returns:
        The written PNG paths (inside ``out_dir``), after the folder is complete.

    Raises:
        ConfigError: a setting out of range.
        OutputError: ``out_dir`` is unsafe (:func:`pcgen.outputs.check_output`: an input, inside
            one, or non-empty without ``overwrite``).
        InputError: an unreadable input, or no tile had enough points.
    """
    from pcgen.data.tile_inputs import unique_stems
    from pcgen.io import read
    from pcgen.outputs import check_output
    from pcgen.options import check_range

    _check_raster(res, kind, channels, pit_depth, auto=True)
    check_range("tile", tile, 0, 65_536, integer=True)
    check_range("max_height", max_height, 0.0, MAX_EXTENT, open_low=True)
    check_range("min_valid", min_valid, 0.0, 1.0)
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not paths:
        raise InputError("no input point clouds given")
    check_output(out_dir, paths, folder=True, overwrite=overwrite, overwrite_hint="overwrite=True")
    out_dir = Path(out_dir)
    if res == "auto":  # one cell size for all, so every raster shows the same ground distance per pixel
        res = auto_res(min(_density(read(path), path) for path in paths))
    if chosen is not None:
        chosen.append(res)
    written, index, per_input = [], [], []
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for path, stem in zip(paths, unique_stems(paths)):  # x.las twice: x_..., x-2_...
            cloud = read(path)
            if len(cloud) == 0:
                raise InputError("file holds no points", path)
            ground = _ground_model(cloud) if kind == "chm" else None
            try:
                r = rasterize_points(np.asarray(cloud.xyz), res, kind, channels, ground,
                                     pit_depth if kind == "chm" else None)
            except InputError as exc:  # NaN coordinates (PLY): name the file
                raise InputError(exc.message, exc.path or path) from None
            per_input.append(0)
            ny, nx = r.valid.shape
            th, tw = (ny, nx) if tile == 0 or (ny < tile and nx < tile) else (min(tile, ny), min(tile, nx))
            for i in range(0, max(1, ny - th + 1), th):
                for j in range(0, max(1, nx - tw + 1), tw):
                    valid = r.valid[i:i + th, j:j + tw]
                    if valid.mean() < min_valid:
                        continue
                    block = r.values[i:i + th, j:j + tw]
                    scaled = [_scale(block[..., c], name, kind, max_height) for c, name in enumerate(r.channels)]
                    arr = np.stack([s[0] for s in scaled], -1)
                    name = f"{stem}_{kind}{channels}_r{i // th:03d}_c{j // tw:03d}.png"
                    Image.fromarray(arr[..., 0] if channels == 1 else arr).save(tmp / name, format="PNG")
                    written.append(out_dir / name)
                    per_input[-1] += 1
                    index.append({"png": name, "source": str(path), "kind": kind, "res": res,
                                  "x0": r.x0 + j * res, "y1": r.y1 - i * res,
                                  "channels": {n: s[1] for n, s in zip(r.channels, scaled)},
                                  "valid_fraction": round(float(valid.mean()), 4)})
        if not written:
            raise InputError(f"no tile with at least {min_valid:.0%} of its cells holding points "
                             f"(try a coarser res or a smaller tile)", paths[0])
        (tmp / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    if counts is not None:
        counts.extend(per_input)
    return written
