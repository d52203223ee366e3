"""LAS/LAZ read -> write -> read is lossless on every shared real file."""

from __future__ import annotations

import numpy as np
import pytest

import pcgen.io as io
from pcgen import datadir

FILES = datadir.lidar_files()


def _vlr_keys(vlrs):
    return [(v.user_id, v.record_id, bytes(getattr(v, "record_data", b"") or b"")) for v in vlrs
            if v.user_id != "laszip encoded"]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_round_trip_bit_exact(path, tmp_path):
    src = io.read(path)
    out = tmp_path / path.name
    io.write(src, out)
    back = io.read(out)
    a, b = src.to_record().array, back.to_record().array
    assert a.dtype == b.dtype
    assert a.tobytes() == b.tobytes()
    assert list(src.attributes) == list(back.attributes)
    assert np.array_equal(src.header.scales, back.header.scales)
    assert np.array_equal(src.header.offsets, back.header.offsets)
    assert src.header.version == back.header.version
    assert src.header.point_format.id == back.header.point_format.id
    assert src.crs == back.crs
    assert [(v.user_id, v.record_id) for v in src.header.vlrs if v.user_id != "laszip encoded"] == \
        [(v.user_id, v.record_id) for v in back.header.vlrs if v.user_id != "laszip encoded"]
    assert len(src.header.evlrs or []) == len(back.header.evlrs or [])
    np.testing.assert_array_equal(src.xyz, back.xyz)


def test_decoded_and_reassigned_points_stay_exact():
    src = io.read(datadir.lidar_file("las_with_several_extra_byte_bloc.laz"))
    raw = src.to_record().array.tobytes()
    src.xyz = src.xyz.copy()  # forces re-quantization from float64
    for name in list(src.attributes):
        src.attributes[name] = src.attributes[name].copy()
    assert src.to_record().array.tobytes() == raw


def test_edits_are_written(tmp_path):
    src = io.read(datadir.lidar_file("Megaplot.laz"))
    src.attributes["classification"][:10] = 7  # bit sub-field copy, edited in place
    src.xyz[:3, 2] += 1.5
    io.write(src, tmp_path / "e.laz")
    back = io.read(tmp_path / "e.laz")
    assert (back.attributes["classification"][:10] == 7).all()
    np.testing.assert_allclose(back.xyz[:3], src.xyz[:3], atol=1e-9)
    assert back.header.z_max >= src.xyz[:, 2].max() - 1e-9


def test_header_fields_and_crs():
    cloud = io.read(datadir.lidar_file("Megaplot.laz"))
    assert len(cloud) == 81590
    assert cloud.crs.to_epsg() == 26917
    assert set(np.unique(cloud.attributes["classification"])) == {1, 2}
    assert cloud.xyz.dtype == np.float64 and cloud.xyz.shape == (81590, 3)
    assert cloud.attributes["return_number"].max() == 4
    assert "treeID" in io.read(datadir.lidar_file("MixedConifer.laz")).attributes
    fr = io.read(datadir.lidar_file("las_with_several_extra_byte_bloc.laz"))
    assert {"red", "nir", "Deviation", "ExtraBytes"} <= set(fr.attributes)
    assert fr.crs.to_epsg() == 2154
    assert io.read(datadir.lidar_file("lone-star.laz")).header.version.minor == 1


@pytest.mark.parametrize("name", ["sample_c.las", "warsaw_small.las", "simple.las"])
def test_missing_or_broken_crs_is_none(name):
    assert io.read(datadir.lidar_file(name)).crs is None


def test_chunks_concat_to_whole():
    path = datadir.lidar_file("Topography.laz")
    whole = io.read(path)
    with io.open_chunks(path, 10_000) as chunks:
        assert chunks.point_count == len(whole)
        parts = list(chunks)
    assert [len(p) for p in parts][:-1] == [10_000] * (len(parts) - 1)
    joined = io.concat(parts)
    assert joined.to_record().array.tobytes() == whole.to_record().array.tobytes()


