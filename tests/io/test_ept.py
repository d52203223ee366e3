"""EPT: node selection, resolution depths, CRS, point conservation and one-line errors.

Real data: the shared 14.1 M-point, 290-node Hawaiʻi EPT dataset (root cube 1004 m, span 128,
so depth d holds points about 7.84 / 2**d m apart). Broken copies are built in tmp_path from
its small JSON files, with symlinks to the node files (the shared data is never modified).
"""

from __future__ import annotations

import hashlib
import json
import shutil

import laspy
import numpy as np
import pytest
from pyproj import CRS

import pcgen.io as pio
from pcgen import datadir
from pcgen.errors import ConfigError, InputError
from pcgen.io.ept import EptDataset, open_ept_chunks, read_ept

EPT = datadir.data_dir() / "training" / "hawaii_ept"
BOX = (202000, 2184000, 202100, 2184100)  # a 100 m square in the south-west corner
BOX_NODES = {"0-0-0-0": 38716, "1-0-0-0": 1648, "1-0-0-1": 55185, "2-0-0-2": 55108,
             "3-0-0-4": 85574, "4-0-1-8": 18850}


def _hierarchy() -> dict[str, int]:
    return json.loads((EPT / "ept-hierarchy" / "0-0-0-0.json").read_text())


def _node_records(names) -> np.ndarray:
    """The nodes' raw point records straight from laspy, in the given order."""
    return np.concatenate([laspy.read(EPT / "ept-data" / f"{n}.laz").points.array for n in names])


def _rows(array: np.ndarray) -> np.ndarray:
    """Records as sorted opaque rows: equal iff the same multiset of points."""
    return np.sort(np.ascontiguousarray(array).view(np.dtype((np.void, array.dtype.itemsize))))


def _copy_dataset(tmp_path, hierarchy: dict | None = None, meta: dict | None = None,
                  drop_nodes=()):
    """A copy of the dataset's metadata in tmp_path, node files symlinked (minus ``drop_nodes``)."""
    root = tmp_path / "ds"
    (root / "ept-hierarchy").mkdir(parents=True)
    (root / "ept-data").mkdir()
    doc = json.loads((EPT / "ept.json").read_text())
    doc.update(meta or {})
    (root / "ept.json").write_text(json.dumps(doc))
    (root / "ept-hierarchy" / "0-0-0-0.json").write_text(json.dumps(hierarchy or _hierarchy()))
    for node in (EPT / "ept-data").iterdir():
        if node.stem not in drop_nodes:
            (root / "ept-data" / node.name).symlink_to(node)
    return root


# -- selection ----------------------------------------------------------------------------------
def test_metadata_and_crs():
    ds = EptDataset(EPT)  # the folder works as well as ept.json
    assert ds.path == EPT / "ept.json"
    assert ds.points == 14_142_410 and ds.span == 128
    assert ds.spacing(0) == pytest.approx(1004 / 128)
    assert ds.crs.to_epsg() == 32605
    cloud = pio.read(EPT / "ept.json", bounds=BOX, resolution=8)
    assert cloud.crs.to_epsg() == 32605


def test_a_compound_srs_reaches_what_is_written(tmp_path):
    # nodes in LAS 1.2 hold GeoKeys: the horizontal and the vertical code
    root = _copy_dataset(tmp_path, meta={"srs": {"authority": "EPSG", "horizontal": "32605",
                                                 "vertical": "5703"}})
    cloud = pio.read(root / "ept.json", bounds=BOX, resolution=8)
    assert cloud.crs == CRS("EPSG:32605+5703")
    pio.write(cloud, tmp_path / "out.laz")
    keys = {k.id: k.value_offset for k in
            laspy.read(tmp_path / "out.laz").header.vlrs.get("GeoKeyDirectoryVlr")[0].geo_keys}
    assert keys[3072] == 32605 and keys[4096] == 5703


