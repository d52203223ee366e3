"""Synthetic training tiles: sample a head, place the points in a local metric frame, write LAZ.

Two ways to make a tile, by the kind of checkpoint:

* unconditional heads sample whole tiles (normalized frame), scaled so the xy extent is
  ``tile_size`` and shifted to a local frame (x, y from 0, z from 0);
* conditional (gap-filling) heads *re-imagine* part of a real tile: a random box covering
  ``gap_fraction`` of a conditioning tile is cut and regenerated (``--condition`` tiles), and the
  tile keeps its CRS and original points. The new points carry the ``generated`` flag.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from pcgen.errors import ConfigError, InputError


@dataclass
class TileStats:
    file: str
    points: int
    extent_x: float
    extent_y: float
    z_p50: float
    z_p95: float
    density: float  # points per unit² of the xy bounding box
    generated: int


def tile_stats(name: str, xyz: np.ndarray, generated: int) -> TileStats:
    """Extent and z percentiles to 3 decimals, density to 4 significant digits (a sparse tile in
    feet has well under 0.0001 points per unit²).

    Args:
        xyz: (N, 3) the coordinates as written (:func:`stored_xyz`), so the stats match the file.
    """
    ext = xyz[:, :2].max(0) - xyz[:, :2].min(0)
    z = xyz[:, 2] - xyz[:, 2].min()
    density = float(len(xyz) / max(ext[0] * ext[1], 1e-9))
    return TileStats(name, int(len(xyz)), round(float(ext[0]), 3), round(float(ext[1]), 3),
                     round(float(np.percentile(z, 50)), 3), round(float(np.percentile(z, 95)), 3),
                     float(f"{density:.4g}"), int(generated))


def stored_xyz(cloud) -> np.ndarray:
    """(N, 3) the coordinates a LAS/LAZ file of ``cloud`` holds: snapped to its header's grid
    (scales, offsets) as :func:`pcgen.io.write` stores them."""
    from pcgen.io.las import default_header

    header = cloud.header if cloud.header is not None else default_header(cloud)
    record = cloud.to_record(cloud.las_header(header))
    return np.column_stack([np.asarray(record.x), np.asarray(record.y), np.asarray(record.z)])


def to_local_frame(points: np.ndarray, tile_size: float) -> np.ndarray:
    """(N, 3) normalized sample -> metres: xy extent scaled to ``tile_size``, minimum corner at 0."""
    pts = np.asarray(points, dtype=np.float64)
    ext = float((pts[:, :2].max(0) - pts[:, :2].min(0)).max())
    pts = pts * (tile_size / max(ext, 1e-9))
    return pts - pts.min(0)


def metric_tiles(xyz: np.ndarray, frame, rng: np.random.Generator, classification=None,
                 above_ground: bool = True) -> list[np.ndarray]:
    """A file or tile cut into the metric frame's squares, each a (points, 3) float32 cloud.

    The ground of each square comes from its own returns through :func:`pcgen.tasks.frame.ground_points`
    (class 2, else the lowest point per 2 m cell) and :class:`pcgen.tasks.frame.GroundSurface`;
    generated tiles without classes get the lowest-point ground, like unclassified real ones.

    Args:
        xyz: (N, 3) world (or local metric) points.
        frame: :class:`pcgen.metrics.frame.MetricFrame` (tile size, points per tile).
        classification: (N,) ASPRS classes, or None.
        above_ground: False keeps z as elevation above the square's lowest point (the same
            squares and subsets, for the unit-normalized comparison).
    """
    from pcgen.tasks.frame import GroundSurface, ground_points

    xyz = np.asarray(xyz, dtype=np.float64)
    cls = None if classification is None else np.asarray(classification)
    out = []
    for center, index in frame.squares(xyz[:, :2]):
        pts = xyz[index]
        sub = pts[frame.subsample(len(pts), rng)]
        if above_ground:
            surface = GroundSurface(ground_points(pts, None if cls is None else cls[index]))
            base = surface(sub[:, :2])
        else:
            base = np.full(len(sub), pts[:, 2].min())
        out.append(frame.place(sub, center, base))
    return out


def local_header(software: str = "pcgen augment"):
    """LAS 1.4 / PDRF 6 header of a synthetic tile: cm scales, origin offsets, no CRS (local frame)."""
    import laspy

    from pcgen import __version__

    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.zeros(3)
    header.system_identifier = "pcgen synthetic tile"
    header.generating_software = f"{software} {__version__}"[:32]
    header.creation_date = _dt.date.today()
    return header


def synthetic_cloud(xyz: np.ndarray):
    """A PointCloud of generated points with plausible single-return, unclassified attributes."""
    import pcgen.io as pio

    n = len(xyz)
    attrs = {"intensity": np.zeros(n, np.uint16), "return_number": np.ones(n, np.uint8),
             "number_of_returns": np.ones(n, np.uint8), "classification": np.ones(n, np.uint8),
             "synthetic": np.ones(n, np.uint8)}
    return pio.PointCloud(xyz, attrs, header=local_header())


def sample_unconditional(head, n: int, num_points: int, seed: int, batch: int = 8) -> list[np.ndarray]:
    """n samples (num_points, 3) of an unconditional head, seeded."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    out: list[np.ndarray] = []
    with torch.no_grad():
        while len(out) < n:
            b = min(batch, n - len(out))
            out += list(head.sample(b, num_points, generator=gen).double().cpu().numpy())
    return out


