"""`pcgen fill` end to end and every bad input: one-line error, exit 2, no output, input untouched."""

from __future__ import annotations

import json
import os
import shutil
import sys

import laspy
import numpy as np
import pytest
from shapely.geometry import Point, box

from pcgen.cli import main
from pcgen.tasks.masks import polygons_to_geojson

from .conftest import sha256


def _mask(tmp_path, polygons, crs_name=None, name="mask.geojson"):
    doc = polygons_to_geojson(polygons)
    if crs_name:
        doc["crs"] = {"type": "name", "properties": {"name": crs_name}}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def _fails(capsys, argv, out_dir, must_say):
    before = {p: sha256(p) for p in argv if isinstance(p, str) and os.path.isfile(p)}
    listing = sorted(out_dir.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pcgen fill: error:"), err
    assert must_say in err, err
    assert sorted(out_dir.iterdir()) == listing  # no output, no temp files left behind
    assert before == {p: sha256(p) for p in before}



def test_fill_draws_eight_times_by_default(holed_tile, tmp_path, capsys):
    """The shipped config writes the consensus of 8 draws and its uncertainty; --samples 1 one draw."""
    path, hole, _ = holed_tile
    mask = _mask(tmp_path, [hole], "EPSG:2949")
    out_dir = tmp_path / "out"
    for name, extra in (("k4.laz", []), ("k1.laz", ["--samples", "1"])):
        assert main(["fill", str(path), str(out_dir / name), "--mask", str(mask), "--baseline", "surface",
                     "-q", *extra]) == 0
    k4, k1 = (laspy.read(out_dir / n) for n in ("k4.laz", "k1.laz"))
    assert "uncertainty" in k4.point_format.extra_dimension_names
    assert "uncertainty" not in k1.point_format.extra_dimension_names
    new = np.asarray(k4.generated) == 1
    spread = np.asarray(k4.uncertainty)
    assert new.any() and (spread[new] > 0).all() and (spread[~new] == 0).all()

def test_fill_file_with_mask_and_auto(holed_tile, tmp_path, capsys, monkeypatch):
    path, hole, removed = holed_tile
    out_dir = tmp_path / "out"
    mask = _mask(tmp_path, [hole], "EPSG:2949")
    h = sha256(path)
    assert main(["fill", str(path), str(out_dir / "a.laz"), "--mask", str(mask), "--baseline", "mirror",
                 "--samples", "2"]) == 0
    assert sha256(path) == h
    report = json.loads(capsys.readouterr().out)
    assert report[0]["gaps"][0]["n_generated"] > 0.6 * len(removed)
    las = laspy.read(out_dir / "a.laz")
    assert {"generated", "uncertainty"} <= set(las.point_format.extra_dimension_names)
    assert (out_dir / "a.gaps.geojson").is_file()
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # on a terminal: the summary line only
    assert main(["fill", str(path), str(out_dir / "t.laz"), "--mask", str(mask), "--baseline", "mirror"]) == 0
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.strip().endswith(f"{report[0]['generated']} new points "
                                                               f"(+{len(laspy.read(path).points)} original)")
    monkeypatch.undo()

    assert main(["fill", str(path), str(out_dir / "b.laz"), "--gaps-only", "-q"]) == 0
    assert not (out_dir / "b.laz").exists()
    report = json.loads((out_dir / "b.gaps.geojson").read_text())
    assert main(["fill", str(path), str(out_dir / "b.laz"), "--auto", "--baseline", "surface", "-q"]) == 2
    assert "b.gaps.geojson: output file exists (pass --overwrite to replace it)" in capsys.readouterr().err
    assert main(["fill", str(path), str(out_dir / "b.laz"), "--auto", "--baseline", "surface", "-q",
                 "--overwrite"]) == 0
    gaps = json.loads((out_dir / "b.gaps.geojson").read_text())
    assert gaps == report
    assert gaps["features"] and gaps["crs"]["properties"]["name"].endswith("2949")
    assert len(laspy.read(out_dir / "b.laz").points) > len(laspy.read(path).points)


def test_fill_folder_with_process_pool_and_dask(holed_tile, tmp_path):
    path, hole, _ = holed_tile
    src = tmp_path / "in"
    src.mkdir()
    for name in ("t1.laz", "t2.laz"):
        (src / name).write_bytes(path.read_bytes())
    mask = _mask(tmp_path, [hole])
    assert main(["fill", str(src), str(tmp_path / "pool"), "--mask", str(mask), "--baseline", "mirror",
                 "-j", "2", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "pool").iterdir()) == [
        ".pcgen-manifest.json", "t1.gaps.geojson", "t1.laz", "t2.gaps.geojson", "t2.laz"]
    a = laspy.read(tmp_path / "pool" / "t1.laz")
    b = laspy.read(tmp_path / "pool" / "t2.laz")
    assert np.array_equal(a.points.array, b.points.array)  # same seed, same input: same fill

    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        index = tmp_path / "index.txt"
        index.write_text("in/t1.laz\nin/t2.laz\n")
        assert main(["fill", str(index), str(tmp_path / "dask"), "--mask", str(mask), "--baseline", "mirror",
                     "--dask", cluster.scheduler_address, "-q"]) == 0
    c = laspy.read(tmp_path / "dask" / "t2.laz")
    assert np.array_equal(a.points.array, c.points.array)


def test_mask_in_another_crs(holed_tile, tmp_path, capsys):
    path, hole, _ = holed_tile
    mask = _mask(tmp_path, [hole], "EPSG:32618")
    _fails(capsys, ["fill", str(path), str(tmp_path / "o.laz"), "--mask", str(mask), "--baseline", "mirror"],
           tmp_path, "differs from the file's CRS")


def test_mask_outside_the_tile(holed_tile, tmp_path, capsys):
    path, hole, _ = holed_tile
    x, y = hole.centroid.coords[0]
    mask = _mask(tmp_path, [box(x + 5000, y, x + 5020, y + 20)], "EPSG:2949")
    _fails(capsys, ["fill", str(path), str(tmp_path / "o.laz"), "--mask", str(mask), "--baseline", "mirror"],
           tmp_path, "outside the tile")


def test_no_points_around_the_gap(topo, tmp_path, capsys):
    import pcgen.io as pio

    x, y = topo.xyz[:, :2].min(0) + 150.0
    far = np.hypot(topo.xyz[:, 0] - x, topo.xyz[:, 1] - y) > 45.0
    path = tmp_path / "emptied.laz"
    pio.write(topo.select(far), path)
    mask = _mask(tmp_path, [Point(x, y).buffer(5.0)])
    out = tmp_path / "out"
    out.mkdir()
    _fails(capsys, ["fill", str(path), str(out / "o.laz"), "--mask", str(mask), "--baseline", "mirror"],
           out, "points around it")


@pytest.mark.parametrize("k", ["0", "-3"])
def test_samples_must_be_positive(holed_tile, tmp_path, capsys, k):
    path, _, _ = holed_tile
    _fails(capsys, ["fill", str(path), str(tmp_path / "o.laz"), "--samples", k, "--baseline", "mirror"],
           tmp_path, "--samples must be a positive integer")


def test_samples_set_as_a_config_key_is_named_as_one(holed_tile, tmp_path, capsys):
    """The library names its own setting; only the CLI layer speaks of --samples."""
    path, _, _ = holed_tile
    _fails(capsys, ["fill", str(path), str(tmp_path / "o.laz"), "--set", "samples=0", "--baseline", "mirror"],
           tmp_path, "error: samples must be a positive integer, got 0")


def test_missing_and_corrupt_checkpoints(holed_tile, tmp_path, capsys):
    path, _, _ = holed_tile
    _fails(capsys, ["fill", str(path), str(tmp_path / "o.laz"), "--ckpt", str(tmp_path / "nope.ckpt")],
           tmp_path, "checkpoint not found")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint" * 10)
    _fails(capsys, ["fill", str(path), str(tmp_path / "o.laz"), "--ckpt", str(bad)], tmp_path, "bad.ckpt")


def test_output_may_not_overwrite_input(holed_tile, capsys):
    path, _, _ = holed_tile
    h = sha256(path)
    assert main(["fill", str(path), str(path), "--baseline", "mirror"]) == 2
    assert "overwrite its input" in capsys.readouterr().err
    assert sha256(path) == h


def test_an_existing_output_is_replaced_only_if_pcgen_wrote_it(holed_tile, tmp_path, capsys):
    path, hole, _ = holed_tile
    out = tmp_path / "out"
    out.mkdir()
    theirs = out / "theirs.laz"
    theirs.write_bytes(path.read_bytes())  # somebody's LAZ, where an output would go
    notes = out / "notes.geojson"
    notes.write_text('{"type": "FeatureCollection", "features": []}')
    fill = ["fill", str(path)]
    for argv in ([str(theirs)], [str(theirs), "--overwrite"],
                 [str(out / "c.laz"), "--gaps", str(theirs)], [str(out / "c.laz"), "--gaps", str(notes), "--overwrite"]):
        _fails(capsys, fill + argv + ["--baseline", "mirror"], out, "pcgen did not write it")
    assert main(fill + [str(out / "c.laz"), "--baseline", "mirror", "-q"]) == 0
    first = sha256(out / "c.laz")
    capsys.readouterr()
    _fails(capsys, fill + [str(out / "c.laz"), "--baseline", "surface"], out, "pass --overwrite to replace it")
    assert main(fill + [str(out / "c.laz"), "--baseline", "surface", "-q", "--overwrite"]) == 0
    assert sha256(out / "c.laz") != first


@pytest.mark.parametrize("then", ["fill", "check again"])
def test_the_reported_gaps_go_back_under_the_same_name(holed_tile, tmp_path, capsys, then):
    """The documented loop: --gaps-only writes OUT.gaps.geojson, which goes back as --mask, to
    fill those gaps or to list them again (which writes nothing: it crashed)."""
    path, _, _ = holed_tile
    out = tmp_path / "t.laz"
    assert main(["fill", str(path), str(out), "--gaps-only", "-q"]) == 0
    report = tmp_path / "t.gaps.geojson"
    listed = report.read_bytes()
    second = ["--baseline", "mirror", "-q"] if then == "fill" else ["--gaps-only"]
    assert main(["fill", str(path), str(out), "--mask", str(report), *second]) == 0
    assert report.read_bytes() == listed
    if then == "fill":
        assert laspy.read(out).header.point_count > laspy.read(path).header.point_count
    else:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t.gaps.geojson"]
        assert '"area"' in capsys.readouterr().out  # the gaps are listed


def test_inputs_of_one_name_get_outputs_of_their_own(holed_tile, tmp_path):
    path, _, _ = holed_tile
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "t.laz").write_bytes(path.read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text("a/t.laz\nb/t.laz\n")
    assert main(["fill", str(listing), str(tmp_path / "out"), "--baseline", "mirror", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "t-2.gaps.geojson", "t-2.laz", "t.gaps.geojson", "t.laz"]


def test_masks_over_the_whole_tile_and_smaller_than_a_point(holed_tile, tmp_path, capsys):
    path, hole, _ = holed_tile
    las = laspy.read(path)
    whole = _mask(tmp_path, [box(las.x.min() - 5, las.y.min() - 5, las.x.max() + 5, las.y.max() + 5)],
                  "EPSG:2949", "whole.geojson")
    _fails(capsys, ["fill", str(path), str(tmp_path / "w.laz"), "--mask", str(whole), "--baseline", "mirror"],
           tmp_path, "gap 0: it covers all of the survey around it")
    c = hole.centroid
    tiny = _mask(tmp_path, [box(c.x, c.y, c.x + 0.1, c.y + 0.1)], "EPSG:2949", "tiny.geojson")
    assert main(["fill", str(path), str(tmp_path / "t.laz"), "--mask", str(tiny), "-q"]) == 0
    assert laspy.read(tmp_path / "t.laz").header.point_count == las.header.point_count  # 0 new points


def test_new_points_in_tiles_are_core_or_buffer_by_where_they_land(holed_tile, tmp_path):
    path, _, _ = holed_tile
    las = laspy.read(path)
    assert main(["tile", str(path), str(tmp_path / "tiles"), "--size", "40", "--buffer", "10",
                 "--no-overview"]) == 0
    index = json.loads((tmp_path / "tiles" / "tile_index.geojson").read_text())
    cores = {f["properties"]["name"]: f["properties"]["core_bounds"] for f in index["features"]}
    # a 12 m square across the core edge between two tiles, away from the crop's hole
    edge = 40.0 * np.ceil((las.x.min() + 30) / 40)
    yc = 0.5 * (las.y.min() + las.y.max()) - 30
    mask = _mask(tmp_path, [box(edge - 6, yc - 6, edge + 6, yc + 6)], "EPSG:2949")
    assert main(["fill", str(tmp_path / "tiles"), str(tmp_path / "out"), "--mask", str(mask),
                 "--baseline", "mirror", "-q"]) == 0
    flags = []
    filled = sorted(p.name for p in (tmp_path / "out").glob("*.laz"))  # tiles the mask misses are skipped
    assert len(filled) >= 2
    for name in filled:
        x0, y0, x1, y1 = cores[name]
        out = laspy.read(tmp_path / "out" / name)
        in_core = (out.x >= x0) & (out.x < x1) & (out.y >= y0) & (out.y < y1)
        assert np.array_equal(np.asarray(out.buffer) == 1, ~in_core), name  # originals and new points
        flags += list(np.asarray(out.buffer)[np.asarray(out.generated) == 1])
    assert 0 < np.mean(flags) < 1  # the square's points landed in cores and in buffers
    # the same tiles copied away from their index: the core is the box of the core points
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in filled:
        shutil.copyfile(tmp_path / "tiles" / name, moved / name)
    assert main(["fill", str(moved), str(tmp_path / "out2"), "--mask", str(mask), "--baseline", "mirror",
                 "-q"]) == 0
    for name in filled:
        indexed, out = laspy.read(tmp_path / "out" / name), laspy.read(tmp_path / "out2" / name)
        assert np.array_equal(indexed.xyz, out.xyz)  # the same fill
        new, flag = np.asarray(out.generated) == 1, np.asarray(out.buffer)
        core = out.xyz[~new & (flag == 0), :2]
        beyond = np.any((out.xyz[new, :2] < core.min(0)) | (out.xyz[new, :2] > core.max(0)), axis=1)
        assert np.array_equal(flag[new] == 1, beyond), name  # was each source point's flag
        assert np.mean(flag[new] == np.asarray(indexed.buffer)[new]) > 0.95, name


def test_one_mask_over_a_folder_of_tiles_fills_each_tile_where_it_reaches(holed_tile, tmp_path, capsys):
    """A mask drawn over a tiled survey: each tile fills the polygons that reach it, skips the
    tiles none reaches, and a mask reaching no tile at all (a wrong CRS) is an error."""
    import pcgen.io as pio

    path, hole, _ = holed_tile
    cloud = pio.read(path)
    x0, y0 = cloud.xyz[:, :2].min(0)
    hx, hy = hole.centroid.coords[0]
    xm = hx  # the hole straddles the cut between the two tiles
    src = tmp_path / "in"
    src.mkdir()
    west, east = cloud.select(cloud.xyz[:, 0] < xm), cloud.select(cloud.xyz[:, 0] >= xm)
    pio.write(west, src / "west.laz")
    pio.write(east, src / "east.laz")
    pio.write(west.select(west.xyz[:, 1] < y0 + 30), src / "corner.laz")  # no polygon reaches it
    polys = [box(hx - 7, hy - 3, hx - 1, hy + 3), box(hx + 1, hy - 3, hx + 7, hy + 3)]  # one per side
    mask = _mask(tmp_path, polys, "EPSG:2949")
    assert main(["fill", str(src), str(tmp_path / "out"), "--mask", str(mask), "--baseline", "mirror"]) == 0
    for name, part in (("west", west), ("east", east)):
        report = json.loads((tmp_path / "out" / f"{name}.gaps.geojson").read_text())
        (gap,) = report["features"]
        assert 20 < gap["properties"]["area"] <= 36.0  # clipped to the tile's footprint
        assert gap["properties"]["density_around"] > 0  # measured, not NaN (which is not JSON)
        filled = laspy.read(tmp_path / "out" / f"{name}.laz")
        assert 0 < int(filled.generated.sum()) and len(filled.points) > len(part)
    assert not (tmp_path / "out" / "corner.laz").exists()
    assert "corner.laz: skipped (no mask polygon reaches the tile" in capsys.readouterr().err

    far = _mask(tmp_path, [box(x0 + 5000, y0, x0 + 5006, y0 + 6)], "EPSG:2949", "far.geojson")
    _fails(capsys, ["fill", str(src), str(tmp_path / "none"), "--mask", str(far), "--baseline", "mirror"],
           tmp_path, "far.geojson: the mask reaches none of the 3 inputs")


def test_touching_polygons_stay_apart_beside_overlapping_ones(holed_tile, tmp_path):
    from pcgen.tasks.masks import read_mask

    path, hole, _ = holed_tile
    x, y = hole.centroid.coords[0]
    polys = [box(x, y, x + 10, y + 10), box(x + 5, y, x + 15, y + 10),  # overlap: one gap
             box(x - 30, y + 20, x - 20, y + 30), box(x - 20, y + 20, x - 10, y + 30)]  # touch: two
    got = read_mask(_mask(tmp_path, polys))
    assert sorted(round(p.area) for p in got) == [100, 100, 150]


def test_a_mask_in_the_horizontal_part_of_a_compound_crs(holed_tile, tmp_path, capsys):
    import pcgen.io as pio
    from pyproj import CRS

    path, hole, _ = holed_tile
    cloud = pio.read(path)
    cloud.crs = CRS("EPSG:2949+5713")  # NAD83(CSRS) MTM 7 + CGVD28 heights
    compound = tmp_path / "compound.laz"
    pio.write(cloud, compound)
    mask = _mask(tmp_path, [hole], "urn:ogc:def:crs:EPSG::2949")
    assert main(["fill", str(compound), str(tmp_path / "o.laz"), "--mask", str(mask), "--baseline", "mirror",
                 "-q"]) == 0
    other = _mask(tmp_path, [hole], "EPSG:32618", "other.geojson")
    _fails(capsys, ["fill", str(compound), str(tmp_path / "o2.laz"), "--mask", str(other), "--baseline", "mirror"],
           tmp_path, "mask CRS EPSG:32618 differs from the file's CRS EPSG:2949")


def test_a_thin_diagonal_strip_gets_its_whole_budget(holed_tile, tmp_path, capsys):
    """A missed flight line at an angle fills 2% of its bounding box; the draw keeps asking."""
    import pcgen.io as pio
    import shapely
    from shapely.geometry import Polygon

    path, hole, _ = holed_tile
    x, y = hole.centroid.coords[0]
    strip = Polygon([(x - 30, y - 50), (x - 28, y - 50), (x + 32, y + 10), (x + 30, y + 10)])
    cloud = pio.read(path)
    cut = tmp_path / "cut.laz"  # the strip's points removed: a dropout to fill
    pio.write(cloud.select(~shapely.contains_xy(strip.buffer(0.5), cloud.xyz[:, 0], cloud.xyz[:, 1])), cut)
    mask = _mask(tmp_path, [strip], "EPSG:2949")
    assert main(["fill", str(cut), str(tmp_path / "o.laz"), "--mask", str(mask), "--baseline", "mirror"]) == 0
    (gap,) = json.loads(capsys.readouterr().out)[0]["gaps"]
    assert gap["n_target"] > 100 and gap["n_generated"] == gap["n_target"]


def test_png_draws_the_fill_and_replaces_only_a_png_it_drew(holed_tile, tmp_path, capsys):
    from PIL import Image

    from pcgen.tasks.fill_render import PNG_MARK, is_fill_png

    path, hole, _ = holed_tile
    out = tmp_path / "out"
    out.mkdir()
    mask = _mask(tmp_path, [hole])
    fill = ["fill", str(path), str(out / "a.laz"), "--mask", str(mask), "--baseline", "mirror", "--png", "-q"]
    assert main(fill) == 0
    png = out / "a.png"
    assert is_fill_png(png) and Image.open(png).info.get("Software") == PNG_MARK
    assert Image.open(png).size == (1320, 616)  # 12 x 5.6 inches at 110 dpi: above and side by side
    new = int((laspy.read(out / "a.laz").generated == 1).sum())
    assert Image.open(png).info["Title"] == "holed.laz"  # the panels' words, for a reader who cannot see them:
    assert Image.open(png).info["Description"] == (  # in the file's CRS unit (EPSG:2949: metres, was "units")
        f"from above: 1 gap, {new} new points; from the side: the largest gap (314 m²) and 20 m either side")
    (out / "d.png").write_bytes(png.read_bytes())  # a drawing of an earlier fill, where d.laz's would go
    _fails(capsys, [a.replace("a.laz", "d.laz") for a in fill[:-1]], out,
           "d.png: output file exists (pass --overwrite to replace it)")
    assert main(fill + ["--overwrite"]) == 0
    theirs = out / "b.png"
    theirs.write_bytes(b"\x89PNG\r\n\x1a\n" + b"a picture of the user's")
    _fails(capsys, ["fill", str(path), str(out / "b.laz"), "--mask", str(mask), "--baseline", "mirror", "--png",
                    "--overwrite"], out, "pcgen did not write it")
    _fails(capsys, ["fill", str(path), str(out / "c.laz"), "--gaps-only", "--png"], out,
           "--png sets how gaps are filled; --gaps-only fills none")
    src = tmp_path / "in"
    src.mkdir()
    (src / "t1.laz").write_bytes(path.read_bytes())
    assert main(["fill", str(src), str(tmp_path / "many"), "--mask", str(mask), "--baseline", "mirror",
                 "--png", "-q"]) == 0
    assert is_fill_png(tmp_path / "many" / "t1.png")


def test_bounds_fill_only_the_box_and_skip_the_tiles_it_misses(holed_tile, tmp_path, capsys):
    """A user's area of interest in a larger survey: only its points are read, filled and written."""
    import pcgen.io as pio

    path, hole, _ = holed_tile
    las = laspy.read(path)
    c = hole.centroid
    text = ",".join(f"{v:.3f}" for v in (c.x - 30, c.y - 30, c.x + 30, c.y + 30))
    x0, y0, x1, y1 = (float(v) for v in text.split(","))
    mask = _mask(tmp_path, [hole], "EPSG:2949")
    out = tmp_path / "out"
    assert main(["fill", str(path), str(out / "a.laz"), "--bounds", text, "--mask", str(mask),
                 "--baseline", "mirror", "-q"]) == 0
    filled = laspy.read(out / "a.laz")
    inside = (las.x >= x0) & (las.x < x1) & (las.y >= y0) & (las.y < y1)  # half-open, as pcgen tile's
    assert 0 < inside.sum() < len(las.points)
    old = np.asarray(filled.generated) == 0
    for name in las.points.array.dtype.names:  # the box's originals, field by field, exact
        assert np.array_equal(filled.points.array[name][old], las.points.array[name][inside]), name
    assert (~old).sum() > 100 and np.all(np.hypot(filled.x[~old] - c.x, filled.y[~old] - c.y) <= 10.5)
    _fails(capsys, ["fill", str(path), str(out / "b.laz"), "--bounds", "0,0,1,1", "--baseline", "mirror"], out,
           "bounds (0, 0, 1, 1) miss the data")
    # a folder: the tile the box misses is skipped, a box that misses every tile is refused
    cloud = pio.read(path)
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    west = cloud.xyz[:, 0] < c.x + 25
    pio.write(cloud.select(west), tiles / "west.laz")
    pio.write(cloud.select(~west), tiles / "east.laz")
    w = cloud.xyz[west]
    box_w = f"{w[:, 0].min():.3f},{w[:, 1].min():.3f},{c.x + 20:.3f},{w[:, 1].max():.3f}"
    assert main(["fill", str(tiles), str(tmp_path / "filled"), "--bounds", box_w, "--baseline", "mirror"]) == 0
    err = capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "filled").glob("*.laz")) == ["west.laz"]
    assert f"east.laz: skipped (bounds (" in err and "miss the data" in err
    _fails(capsys, ["fill", str(tiles), str(tmp_path / "none"), "--bounds", "0,0,1,1", "--baseline", "mirror"],
           tmp_path, "--bounds reaches none of the 2 inputs")


@pytest.mark.parametrize("text, says", [
    ("1,2,3", "got 3 values"),
    ("1,2,x,4", "wants a number, got 'x'"),
    ("5,0,1,9", "must be finite with min <= max"),
])
def test_bad_bounds_are_named(holed_tile, tmp_path, capsys, text, says):
    path, _, _ = holed_tile
    _fails(capsys, ["fill", str(path), str(tmp_path / "o.laz"), "--bounds", text], tmp_path, says)

