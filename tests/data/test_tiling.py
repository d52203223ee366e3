"""Tiling conserves every point (count and identity), buffers are exact, options behave."""

from __future__ import annotations

import json

import laspy
import numpy as np
import pytest

import pcgen.io as io
from pcgen import datadir
from pcgen.data.tile_cores import voxel_keep
from pcgen.data.tiling import TileOptions, tile_files
from pcgen.errors import OutputError

from .scenes import make_scene


def _raw_sorted(rows: np.ndarray) -> np.ndarray:
    """Records as sorted opaque byte strings: equal arrays <=> same multiset of points."""
    void = np.dtype((np.void, rows.dtype.itemsize))
    return np.sort(np.ascontiguousarray(rows).view(void))


def _tiles_by_source(out, index):
    by = {}
    for f in index["features"]:
        p = f["properties"]
        by.setdefault(p["source"], []).append((p, io.read(out / p["name"])))
    return by


def _core_rows(cloud, source_dtype):
    rows = cloud.to_record().array
    if "buffer" in rows.dtype.names:
        rows = rows[rows["buffer"] == 0]
        # drop the trailing buffer byte to compare with the source layout
        n, s = len(rows), source_dtype.itemsize
        rows = np.ascontiguousarray(rows).view(np.uint8).reshape(n, -1)[:, :s].copy()
        rows = rows.reshape(-1).view(source_dtype)
    return rows


@pytest.mark.parametrize("path", datadir.lidar_files(), ids=lambda p: p.name)
def test_every_point_in_exactly_one_core_real_files(tmp_path, path):
    src = io.read(path)
    extent = float(np.ptp(src.xyz[:, :2], axis=0).max())
    size = float(np.ceil(extent / 3.5))  # about 4 x 4 tiles whatever the file's units/extent
    out = tmp_path / "tiles"
    index = tile_files([path], out, TileOptions(size=size, buffer=size / 8, compress=False),
                       overview=False)
    assert len(index["features"]) >= 4
    tiles = _tiles_by_source(out, index)[path.name]
    dtype = src.to_record().array.dtype
    cores = np.concatenate([_core_rows(c, dtype) for _, c in tiles])
    assert len(cores) == len(src)
    assert np.array_equal(_raw_sorted(cores), _raw_sorted(src.to_record().array))
    for props, cloud in tiles:  # header metadata and CRS carried over
        assert np.array_equal(cloud.header.scales, src.header.scales)
        assert np.array_equal(cloud.header.offsets, src.header.offsets)
        assert cloud.header.version == src.header.version
        assert cloud.crs == src.crs
        assert props["core_points"] == int((cloud.attributes["buffer"] == 0).sum())


def test_cores_and_buffers_match_half_open_boxes(tmp_path):
    path = datadir.lidar_file("MixedConifer.laz")
    S, B = 25.0, 3.0
    index = tile_files([path], tmp_path / "t", TileOptions(size=S, buffer=B), overview=False)
    src = io.read(path)
    x, y = src.xyz[:, 0], src.xyz[:, 1]
    gps = src.attributes["gps_time"]
    assert sum(f["properties"]["core_points"] for f in index["features"]) == len(src)
    for f in index["features"]:
        p = f["properties"]
        x0, y0, x1, y1 = p["core_bounds"]
        core = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
        box = (x >= x0 - B) & (x < x1 + B) & (y >= y0 - B) & (y < y1 + B)
        tile = io.read(tmp_path / "t" / p["name"])
        flag = tile.attributes["buffer"]
        assert (flag == 0).sum() == core.sum() == p["core_points"]
        assert (flag == 1).sum() == (box & ~core).sum() == p["buffer_points"]
        # identity via (gps_time, xyz): the buffer points are the neighbours' points
        want = set(zip(gps[box & ~core].tolist(), x[box & ~core].tolist()))
        got = set(zip(tile.attributes["gps_time"][flag == 1].tolist(),
                      tile.xyz[flag == 1, 0].tolist()))
        assert got == want
    assert json.loads((tmp_path / "t" / "tile_index.geojson").read_text())["features"]


def test_tiles_of_an_earlier_run_tile_again(tmp_path):
    # their buffer points are copies of a neighbour's core: each point must come out once,
    # flagged by the new tile's box, not the old one's
    path = datadir.lidar_file("MixedConifer.laz")
    tile_files([path], tmp_path / "a", TileOptions(size=30, buffer=3), overview=False)
    index = tile_files([tmp_path / "a"], tmp_path / "b", TileOptions(size=45, buffer=3), overview=False)
    src = io.read(path)
    feats = [f["properties"] for f in index["features"]]
    assert sum(p["core_points"] for p in feats) == len(src) == 37_657
    cores = []
    for p in feats:
        tile = io.read(tmp_path / "b" / p["name"])
        x0, y0, x1, y1 = p["core_bounds"]
        x, y = tile.xyz[:, 0], tile.xyz[:, 1]
        core = tile.attributes["buffer"] == 0
        assert np.array_equal(core, (x >= x0) & (x < x1) & (y >= y0) & (y < y1)), p["name"]
        cores += zip(tile.attributes["gps_time"][core].tolist(), x[core].tolist(), y[core].tolist())
    assert sorted(cores) == sorted(zip(src.attributes["gps_time"].tolist(), src.xyz[:, 0].tolist(),
                                       src.xyz[:, 1].tolist()))