def check_classified(cloud, path) -> None:
    """Refuse a tile whose points carry no ASPRS class (only 0 never classified / 1 unclassified).

    Raises:
        InputError: no classification, or nothing but classes 0 and 1.
    """
    cls = cloud.attributes.get("classification")
    if cls is None or not np.isin(np.asarray(cls), (0, 1), invert=True).any():
        raise InputError("has no classified points (only class 0/1): generated points would carry no class; "
                         "condition on labelled tiles, or generate without labels", path)


def reimagine(cloud, generator, gap_fraction: float, rng: np.random.Generator, fill_config=None,
              tries: int = 16, source=None):
    """Cut a random box (``gap_fraction`` of the tile's xy extent per side) and refill it.

    A box that holds no point is drawn again (up to ``tries`` boxes): refilling it would write
    the real tile back unchanged as a synthetic one. ``source`` names the tile in errors.

    Returns:
        FillResult of :func:`pcgen.tasks.fill.fill_cloud`.
    Raises:
        InputError: no box of that size holds a point.
    """
    from shapely.geometry import box

    from pcgen.tasks.fill import FillConfig, OutputConfig, fill_cloud, mask_gaps

    if not 0 < gap_fraction < 1:
        raise ConfigError(f"gap fraction must be in (0, 1), got {gap_fraction}")
    xy = cloud.xyz[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    half = 0.5 * gap_fraction * (hi - lo)
    for _ in range(tries):
        c = rng.uniform(lo + half, hi - half)
        inside = np.all(np.abs(xy - c) <= half, axis=1)
        if inside.any():
            break
    else:
        raise InputError(f"no box of {gap_fraction:g} of the tile's side held a point in {tries} "
                         "draws; raise --gap-fraction", source)
    from pcgen.tasks.gaps import MIN_TILE_POINTS

    kept = cloud.select(~inside)
    if len(kept) < MIN_TILE_POINTS or not np.ptp(kept.xyz[:, :2], axis=0).all():
        raise InputError(f"{len(kept)} of its points lie outside the re-imagined box, not spread over "
                         "an area: nothing around the box to fill it from", source)
    # labels travel with the generated points (the point each was made from), not read off their
    # neighbours afterwards as pcgen fill's attributes are: a synthetic tile's labels are the model's
    cfg = fill_config or FillConfig(seed=int(rng.integers(2**31 - 1)), output=OutputConfig(attributes="source"))
    try:
        return fill_cloud(kept, mask_gaps(kept, [box(*(c - half), *(c + half))]), generator, cfg)
    except InputError as exc:  # a problem of this tile's points: name the tile
        if exc.path is None and source is not None:
            raise InputError(exc.message, source) from None
        raise


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def render_grid(clouds: Sequence[np.ndarray], path, titles: Sequence[str] = (), cols: int = 4, dpi: int = 100) -> None:
    """Preview PNG: a grid of tiles in plan view, coloured by height."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcgen.atomic import atomic_path

    clouds = list(clouds)[:16]
    if not clouds:
        raise InputError("nothing to preview")
    cols = min(cols, len(clouds))
    rows = int(np.ceil(len(clouds) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, pts in enumerate(clouds):
        ax = axes.flat[i]
        ax.scatter(pts[:, 0], pts[:, 1], c=pts[:, 2], s=1, cmap="viridis")
        ax.set_aspect("equal")
        if i < len(titles):
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def write_tiles(out_dir: Path, clouds: Sequence, names: Sequence[str], ply: bool = False) -> None:
    import pcgen.io as pio

    for cloud, name in zip(clouds, names):
        pio.write(cloud, out_dir / f"{name}.laz")
        if ply:
            pio.write(pio.PointCloud(cloud.xyz), out_dir / f"{name}.ply")