def test_whole_hierarchy_is_every_node():
    nodes = EptDataset(EPT).select()
    assert len(nodes) == 290
    assert sum(n.count for n in nodes) == 14_142_410
    assert {n.name for n in nodes} == set(_hierarchy())


def test_bounds_select_the_known_nodes_and_the_exact_points():
    ds = EptDataset(EPT)
    nodes = ds.select(BOX)
    assert {n.name: n.count for n in nodes} == BOX_NODES
    lo, hi = np.array([BOX[0], BOX[1], -np.inf]), np.array([BOX[2], BOX[3], np.inf])
    for n in ds.select():  # every node left out lies outside the box
        if n.name not in BOX_NODES:
            assert (np.array(n.maxs) < lo).any() or (np.array(n.mins) > hi).any(), n.name
    cloud = pio.read(EPT / "ept.json", bounds=BOX)
    records = _node_records(sorted(BOX_NODES))
    x = records["X"] * 0.01 + 202500
    y = records["Y"] * 0.01 + 2184500
    inside = (x >= BOX[0]) & (x <= BOX[2]) & (y >= BOX[1]) & (y <= BOX[3])
    assert len(cloud) == inside.sum() == 78_828
    assert np.array_equal(_rows(cloud.to_record().array), _rows(records[inside]))
    assert cloud.xyz[:, :2].min(axis=0).tolist() >= [BOX[0], BOX[1]]
    assert cloud.xyz[:, :2].max(axis=0).tolist() <= [BOX[2], BOX[3]]


def test_3d_bounds_cut_z():
    zbox = (BOX[0], BOX[1], 1400.0, BOX[2], BOX[3], 1500.0)
    cloud = pio.read(EPT, bounds=zbox)
    full = pio.read(EPT, bounds=BOX)
    assert 0 < len(cloud) == int((full.xyz[:, 2] >= 1400).sum()) < len(full)


@pytest.mark.parametrize("resolution, depth", [(100, 0), (7.85, 0), (7.84, 1), (4, 1),
                                               (1, 3), (0.25, 5), (0.01, 5)])
def test_resolution_limits_depth(resolution, depth):
    ds = EptDataset(EPT)
    nodes = ds.select(resolution=resolution)
    assert max(n.depth for n in nodes) == depth
    assert sum(n.count for n in nodes) == sum(
        c for k, c in _hierarchy().items() if int(k.split("-")[0]) <= depth)


def test_resolution_read_is_the_shallow_nodes():
    cloud = read_ept(EPT, resolution=4)  # depths 0 and 1: nine nodes, 303,732 points
    names = sorted((k for k in _hierarchy() if int(k.split("-")[0]) <= 1),
                   key=lambda k: tuple(map(int, k.split("-"))))
    assert len(cloud) == 303_732
    assert cloud.to_record().array.tobytes() == _node_records(names).tobytes()


def test_chunks_are_nodes_in_order():
    with pio.open_chunks(EPT / "ept.json") as reader:
        assert reader.point_count == 14_142_410 and len(reader) == 290
        assert reader.crs.to_epsg() == 32605
        first = [len(chunk) for _, chunk in zip(range(3), reader)]
    assert first == [38716, 1648, 55185]


def test_read_keeps_every_point_once():
    """Count and identity against the node files, on depths 0-2 (29 nodes, 1.19 M points).

    The whole 14.1 M-point read takes 15-40 s on the shared 2-core machine, so it is checked
    (and timed) by ``bench/ept_read.py`` instead.
    """
    nodes = EptDataset(EPT).select(resolution=2)
    assert len(nodes) == 29 and max(n.depth for n in nodes) == 2
    cloud = read_ept(EPT / "ept.json", resolution=2)
    assert len(cloud) == sum(n.count for n in nodes) == 1_194_920
    got = hashlib.sha256(cloud.to_record().array.tobytes()).hexdigest()
    ref = hashlib.sha256()
    for n in nodes:  # depth, x, y, z order, as the reader concatenates
        ref.update(laspy.read(EPT / "ept-data" / f"{n.name}.laz").points.array.tobytes())
    assert got == ref.hexdigest()