def test_a_header_box_with_max_below_min_still_gets_an_overview(tmp_path):
    import struct

    data = bytearray(datadir.lidar_file("simple.las").read_bytes())
    assert struct.unpack_from("<d", data, 179)[0] > 0  # the header's max X
    struct.pack_into("<d", data, 179, 0.0)
    bad = tmp_path / "box.las"
    bad.write_bytes(bytes(data))
    index = tile_files([bad], tmp_path / "t", TileOptions(size=200, buffer=0))
    assert sum(f["properties"]["core_points"] for f in index["features"]) == 1065
    assert (tmp_path / "t" / "overview.png").stat().st_size > 1000


def test_streaming_spill_matches_in_memory(tmp_path):
    path = datadir.lidar_file("Topography.laz")
    opts = dict(size=60, buffer=6, ground_normalize=True, voxel=0.5)
    tile_files([path], tmp_path / "mem", TileOptions(**opts), overview=False)
    tile_files([path], tmp_path / "spill", TileOptions(**opts, chunk_size=9_000, max_memory=1),
               overview=False)
    mem = sorted(p.name for p in (tmp_path / "mem").glob("*.laz"))
    assert mem == sorted(p.name for p in (tmp_path / "spill").glob("*.laz"))
    for name in mem:
        a = io.read(tmp_path / "mem" / name).to_record().array
        b = io.read(tmp_path / "spill" / name).to_record().array
        assert a.tobytes() == b.tobytes(), name
    assert not list((tmp_path / "spill").glob(".spill*"))


