"""The tile index (GeoJSON) and overview picture of a tiling run.

GeoJSON coordinates are in the source files' own CRS (not WGS84 as RFC 7946 assumes); each
feature names that CRS in ``properties.crs`` and the collection carries a ``crs`` member
when all tiles share one, which GIS tools (QGIS, GDAL) honour; both use the one naming of
`pcgen.io.crs` (``urn:ogc:def:crs:EPSG::n``, else WKT).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pcgen.atomic import atomic_path
from pcgen.io.crs import crs_label, crs_member


def build_index(results, options) -> dict:
    """One Polygon feature per tile (its core square) with bounds and point counts."""
    features = []
    for res in results:
        for t in res.tiles:
            x0, y0, x1, y1 = t["core_bounds"]
            features.append({
                "type": "Feature",
                "geometry": {"type": "Polygon",
                             "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
                "properties": t,
            })
    crss = {t["properties"]["crs"] for t in features}  # names made by pcgen.io.crs.crs_name
    index = {
        "type": "FeatureCollection",
        "properties": {
            "tile_size": options.size, "buffer": options.buffer, "min_points": options.min_points,
            "ground_normalize": options.ground_normalize, "voxel": options.voxel,
            "buffer_dimension": "buffer" if options.buffer > 0 else None,
            "core_interval": "half-open [xmin, xmax) x [ymin, ymax)",
            "sources": [{"file": r.source, "points": r.points, "thinned_points": r.thinned_points,
                         "dropped_points": r.dropped_points, "dropped_tiles": r.dropped_tiles,
                         "crs": r.crs} for r in results],
        },
        "features": features,
    }
    if len(crss) == 1 and None not in crss:
        index["crs"] = crs_member(crss.pop())
    return index


def write_index(index: dict, path) -> None:
    """One feature per line: readable, and without ``indent`` json keeps its fast C encoder."""
    head = {k: v for k, v in index.items() if k != "features"}
    lines = [json.dumps(f, separators=(",", ":")) for f in index["features"]]
    text = json.dumps(head)[:-1] + ', "features": [\n' + ",\n".join(lines) + "\n]}\n"
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


INDEX_NAME = "tile_index.geojson"  # written beside the tiles


def read_index(path) -> dict:
    return json.loads(Path(path).read_text())


def tile_core(tile, cloud=None) -> tuple[str, tuple[float, float, float, float]] | None:
    """(buffer dimension, core bounds ``[xmin, xmax) x [ymin, ymax)``) of a tile ``pcgen tile``
    wrote, from the index beside it; None for a file no index there lists and that carries no
    buffer flag.

    Points added to a tile later (``pcgen fill``) belong to its core or its buffer by where they
    land, and only the index knows the core exactly: the tile's own points may stop short of its
    edges. A tile moved away from its index (``cloud``, its points, given) takes the box of its
    core points: a new point lands in the buffer when it lies beyond every core point.
    """
    found = _indexed_core(Path(tile))
    if found is not None or cloud is None:
        return found
    from pcgen.data.tiling import BUFFER_DIM, has_tile_buffer

    if cloud.header is None or not has_tile_buffer(cloud.header):
        return None
    core = cloud.xyz[np.asarray(cloud.attributes[BUFFER_DIM]) == 0, :2]
    if len(core) == 0:
        return None
    (xmin, ymin), (xmax, ymax) = core.min(0), np.nextafter(core.max(0), np.inf)  # the last core point is in
    return BUFFER_DIM, (float(xmin), float(ymin), float(xmax), float(ymax))


def _indexed_core(tile: Path):
    """:func:`tile_core` from the index beside ``tile``, or None."""
    try:
        index = read_index(tile.parent / INDEX_NAME)
        dim = index["properties"]["buffer_dimension"]
        for feature in index["features"]:
            props = feature["properties"]
            if props["name"] == tile.name:
                xmin, ymin, xmax, ymax = (float(v) for v in props["core_bounds"])
                return str(dim), (xmin, ymin, xmax, ymax)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def render_overview(areas, rasters, path, areas_in_all: int | None = None, dpi: int = 110) -> None:
    """PNG: point density (log) and top height, tile cores outlined; a row per area.

    Args:
        areas: per area, the `FileResult` of each of its inputs (`pcgen.data.tiling.overview_areas`).
        rasters: per area, the `RasterSpec` its inputs were rasterized on.
        areas_in_all: how many areas the run had, when more than are drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    fig, axes = plt.subplots(len(areas), 2, figsize=(12, 5.6 * len(areas)), squeeze=False,
                             constrained_layout=True)
    for row, results, raster in zip(axes, areas, rasters):
        drawn = [r for r in results if r.counts is not None]
        counts = sum(r.counts for r in drawn)
        zmax = np.max([r.zmax for r in drawn], axis=0)
        extent = (raster.x0, raster.x0 + raster.nx * raster.cell,
                  raster.y0, raster.y0 + raster.ny * raster.cell)
        density = np.where(counts > 0, np.log10(np.maximum(counts, 1) / raster.cell ** 2), np.nan)
        height = np.where(np.isfinite(zmax), zmax, np.nan)
        polys = [np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
                 for r in results for x0, y0, x1, y1 in (t["core_bounds"] for t in r.tiles)]
        names = [Path(r.source).name if Path(r.source).suffix != ".json" else Path(r.source).parent.name
                 for r in results]
        where = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        for ax, img, title, cmap, label in (
                (row[0], density, "point density", "viridis", "log10 points / unit²"),
                (row[1], height, "highest point", "terrain", "z")):
            im = ax.imshow(img, origin="lower", extent=extent, cmap=cmap, interpolation="nearest")
            ax.add_collection(PolyCollection(polys, facecolors="none", edgecolors="red",
                                             linewidths=0.6))
            ax.set_title(f"{title}: {len(polys)} tiles of {where}", fontsize=10)
            ax.set_aspect("equal")
            ax.set_xlabel(f"x ({crs_label(results[0].crs)})")
            ax.set_ylabel("y")
            fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    if areas_in_all and areas_in_all > len(areas):
        fig.suptitle(f"the {len(areas)} largest of {areas_in_all} separate areas (by CRS and "
                     f"distance); every tile is in {INDEX_NAME}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