def test_sub_hierarchy_pages_are_followed(tmp_path):
    full = _hierarchy()
    # move node 2-0-0-2's subtree (itself and its descendants) into its own page
    def under(key):
        d, x, y, z = map(int, key.split("-"))
        return d >= 2 and (x >> (d - 2), y >> (d - 2), z >> (d - 2)) == (0, 0, 2)

    sub = {k: v for k, v in full.items() if under(k)}
    root = {k: v for k, v in full.items() if not under(k)}
    root["2-0-0-2"] = -1
    ds_root = _copy_dataset(tmp_path, hierarchy=root)
    (ds_root / "ept-hierarchy" / "2-0-0-2.json").write_text(json.dumps(sub))
    assert len(sub) > 1
    ds = EptDataset(ds_root)
    assert {n.name: n.count for n in ds.select()} == full
    assert {n.name: n.count for n in ds.select(BOX)} == BOX_NODES
    (ds_root / "ept-hierarchy" / "2-0-0-2.json").unlink()
    with pytest.raises(InputError, match=r"2-0-0-2\.json: EPT hierarchy file missing"):
        ds.select(BOX)


# -- errors -------------------------------------------------------------------------------------
def test_missing_node_file(tmp_path):
    root = _copy_dataset(tmp_path, drop_nodes={"3-0-0-4"})
    with pytest.raises(InputError, match=r"3-0-0-4\.laz: EPT node file missing"):
        read_ept(root, bounds=BOX)


def test_a_broken_node_in_a_batch_is_named(tmp_path):
    # nodes decode in batches; a node cut short fails its batch, which is then read node by node
    root = _copy_dataset(tmp_path)
    node = root / "ept-data" / "3-0-0-4.laz"
    data = node.read_bytes()
    node.unlink()
    node.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputError, match=r"3-0-0-4\.laz: unreadable EPT node 3-0-0-4") as info:
        read_ept(root, bounds=BOX)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, problem", [
    ('{"bounds": [0, 0, 0, 1, 1', "corrupt ept.json"),
    ('{"span": 128, "points": 1, "dataType": "laszip"}', "corrupt ept.json"),
    ('{"bounds": [0, 0, 0, 0, 1, 1], "span": 128, "points": 1, "dataType": "laszip"}',
     "bounds must be"),
    ('[1, 2]', "corrupt ept.json"),
])
def test_corrupt_ept_json(tmp_path, text, problem):
    root = _copy_dataset(tmp_path)
    (root / "ept.json").write_text(text)
    with pytest.raises(InputError, match=problem) as info:
        pio.read(root / "ept.json")
    assert str(root / "ept.json") in str(info.value)
    assert "\n" not in str(info.value)


def test_binary_data_type_is_refused(tmp_path):
    root = _copy_dataset(tmp_path, meta={"dataType": "binary"})
    with pytest.raises(InputError, match="data type 'binary' is not supported"):
        pio.read(root)


def test_hierarchy_that_disagrees_with_a_node(tmp_path):
    hierarchy = _hierarchy()
    hierarchy["4-0-1-8"] += 5
    root = _copy_dataset(tmp_path, hierarchy=hierarchy)
    with pytest.raises(InputError, match=r"4-0-1-8\.laz: EPT node 4-0-1-8 holds 18850 points "
                                         r"but the hierarchy says 18855"):
        read_ept(root, bounds=BOX)
    with pytest.raises(InputError, match="hierarchy counts 14142415 points but ept.json says "
                                         "14142410"):
        read_ept(root)


def test_corrupt_hierarchy_page(tmp_path):
    root = _copy_dataset(tmp_path)
    (root / "ept-hierarchy" / "0-0-0-0.json").write_text('{"0-0-0-0": "many"}')
    with pytest.raises(InputError, match="corrupt EPT hierarchy file"):
        read_ept(root, bounds=BOX)