def test_min_points_drops_small_tiles(tmp_path):
    path = datadir.lidar_file("Megaplot.laz")
    full = tile_files([path], tmp_path / "a", TileOptions(size=30, buffer=0), overview=False)
    counts = sorted(f["properties"]["core_points"] for f in full["features"])
    k = counts[len(counts) // 3]
    kept = tile_files([path], tmp_path / "b", TileOptions(size=30, buffer=0, min_points=k),
                      overview=False)
    assert len(kept["features"]) == sum(c >= k for c in counts) < len(counts)
    src_info = kept["properties"]["sources"][0]
    kept_points = sum(f["properties"]["core_points"] for f in kept["features"])
    assert kept_points + src_info["dropped_points"] == 81590
    assert "buffer" not in io.read(tmp_path / "b" / kept["features"][0]["properties"]["name"]).attributes


def test_min_points_dropping_every_tile_is_an_error_and_writes_nothing(tmp_path, capsys):
    from pcgen.cli import main

    code = main(["tile", str(datadir.lidar_file("simple.las")), str(tmp_path / "t"), "--min-points", "5000"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "pcgen tile: error: min-points 5000 dropped every one of the 987 tiles (nothing written)"
    assert not (tmp_path / "t").exists()


def test_voxel_thinning_one_point_per_voxel(tmp_path):
    path = datadir.lidar_file("MixedConifer.laz")
    V = 1.0
    index = tile_files([path], tmp_path / "t", TileOptions(size=30, buffer=0, voxel=V),
                       overview=False)
    src = io.read(path).xyz
    n_voxels = len(np.unique(np.floor(src / V).astype(np.int64), axis=0))
    total = sum(f["properties"]["core_points"] for f in index["features"])
    assert total == n_voxels  # 30 is a multiple of V: voxels never straddle tiles
    assert index["properties"]["sources"][0]["thinned_points"] == len(src) - n_voxels


def test_voxel_keep_picks_point_nearest_centre():
    pts = np.array([[0.1, 0.1, 0.1], [0.45, 0.5, 0.55], [0.9, 0.9, 0.9], [1.5, 0.5, 0.5]])
    np.testing.assert_array_equal(voxel_keep(pts, 1.0), [1, 3])


def test_ground_normalization_on_synthetic_terrain(tmp_path):
    scene = make_scene(2, size=80.0, n_buildings=0, n_trees=6)
    io.write(scene, tmp_path / "scene.laz")
    index = tile_files([tmp_path / "scene.laz"], tmp_path / "t",
                       TileOptions(size=40, buffer=0, ground_normalize=True), overview=False)
    tiles = io.concat([io.read(tmp_path / "t" / f["properties"]["name"])
                       for f in index["features"]])
    cls = tiles.attributes["classification"]
    ground_h = tiles.xyz[cls == 2, 2]
    assert np.abs(np.median(ground_h)) < 0.05
    assert np.percentile(np.abs(ground_h), 95) < 0.5  # terrain spans ~8 m before normalization
    assert tiles.xyz[cls == 5, 2].max() > 8.0  # trees keep their height above ground


def test_ground_normalization_without_ground_class(tmp_path):
    path = datadir.lidar_file("lone-star.laz")  # unclassified terrestrial scan
    index = tile_files([path], tmp_path / "t", TileOptions(size=20, buffer=0,
                                                           ground_normalize=True), overview=False)
    z = np.concatenate([io.read(tmp_path / "t" / f["properties"]["name"]).xyz[:, 2]
                        for f in index["features"]])
    src_z = io.read(path).xyz[:, 2]
    assert np.percentile(src_z, 5) > 2300  # absolute elevations before
    assert np.percentile(z, 5) == pytest.approx(0.0, abs=0.3)  # the low surface sits at 0 after
    assert np.percentile(z, 1) > -0.5


def test_ground_normalization_of_a_file_whose_z_grid_is_far_from_zero(tmp_path):
    # test1_4.las: Z offset 7350 m and scale 1e-6 m reach 5203-9497 m, and its ground lies at
    # 5593-5599 m; heights of about 0 m are stored around a Z offset of 0 in the tiles
    path = datadir.lidar_file("test1_4.las")
    src = io.read(path)
    assert src.header.offsets[2] - 2 ** 31 * src.header.scales[2] > 5000
    index = tile_files([path], tmp_path / "t", TileOptions(size=50, buffer=0,
                                                           ground_normalize=True), overview=False)
    tiles = [io.read(tmp_path / "t" / f["properties"]["name"]) for f in index["features"]]
    for tile in tiles:
        assert tile.header.offsets[2] == 0.0
        np.testing.assert_array_equal(tile.header.offsets[:2], src.header.offsets[:2])
        np.testing.assert_array_equal(tile.header.scales, src.header.scales)
    z = np.concatenate([t.xyz[:, 2] for t in tiles])
    assert len(z) == len(src)
    assert np.abs(np.median(z)) < 0.05  # every point is ground: heights about 0
    assert np.ptp(z) < np.ptp(src.xyz[:, 2])


def _header(lo, hi, points=100):
    h = laspy.LasHeader(point_format=3, version="1.2")
    h.mins, h.maxs, h.point_count = np.r_[lo, 0.0], np.r_[hi, 1.0], points
    return h


def test_overview_areas_split_by_crs_and_distance():
    from pcgen.data.tiling import overview_areas

    names = ["Megaplot.laz", "autzen_trim.laz", "simple.las"]  # UTM 17N, Oregon feet, no CRS
    headers = [laspy.open(datadir.lidar_file(n)).header for n in names]
    assert overview_areas(headers, 100.0) == [[1], [0], [2]]  # 110000, 81590, 1065 points
    # one CRS: neighbours (touching, or within one tile) join; a site 10 km away does not
    near = [_header((0, 0), (50, 50), 10), _header((50, 0), (100, 50), 20),
            _header((0, 90), (50, 140), 35), _header((10_000, 0), (10_050, 50), 40)]
    assert overview_areas(near, 50.0) == [[0, 1, 2], [3]]  # largest (in points) first
    assert overview_areas(near, 15.0) == [[3], [2], [0, 1]]  # 40 m apart, tiles of 15 m


def test_overview_draws_a_row_per_area(tmp_path):
    from PIL import Image

    paths = [datadir.lidar_file(n) for n in ("Megaplot.laz", "simple.las")]
    tile_files(paths, tmp_path / "t", TileOptions(size=100, buffer=0))
    one = tile_files(paths[:1], tmp_path / "one", TileOptions(size=100, buffer=0))
    assert len(one["features"]) == 12
    w2, h2 = Image.open(tmp_path / "t" / "overview.png").size
    w1, h1 = Image.open(tmp_path / "one" / "overview.png").size
    assert w1 == w2 and h2 == pytest.approx(2 * h1, rel=0.02)


def test_index_and_overview(tmp_path):
    path = datadir.lidar_file("autzen_trim.laz")
    index = tile_files([path], tmp_path / "t", TileOptions(size=200, buffer=10))
    assert (tmp_path / "t" / "overview.png").stat().st_size > 10_000
    feat = index["features"][0]
    ring = feat["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    props = feat["properties"]
    assert props["source"] == "autzen_trim.laz"
    assert props["points"] == props["core_points"] + props["buffer_points"]
    x0, y0, x1, y1 = props["core_bounds"]
    assert x1 - x0 == 200 and x0 % 200 == 0
    header = laspy.read(tmp_path / "t" / props["name"]).header
    assert header.point_count == props["points"]


def test_index_names_a_wkt_crs_that_reads_back(tmp_path):
    """A WKT CRS without an EPSG ID (autzen) is named by its WKT, in the member and per tile."""
    from pyproj import CRS

    path = datadir.lidar_file("autzen_trim.laz")
    index = tile_files([path], tmp_path / "t", TileOptions(size=400, buffer=0), overview=False)
    name = index["crs"]["properties"]["name"]
    assert CRS(name).equals(io.read(path).crs)
    assert {f["properties"]["crs"] for f in index["features"]} == {name}


def test_non_empty_output_names_the_parameter(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"not empty \(pass overwrite=True ") as err:
        tile_files([datadir.lidar_file("warsaw_small.las")], out, overview=False)
    assert "--overwrite" not in str(err.value) and sorted(p.name for p in out.iterdir()) == ["keep.txt"]