def test_select_and_extra_dimension(tmp_path):
    cloud = io.read(datadir.lidar_file("MixedConifer.laz"))
    cloud.add_extra_dimension("index", "u4", np.arange(len(cloud)), "source point index")
    part = cloud.select(cloud.attributes["classification"] == 2)
    io.write(part, tmp_path / "g.laz")
    back = io.read(tmp_path / "g.laz")
    idx = back.attributes["index"]
    assert len(back) == int((cloud.attributes["classification"] == 2).sum())
    np.testing.assert_array_equal(back.xyz, cloud.xyz[idx])
    np.testing.assert_array_equal(back.attributes["treeID"], cloud.attributes["treeID"][idx])


def _extra_bytes(path):
    import laspy
    from laspy.vlrs.known import ExtraBytesVlr

    header = laspy.open(path).header
    return [(s.name.rstrip(b"\0").decode(), s.options, None if s.no_data is None else s.no_data.tolist())
            for v in header.vlrs if isinstance(v, ExtraBytesVlr) for s in v.extra_bytes_structs]


def test_added_dimensions_keep_the_files_own_extra_bytes_definitions(tmp_path):
    """laspy rebuilt the ExtraBytes VLR from its parsed dimensions when one was added: no_data
    was dropped and the second of two ExtraBytes VLRs lost its names (``confidence`` became
    ``ExtraBytes``)."""
    import laspy

    from pcgen.data.tiling import TileOptions, tile_files

    src = laspy.read(datadir.data_dir() / "lidar" / "las_with_several_extra_byte_bloc.laz")
    part = laspy.LasData(src.header, points=src.points[:20_000])
    path = tmp_path / "two_blocks.laz"
    part.write(path)
    own = [("Deviation", 7, [0]), ("confidence", 0, None)]
    assert _extra_bytes(path) == own
    cloud = io.read(path)
    cloud.add_extra_dimension("height", np.float32, np.zeros(len(cloud)))
    io.write(cloud, tmp_path / "added.laz")
    added = _extra_bytes(tmp_path / "added.laz")
    assert added[:2] == own and [d[0] for d in added[2:]] == ["height"]
    tile_files([path], tmp_path / "tiles", TileOptions(size=20, buffer=2), overview=False)
    tile = sorted((tmp_path / "tiles").glob("*.laz"))[0]
    assert _extra_bytes(tile)[:2] == own and _extra_bytes(tile)[2][0] == "buffer"


def test_las_1_0_is_written_as_1_2_with_the_same_point_bytes(tmp_path):
    """laspy reads LAS 1.0 but writes 1.1-1.4 only: every write of a 1.0 file crashed."""
    import laspy

    from pcgen.data.tiling import TileOptions, tile_files

    las = laspy.read(datadir.data_dir() / "lidar" / "simple.las")  # LAS 1.2, format 3
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales, header.offsets = las.header.scales, las.header.offsets
    v10 = laspy.LasData(header)
    v10.x, v10.y, v10.z, v10.intensity = las.x, las.y, las.z, las.intensity
    path = tmp_path / "v10.las"
    v10.write(path)
    raw = bytearray(path.read_bytes())
    raw[25] = 0  # minor version 0: the 1.0 header has the same 227 bytes
    path.write_bytes(bytes(raw))
    cloud = io.read(path)
    assert str(cloud.header.version) == "1.0"
    io.write(cloud, tmp_path / "out.laz")
    out = laspy.read(tmp_path / "out.laz")
    assert str(out.header.version) == "1.2"
    assert out.points.array.tobytes() == laspy.read(path).points.array.tobytes()
    index = tile_files([path], tmp_path / "tiles", TileOptions(size=50, buffer=0), overview=False)
    assert sum(f["properties"]["points"] for f in index["features"]) == len(las.points)
