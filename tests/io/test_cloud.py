"""PointCloud over laspy's record: edits land in the record, untouched points stay bit-exact."""

from __future__ import annotations

import laspy
import numpy as np
import pytest

from pcgen import datadir, io
from pcgen.errors import InputError, OutputError


def _las(tmp_path, n=200, fmt=1, offsets=(0.0, 0.0, 0.0), name="c.las"):
    """A small LAS file with a return structure and classes, in ``fmt`` and ``offsets``."""
    rng = np.random.default_rng(0)
    header = laspy.LasHeader(point_format=fmt, version="1.4" if fmt >= 6 else "1.2")
    header.scales, header.offsets = np.full(3, 0.001), np.asarray(offsets, dtype=float)
    las = laspy.LasData(header)
    las.X = rng.integers(-10**6, 10**6, n)
    las.Y = rng.integers(-10**6, 10**6, n)
    las.Z = rng.integers(0, 10**5, n)
    las.intensity = rng.integers(0, 60000, n)
    las.return_number = np.full(n, 2)
    las.number_of_returns = np.full(n, 3)
    las.classification = np.where(np.arange(n) % 2 == 0, 2, 5)
    las.write(tmp_path / name)
    return tmp_path / name


def test_whole_field_edits_land_in_the_record_and_selections_are_copies(tmp_path):
    cloud = io.read(_las(tmp_path))
    part = cloud.select(slice(0, 10))
    part.attributes["intensity"][:] = 7  # a whole field: a view into part's own record
    part.attributes["classification"] = np.full(10, 9)  # a bit sub-field: packed at once
    assert (part.to_record()["intensity"] == 7).all()
    assert (np.asarray(part.to_record()["classification"]) == 9).all()
    assert (cloud.attributes["intensity"][:10] != 7).any()  # the source cloud is untouched
    assert set(np.unique(cloud.attributes["classification"])) == {2, 5}


def test_moving_one_point_leaves_the_others_bit_exact_even_far_from_the_offset(tmp_path):
    # offsets of 1e13 with mm scales: x - offset loses ~2 units of precision in float64, so
    # re-quantizing every point would move points nobody touched
    src = io.read(_las(tmp_path, offsets=(1e13, -1e13, 0.0)))
    raw = src.to_record().array.copy()
    src.xyz[0] += [1.0, 2.0, 3.0]
    io.write(src, tmp_path / "moved.las")
    back = io.read(tmp_path / "moved.las").to_record().array
    assert back[1:].tobytes() == raw[1:].tobytes()
    assert (back["X"][0] - raw["X"][0], back["Z"][0] - raw["Z"][0]) == (1000, 3000)


def test_coordinates_beyond_the_integer_grid_are_refused(tmp_path):
    cloud = io.read(_las(tmp_path))
    cloud.xyz[5, 0] = 1e9  # 1e12 mm: past int32
    with pytest.raises(OutputError, match=r"far\.las: coordinates do not fit the LAS integer grid"):
        io.write(cloud, tmp_path / "far.las")  # the message named no file
    assert not (tmp_path / "far.las").exists()


@pytest.mark.parametrize("suffix", [".las", ".ply", ".xyz"])
def test_nan_coordinates_are_refused_before_a_file_is_written(tmp_path, suffix):
    """.ply and .xyz took them, and read refused the file it had just written."""
    cloud = io.PointCloud(np.array([[1.0, 2.0, 3.0], [np.nan, 1.0, 1.0], [np.inf, 0.0, 0.0]]))
    with pytest.raises(OutputError, match=r"n\.\w+: 2 of 3 points have NaN or infinite coordinates"):
        io.write(cloud, tmp_path / f"n{suffix}")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="write wants a pcgen.io.PointCloud, got ndarray"):
        io.write(np.zeros((3, 3)), tmp_path / "a.laz")


def test_a_crs_can_be_given_as_text_or_a_code(tmp_path):
    from pcgen.errors import ConfigError

    cloud = io.read(_las(tmp_path))
    cloud.crs = "EPSG:2992"  # was an AttributeError at write
    io.write(cloud, tmp_path / "c.laz")
    assert io.read(tmp_path / "c.laz").crs.to_epsg() == 2992
    assert io.PointCloud(np.zeros((1, 3)), crs=32617).crs.to_epsg() == 32617
    with pytest.raises(ConfigError, match="not a CRS: 'EPSG:99999999'"):
        cloud.crs = "EPSG:99999999"
    assert cloud.crs.to_epsg() == 2992  # unchanged


def test_an_extra_dimension_refuses_values_its_type_would_wrap():
    from pcgen.errors import ConfigError

    cloud = io.PointCloud(np.zeros((3, 3)))
    with pytest.raises(ConfigError, match=r"'foo' holds 300, outside the 0..255 of uint8"):
        cloud.add_extra_dimension("foo", "u1", np.array([300, 5, 0]))  # was stored as [44, 5, 0]
    with pytest.raises(ConfigError, match=r"'foo' holds -1, outside the 0..255 of uint8"):
        cloud.add_extra_dimension("foo", "u1", np.array([3, -1, 0]))  # was 255
    with pytest.raises(ConfigError, match="'foo' holds 1.5, not an integer int16 can store"):
        cloud.add_extra_dimension("foo", "i2", np.array([1.5, 0.0, 1.0]))
    cloud.add_extra_dimension("foo", "u1", np.array([255.0, 0.0, 7.0]))
    assert cloud.attributes["foo"].tolist() == [255, 0, 7]