def test_bounds_that_miss_the_data():
    with pytest.raises(InputError, match=r"ept.json: bounds \(0, 0, 10, 10\) miss the data"):
        pio.read(EPT, bounds=(0, 0, 10, 10))
    with pytest.raises(ConfigError, match="bounds must be"):
        pio.read(EPT, bounds=(0, 0, 10))
    with pytest.raises(ConfigError, match="resolution must be a finite number > 0"):
        pio.read(EPT, resolution=-1)
    with pytest.raises(ConfigError, match="resolution must be a number, got True"):
        pio.read(EPT, resolution=True)


def test_not_a_dataset(tmp_path):
    with pytest.raises(InputError, match="EPT dataset not found"):
        read_ept(tmp_path)
    shutil.copy(EPT / "ept.json", tmp_path / "ept.json")  # no hierarchy beside it
    with pytest.raises(InputError, match="EPT hierarchy file missing"):
        pio.read(tmp_path)


# -- tiling -------------------------------------------------------------------------------------
def _shallow_dataset(tmp_path, depth: int = 1):
    """A smaller valid EPT dataset: the shared one cut below ``depth`` (nodes symlinked)."""
    hierarchy = {k: v for k, v in _hierarchy().items() if int(k.split("-")[0]) <= depth}
    return _copy_dataset(tmp_path, hierarchy=hierarchy,
                         meta={"points": sum(hierarchy.values())}), hierarchy


def test_tile_an_ept_dataset_keeps_every_point(tmp_path):
    from pcgen.data.tiling import TileOptions, tile_files

    root, hierarchy = _shallow_dataset(tmp_path)
    out = tmp_path / "tiles"
    index = tile_files([root], out, TileOptions(size=250, buffer=10, compress=False),
                       overview=False)
    feats = [f["properties"] for f in index["features"]]
    assert len(feats) == 25 and all(p["name"].startswith("ds_") for p in feats)
    assert {p["source"] for p in feats} == {"ds/ept.json"}
    assert all(p["crs"] == "urn:ogc:def:crs:EPSG::32605" for p in feats)
    cores = []
    for p in feats:
        rows = laspy.read(out / p["name"]).points.array
        assert len(rows) == p["points"]
        cores.append(rows[rows["buffer"] == 0])
    cores = np.concatenate(cores)
    source = _node_records(sorted(hierarchy))
    assert len(cores) == len(source) == 303_732
    # tiles add a trailing 1-byte buffer dimension: compare the source bytes of each record
    n, size = len(cores), source.dtype.itemsize
    cores = np.ascontiguousarray(cores).view(np.uint8).reshape(n, -1)[:, :size].copy()
    assert np.array_equal(_rows(cores.reshape(-1).view(source.dtype)), _rows(source))


def test_tile_cli_accepts_ept_json(tmp_path, capsys):
    from pcgen.cli import main

    root, hierarchy = _shallow_dataset(tmp_path, depth=0)
    code = main(["tile", str(root / "ept.json"), str(tmp_path / "t"), "--size", "500",
                 "--buffer", "0", "--no-overview"])
    assert code in (0, None)
    assert "38716 core points" in capsys.readouterr().out
    root_node = laspy.read(EPT / "ept-data" / "0-0-0-0.laz")
    expected = {f"ds_{int(i) * 500}_{int(j) * 500}.laz" for i, j in
                zip(np.floor(root_node.x / 500), np.floor(root_node.y / 500))}
    assert {p.name for p in (tmp_path / "t").glob("*.laz")} == expected
    assert len(expected) >= 4


