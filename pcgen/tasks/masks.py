"""User masks: GeoJSON polygons in the file's CRS saying where to fill.

A GeoJSON that names its CRS (the 2008 ``crs`` member GDAL writes for projected data) must
name the file's CRS, or its horizontal part when the file's CRS is compound (GeoJSON x, y are
horizontal); one without it is taken to be in the file's CRS, as the CLI help says.
Polygons that miss the tile are an error rather than a silent no-op. Self-intersecting
polygons, NaN and huge coordinates are refused when the mask is read: their clipped area (and
the gap grid built from it) would otherwise be nonsense or an attempt at a huge allocation.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import shapely
from shapely.errors import GEOSException
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from pcgen.errors import InputError
from pcgen.io.cloud import as_crs
from pcgen.io.crs import crs_label, crs_member, crs_name, read_crs_member
from pcgen.options import MAX_EXTENT


def _geometries(doc: dict) -> list[BaseGeometry]:
    kind = doc.get("type")
    if kind == "FeatureCollection":
        return [g for f in doc.get("features", []) for g in _geometries(f)]
    if kind == "Feature":
        return [shape(doc["geometry"])] if doc.get("geometry") else []
    if kind == "GeometryCollection":
        return [shape(g) for g in doc.get("geometries", [])]
    return [shape(doc)]


def _check_polygon(p: Polygon, i: int, path) -> None:
    """Refuse NaN/infinite or beyond-MAX_EXTENT coordinates and invalid (self-intersecting) rings."""
    from shapely import get_coordinates
    from shapely.validation import explain_validity

    if p.is_empty:
        raise InputError(f"mask polygon {i} is empty (it has no coordinates)", path)
    coords = get_coordinates(p)
    if not all(math.isfinite(v) for v in coords.ravel()):
        raise InputError(f"mask polygon {i} has a NaN or infinite coordinate", path)
    if coords.size and float(abs(coords).max()) > MAX_EXTENT:
        raise InputError(f"mask polygon {i} has a coordinate beyond {MAX_EXTENT:g}", path)
    if not p.is_valid:
        raise InputError(f"mask polygon {i} is invalid ({explain_validity(p)}); fix it, e.g. "
                         "with shapely's make_valid or QGIS 'Fix geometries'", path)


class MaskMiss(InputError):
    """The mask does not reach this file: its polygons lie outside it, or it is in another CRS
    (for one tile of many, a skip; for a single file, an error)."""


def read_mask(path, crs=None, footprint: Polygon | None = None,
              drop_outside: bool = False) -> list[Polygon]:
    """Read the polygons of a GeoJSON mask, checked against the tile's CRS and footprint.

    Args:
        path: GeoJSON file (FeatureCollection, Feature or bare geometry; Polygon/MultiPolygon).
        crs: the LAS file's CRS (a pyproj CRS or what :func:`pcgen.io.cloud.as_crs` takes), or
            None when the file has none.
        footprint: the tile's area; polygons are clipped to it.
        drop_outside: leave out polygons outside the footprint (one mask over many tiles)
            instead of refusing them; refused only when none is left.
    Returns:
        Polygons in the file's CRS, clipped to the footprint; where polygons overlap, their
        union instead (each spot is filled once); polygons that only touch stay apart.
    Raises:
        InputError: unreadable JSON, no polygons, a ``crs`` member that is not an object, a
            NaN/huge coordinate, a self-intersecting polygon.
        MaskMiss: a CRS other than the file's, or a polygon outside the tile (with
            ``drop_outside``, every polygon).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("mask file not found", path)
    try:
        doc = json.loads(path.read_text())
        with warnings.catch_warnings():  # NaN rings warn here; _check_polygon refuses them below
            warnings.simplefilter("ignore", RuntimeWarning)
            geoms = _geometries(doc)
    except OverflowError:  # an integer coordinate past float range (valid JSON)
        raise InputError(f"mask has a coordinate beyond {MAX_EXTENT:g}", path) from None
    except (ValueError, KeyError, TypeError, AttributeError, GEOSException) as exc:
        raise InputError(f"not a GeoJSON mask ({str(exc).splitlines()[0][:120]})", path) from None
    mask_crs = read_crs_member(doc, path)
    crs = as_crs(crs)
    if mask_crs is not None and crs is not None and not _same_horizontal(mask_crs, crs):
        raise MaskMiss(f"mask CRS {crs_label(crs_name(mask_crs))} differs from the file's CRS "
                         f"{crs_label(crs_name(crs))}; reproject the mask", path)
    polygons: list[Polygon] = []
    for g in geoms:
        parts = list(g.geoms) if g.geom_type == "MultiPolygon" else [g]
        for p in parts:
            if p.geom_type != "Polygon":
                raise InputError(f"mask holds a {p.geom_type}; only polygons mark gaps", path)
            _check_polygon(p, len(polygons), path)
            polygons.append(p)
    if not polygons:
        raise InputError("mask holds no polygons", path)
    if footprint is not None:
        clipped = []
        for i, p in enumerate(polygons):
            inside = p.intersection(footprint)
            if inside.is_empty or inside.area <= 0:
                if drop_outside:
                    continue
                b = [round(v, 2) for v in p.bounds]
                fb = [round(v, 2) for v in footprint.bounds]
                raise MaskMiss(f"mask polygon {i} {b} lies outside the tile {fb}", path)
            pieces = list(inside.geoms) if inside.geom_type in ("MultiPolygon", "GeometryCollection") else [inside]
            clipped += [q for q in pieces if q.geom_type == "Polygon" and q.area > 0]
        if not clipped:
            fb = [round(v, 2) for v in footprint.bounds]
            raise MaskMiss(f"no mask polygon reaches the tile {fb}", path)
        polygons = clipped
    return _union_overlaps(polygons)


def _same_horizontal(mask_crs, crs) -> bool:
    """The mask's CRS is the file's, or the horizontal part of the file's compound CRS."""
    if mask_crs.equals(crs, ignore_axis_order=True):
        return True
    return crs.is_compound and mask_crs.equals(crs.sub_crs_list[0], ignore_axis_order=True)


def _union_overlaps(polygons: list[Polygon]) -> list[Polygon]:
    """Each group of overlapping polygons as their union (a spot is filled once); polygons that
    only touch, or touch a group, stay apart."""
    tree = shapely.STRtree(polygons)
    parent = list(range(len(polygons)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*tree.query(polygons, predicate="intersects")):
        if i < j and polygons[i].intersection(polygons[j]).area > 0:
            parent[root(i)] = root(j)
    groups: dict[int, list[Polygon]] = {}
    for i, p in enumerate(polygons):
        groups.setdefault(root(i), []).append(p)
    out = []
    for members in groups.values():
        merged = members[0] if len(members) == 1 else shapely.unary_union(members)
        out += [q for q in getattr(merged, "geoms", [merged]) if q.geom_type == "Polygon" and q.area > 0]
    return out


def polygons_to_geojson(polygons, crs=None) -> dict:
    """A FeatureCollection of polygons, naming ``crs`` (for writing masks in tests and demos)."""
    from shapely.geometry import mapping

    doc = {"type": "FeatureCollection",
           "features": [{"type": "Feature", "properties": {"id": i}, "geometry": mapping(p)}
                        for i, p in enumerate(polygons)]}
    member = crs_member(crs)
    if member:
        doc["crs"] = member
    return doc