def test_selecting_no_points_gives_an_empty_cloud(tmp_path):
    cloud = io.read(_las(tmp_path))
    empty = cloud.select([])  # was numpy's "arrays used as indices must be of integer type"
    assert len(empty) == 0 and empty.attributes["classification"].shape == (0,)
    with pytest.raises(ValueError, match="index must be a 1-D integer array"):
        cloud.select([0.5, 1.0])


def test_extra_dimension_is_packed_with_its_description(tmp_path):
    cloud = io.read(datadir.lidar_file("Megaplot.laz"))
    raw = cloud.to_record().array.copy()
    cloud.add_extra_dimension("score", np.float32, np.linspace(0, 1, len(cloud)), "pcgen: score")
    record = cloud.to_record()
    assert record.array.dtype.names[:len(raw.dtype.names)] == raw.dtype.names
    assert all(np.array_equal(record.array[f], raw[f]) for f in raw.dtype.names)
    io.write(cloud, tmp_path / "s.laz")
    back = io.read(tmp_path / "s.laz")
    np.testing.assert_array_equal(back.attributes["score"],
                                  np.linspace(0, 1, len(cloud)).astype(np.float32))
    info = back.header.point_format.dimension_by_name("score")
    assert info.description.rstrip("\0") == "pcgen: score"
    with pytest.raises(ValueError, match="already exists"):
        back.add_extra_dimension("score", np.uint8, np.zeros(len(back)))


def test_deleting_attributes(tmp_path):
    cloud = io.read(_las(tmp_path))
    cloud.attributes["label"] = np.arange(len(cloud))
    del cloud.attributes["label"]
    assert "label" not in cloud.attributes
    with pytest.raises(ValueError, match="dimension of the LAS point format"):
        del cloud.attributes["intensity"]


def test_concat_packs_other_formats_into_the_first_ones(tmp_path):
    rgb = io.read(_las(tmp_path, fmt=3, name="three.las"))
    plain = io.read(_las(tmp_path, fmt=1, name="one.las"))
    joined = io.concat([rgb, plain])
    assert joined.header.point_format.id == 3 and len(joined) == len(rgb) + len(plain)
    tail = joined.select(slice(len(rgb), None))
    assert (tail.attributes["return_number"] == 2).all()
    np.testing.assert_array_equal(tail.attributes["classification"],
                                  plain.attributes["classification"])
    np.testing.assert_array_equal(tail.to_record()["X"], plain.to_record()["X"])
    assert (tail.attributes["red"] == 0).all()
    with pytest.raises(InputError, match="red"):  # format 1 has no colours to keep them in
        io.concat([plain, rgb])


def test_packing_into_the_other_format_family_converts_bit_fields(tmp_path):
    # formats 0-5 and 6-10 lay out return numbers and classes in different bits
    old = io.read(_las(tmp_path, fmt=1, name="one.las"))
    header = laspy.LasHeader(point_format=6, version="1.4")
    header.scales, header.offsets = old.header.scales, old.header.offsets
    new = io.PointCloud(header=header, points=old.to_record(header))
    assert (new.attributes["return_number"] == 2).all()
    assert (new.attributes["number_of_returns"] == 3).all()
    np.testing.assert_array_equal(new.attributes["classification"],
                                  old.attributes["classification"])
    np.testing.assert_array_equal(new.xyz, old.xyz)


@pytest.mark.parametrize("name, values, says", [
    ("intensity", [70000, 5, 6], "holds 70000, outside the 0..65535"),
    ("intensity", [-1, 5, 6], "holds -1, outside the 0..65535"),
    ("classification", [300, 2, 2], "holds 300, outside the 0..255"),
    ("return_number", [9, 1, 1], "holds 9, outside the 0..7"),
    ("classification", [2.7, 1.0, 2.0], "holds 2.7, not an integer"),
    ("intensity", [np.nan, 1.0, 2.0], "holds nan, not an integer"),
])
def test_values_a_las_dimension_would_wrap_are_refused(tmp_path, name, values, says):
    xyz = np.array([[500_000.0, 4_000_000.0, 1.0], [500_001.0, 4_000_001.0, 2.0], [500_002.0, 4_000_002.0, 3.0]])
    with pytest.raises(OutputError, match=f"x.laz: attribute '{name}' {says}"):
        io.write(io.PointCloud(xyz, {name: np.array(values)}), tmp_path / "x.laz")
    assert not list(tmp_path.iterdir())
    io.write(io.PointCloud(xyz, {name: np.array([1, 2, 3])}), tmp_path / "x.laz")
    assert io.read(tmp_path / "x.laz").attributes[name].tolist() == [1, 2, 3]


def test_a_record_field_set_out_of_range_is_refused_at_once_and_an_edit_at_write(tmp_path):
    from pcgen.errors import ConfigError

    cloud = io.read(datadir.lidar_file("MixedConifer.laz"))  # point format 1: 5-bit classes
    with pytest.raises(ConfigError, match="'intensity' holds 70000"):
        cloud.attributes["intensity"] = np.full(len(cloud), 70000)
    cloud.attributes["classification"][:3] = 40  # an in-place edit of the decoded copy
    with pytest.raises(OutputError, match="'classification' holds 40, outside the 0..31"):
        io.write(cloud, tmp_path / "x.laz")