def test_fill_inputs_accept_an_ept_dataset(tmp_path):
    from pcgen.errors import OutputError
    from pcgen.tasks.jobs import expand_inputs

    out = tmp_path / "filled.laz"
    assert expand_inputs(EPT, out) == [(EPT / "ept.json", out)]
    assert expand_inputs(EPT / "ept.json", out) == [(EPT / "ept.json", out)]  # not a tile index
    with pytest.raises(OutputError, match="must end in .las or .laz"):
        expand_inputs(EPT, tmp_path / "outdir")


def test_fill_cli_accepts_an_ept_folder(tmp_path, capsys):
    from pcgen.cli import main
    from pcgen.inputs import list_inputs

    root, _ = _shallow_dataset(tmp_path)
    assert list_inputs([root]) == list_inputs([root / "ept.json"]) == [root / "ept.json"]
    out = tmp_path / "filled.laz"
    code = main(["fill", str(root), str(out), "--baseline", "mirror"])
    assert code in (0, None)
    filled = laspy.read(out)
    report = capsys.readouterr()
    assert "(+303732 original)" in report.out + report.err
    assert len(filled.points) > 303_732
    assert filled.header.parse_crs().to_epsg() == 32605


def test_bounded_chunks_are_cropped_and_never_empty():
    box = (202050, 2184050, 202051, 2184051)  # 1 m square: most selected nodes hold none of it
    with open_ept_chunks(EPT, bounds=box) as reader:
        chunks = list(reader)
        assert len(reader.nodes) > len(chunks) >= 1
    assert all(len(c) > 0 for c in chunks)
    xyz = np.concatenate([c.xyz for c in chunks])
    assert (xyz[:, 0] >= 202050).all() and (xyz[:, 0] <= 202051).all()
    assert len(xyz) == len(pio.read(EPT, bounds=box))


def test_a_node_listed_on_two_pages_is_named(tmp_path):
    """A bounded read got the node's points twice (1251 points, 1071 unique), without a word."""
    full = _hierarchy()
    root_page = dict(full)
    root_page["2-0-0-2"] = -1
    ds_root = _copy_dataset(tmp_path, hierarchy=root_page)
    (ds_root / "ept-hierarchy" / "2-0-0-2.json").write_text(
        json.dumps({"2-0-0-2": full["2-0-0-2"], "1-0-0-0": full["1-0-0-0"]}))
    with pytest.raises(InputError, match=r"2-0-0-2\.json: EPT hierarchy lists node 1-0-0-0 twice"):
        read_ept(ds_root, bounds=BOX)


def test_an_srs_that_is_not_an_object_and_a_dataset_without_one(tmp_path):
    bad = _copy_dataset(tmp_path / "bad", meta={"srs": "EPSG:32605"})
    with pytest.raises(InputError, match=r'ept.json: "srs" must be an object'):
        pio.read(bad, bounds=BOX)  # AttributeError before
    none = _copy_dataset(tmp_path / "none", meta={"srs": {}})
    with pio.open_chunks(none, bounds=BOX) as chunks:  # said None while every chunk said 32605
        assert chunks.crs == CRS("EPSG:32605") and next(iter(chunks)).crs == chunks.crs


def test_bounds_and_resolution_as_users_give_them():
    small = (202000, 2184000, 202020, 2184020)
    # an iterator is read once only: a first parse used it up ("got 0 values")
    assert len(pio.read(EPT, bounds=iter(small))) == len(pio.read(EPT, bounds=small)) > 0
    with pytest.raises(ConfigError, match="bounds must be numbers, got '1234'"):
        pio.read(EPT, bounds="1234")  # was (1, 2, 3, 4)
    with pytest.raises(ConfigError, match="resolution must be >= 1e-09"):
        pio.read(EPT, bounds=BOX, resolution=1e-309)  # an OverflowError in the depth
    with pytest.raises(InputError, match="a folder without ept.json"):
        pio.read(EPT / "ept-data")
    with pytest.raises(InputError, match="file or EPT dataset not found"):
        pio.read(EPT.parent / "no_such_dataset")
