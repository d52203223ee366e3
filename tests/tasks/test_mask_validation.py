"""Issue 14, class 4: nonsense masks are refused where they are read, in one line, exit 2.

A self-intersecting polygon, a NaN coordinate, +-1e300 coordinates (which used to try a
182 PiB grid) and a ``crs`` member given as a plain string; plus a small hypothesis run over
mask geometries: every mask is either read (polygons inside the tile) or refused as InputError.
"""

from __future__ import annotations

import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from pcgen.errors import InputError
from pcgen.tasks.masks import read_mask

from .test_fill_cli import _fails

FUZZ = settings(max_examples=int(os.environ.get("PCGEN_FUZZ_EXAMPLES", "25")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _ring(hole, kind):
    x0, y0, x1, y1 = hole.bounds
    if kind == "empty":
        return []
    if kind == "bowtie":
        return [[x0, y0], [x1, y1], [x1, y0], [x0, y1], [x0, y0]]
    if kind == "nan":
        return [[x0, y0], [x1, y0], [float("nan"), y1], [x0, y1], [x0, y0]]
    big = 1e300
    return [[-big, -big], [big, -big], [big, big], [-big, big], [-big, -big]]


@pytest.mark.parametrize("kind, says", [("bowtie", "is invalid (Self-intersection"),
                                        ("nan", "has a NaN or infinite coordinate"),
                                        ("huge", "has a coordinate beyond 1e+15"),
                                        ("empty", "is empty (it has no coordinates)")])
def test_bad_mask_geometry(holed_tile, tmp_path, capsys, kind, says):
    path, hole, _ = holed_tile
    mask = tmp_path / "mask.geojson"
    ring = _ring(hole, kind)
    mask.write_text(json.dumps({"type": "Polygon", "coordinates": [ring] if ring else []}))
    out = tmp_path / "out"
    out.mkdir()
    _fails(capsys, ["fill", str(path), str(out / "o.laz"), "--mask", str(mask), "--baseline", "mirror"],
           out, f"{mask}: mask polygon 0 {says}")


def test_crs_as_a_plain_string(holed_tile, tmp_path, capsys):
    path, hole, _ = holed_tile
    mask = tmp_path / "mask.geojson"
    doc = {"type": "Feature", "properties": {}, "crs": "EPSG:2949",
           "geometry": {"type": "Polygon", "coordinates": [list(map(list, hole.exterior.coords))]}}
    mask.write_text(json.dumps(doc))
    out = tmp_path / "out"
    out.mkdir()
    _fails(capsys, ["fill", str(path), str(out / "o.laz"), "--mask", str(mask), "--baseline", "mirror"],
           out, 'the "crs" member must be an object')


coord = st.one_of(st.floats(-20.0, 120.0), st.sampled_from([math.nan, math.inf, -1e300, 1e300, 1e16]))


@FUZZ
@given(ring=st.lists(st.tuples(coord, coord), min_size=3, max_size=6))
def test_fuzz_mask_geometries(tmp_path_factory, ring):
    """Read, or refuse as InputError with one line; never another exception or a huge allocation."""
    tile = box(0.0, 0.0, 100.0, 100.0)
    mask = tmp_path_factory.mktemp("mask") / "m.geojson"
    mask.write_text(json.dumps({"type": "Polygon", "coordinates": [[*map(list, ring), list(ring[0])]]}))
    try:
        polygons = read_mask(mask, footprint=tile)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(mask))
        return
    finite = all(math.isfinite(v) and abs(v) <= 1e15 for p in ring for v in p)
    assert finite and polygons
    assert all(p.is_valid and p.area > 0 and tile.buffer(1e-6).contains(p) for p in polygons)


def test_overlapping_mask_polygons_are_one_gap(tmp_path):
    """Two overlapping squares would fill their overlap twice; they are read as their union.
    Squares that only touch stay two gaps."""
    def read(polygons):
        path = tmp_path / "m.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {}, "geometry": p.__geo_interface__} for p in polygons]}))
        return read_mask(path)

    (one,) = read([box(0, 0, 10, 10), box(5, 5, 15, 15)])
    assert one.area == pytest.approx(175.0)
    touching = read([box(0, 0, 10, 10), box(10, 0, 20, 10)])
    assert [p.bounds for p in touching] == [(0, 0, 10, 10), (10, 0, 20, 10)]


def test_an_integer_coordinate_past_float_range(holed_tile, tmp_path, capsys):
    path, _, _ = holed_tile
    mask = tmp_path / "mask.geojson"
    mask.write_text('{"type":"Polygon","coordinates":[[[0,0],[1' + "0" * 400 + ',0],[5,5],[0,0]]]}')
    out = tmp_path / "out"
    out.mkdir()
    _fails(capsys, ["fill", str(path), str(out / "o.laz"), "--mask", str(mask), "--baseline", "mirror"],
           out, f"{mask}: mask has a coordinate beyond 1e+15")
