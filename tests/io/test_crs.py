"""One CRS naming for every GeoJSON pcgen writes, read back in either form users' files hold."""

from __future__ import annotations

import laspy
import pytest
from pyproj import CRS

from pcgen import datadir
from pcgen.errors import InputError
from pcgen.io import parse_crs
from pcgen.io.crs import crs_member, crs_name, read_crs_member


def _file_crs(name):
    with laspy.open(datadir.lidar_file(name)) as f:
        return parse_crs(f.header)


@pytest.mark.parametrize("name, expected", [
    ("MixedConifer.laz", "urn:ogc:def:crs:EPSG::26912"),      # GeoKeys, an EPSG code
    ("las_with_several_extra_byte_bloc.laz", "urn:ogc:def:crs:EPSG::2154"),  # WKT2 with its ID
])
def test_epsg_crs_is_named_by_urn(name, expected):
    assert crs_name(_file_crs(name)) == expected


def test_compound_crs_names_its_parts():
    assert crs_name(CRS("EPSG:6339+5703")) == "urn:ogc:def:crs,crs:EPSG::6339,crs:EPSG::5703"
    assert CRS(crs_name(CRS("EPSG:6339+5703"))).equals(CRS("EPSG:6339+5703"))


@pytest.mark.parametrize("name", ["autzen_trim.laz", "test1_4.las"])
def test_crs_without_an_epsg_id_is_named_by_wkt_that_reads_back(name):
    crs = _file_crs(name)
    text = crs_name(crs)
    assert text.startswith(("PROJCRS[", "BOUNDCRS[")) and CRS(text).equals(crs)


def test_no_crs_no_member():
    assert crs_name(None) is None and crs_member(None) is None
    assert crs_member(CRS("EPSG:2949")) == {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2949"}}
    assert crs_member("urn:ogc:def:crs:EPSG::2949") == crs_member(CRS("EPSG:2949"))


@pytest.mark.parametrize("name", ["EPSG:2949", "urn:ogc:def:crs:EPSG::2949", CRS("EPSG:2949").to_wkt()])
def test_member_read_back_in_any_form(name):
    crs = read_crs_member({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": name}}})
    assert crs.equals(CRS("EPSG:2949"))
    assert read_crs_member({"type": "FeatureCollection"}) is None


def test_unknown_crs_names_the_file():
    with pytest.raises(InputError, match="mask.geojson: unknown CRS 'EPSG:0'"):
        read_crs_member({"crs": {"type": "name", "properties": {"name": "EPSG:0"}}}, "mask.geojson")


# -- a CRS in a LAS header -------------------------------------------------------------------
def _written(tmp_path, crs, version, point_format, name="c.laz"):
    import numpy as np

    import pcgen.io as pio

    header = laspy.LasHeader(point_format=point_format, version=version)
    header.scales, header.offsets = [0.01] * 3, [500_000, 4_000_000, 0]
    cloud = pio.PointCloud(np.array([[500_001.0, 4_000_002.0, 3.0]]), header=header, crs=crs)
    pio.write(cloud, tmp_path / name)
    return laspy.read(tmp_path / name).header


def _geokeys(header) -> dict:
    return {k.id: k.value_offset for k in header.vlrs.get("GeoKeyDirectoryVlr")[0].geo_keys}


def test_a_compound_crs_in_las_1_4_keeps_both_parts(tmp_path):
    header = _written(tmp_path, CRS("EPSG:26912+5703"), "1.4", 1)
    assert parse_crs(header) == CRS("EPSG:26912+5703")


def test_a_compound_crs_in_las_1_2_is_stored_as_two_geokeys(tmp_path):
    header = _written(tmp_path, CRS("EPSG:26912+5703"), "1.2", 3)
    keys = _geokeys(header)
    assert keys[3072] == 26912 and keys[4096] == 5703  # projected, vertical
    assert parse_crs(header).to_epsg() == 26912


def test_a_crs_las_1_2_cannot_hold_is_an_error_naming_the_file(tmp_path):
    from pcgen.errors import OutputError

    custom = CRS("+proj=tmerc +lat_0=0 +lon_0=-111.5 +k=0.9996 +x_0=500000 +datum=NAD83 +units=m")
    with pytest.raises(OutputError, match="c.laz.*need an EPSG code"):
        _written(tmp_path, custom, "1.2", 1)
    assert not list(tmp_path.iterdir())
    assert parse_crs(_written(tmp_path, custom, "1.4", 1, "d.laz")).is_projected


def test_setting_no_crs_writes_none(tmp_path):
    import pcgen.io as pio

    cloud = pio.read(datadir.lidar_file("MixedConifer.laz"))
    assert cloud.crs is not None
    cloud.crs = None
    pio.write(cloud, tmp_path / "x.laz")
    assert pio.read(tmp_path / "x.laz").crs is None
