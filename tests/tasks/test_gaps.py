"""Gap detection on real tiles: a hole we cut is found where we cut it; lakes are not gaps."""

from __future__ import annotations

import json

import numpy as np
import shapely

import pcgen.io as pio
from pcgen.tasks.gaps import GapConfig, detect_gaps, gaps_to_geojson, tile_footprint


def test_cut_hole_is_detected_where_it_was_cut(holed_tile):
    path, hole, removed = holed_tile
    cloud = pio.read(path)
    gaps = detect_gaps(cloud.xyz, cloud.attributes["classification"])
    assert gaps, "the 10 m hole was not found"
    best = max(gaps, key=lambda g: g.polygon.intersection(hole).area)
    # the detected polygon sits on the hole and covers a good part of it, not the whole tile
    assert best.polygon.centroid.distance(hole.centroid) < 4.0
    assert 0.4 * hole.area < best.polygon.intersection(hole).area
    assert best.area < 2.0 * hole.area
    # density around the hole is the tile's (about 1 point per m² in Topography.laz)
    assert 0.5 < best.density_around < 2.5


def test_whole_hole_is_found_not_just_its_rim(holed_tile):
    # the 20 m-wide hole is wider than the 7-cell neighbourhood: its middle is found by the
    # growing neighbourhood, its edge cells by the rim rule
    path, hole, _ = holed_tile
    cloud = pio.read(path)
    gaps = detect_gaps(cloud.xyz, cloud.attributes["classification"])
    found = shapely.unary_union([g.polygon for g in gaps if g.polygon.intersects(hole)])
    assert found.intersection(hole).area > 0.85 * hole.area
    # square 2.8 m cells staircase around the round hole: about half a cell beyond its 63 m rim
    assert found.difference(hole).area < 0.4 * hole.area


def test_outline_traced_between_points_hugs_the_hole(holed_tile):
    # cells alone overshoot the round hole's rim by a staircase of 2.9 m cells; tracing the
    # point-free discs keeps the whole hole and about a third of that overshoot
    path, hole, _ = holed_tile
    cloud = pio.read(path)

    def found(radius):
        gaps = detect_gaps(cloud.xyz, cloud.attributes["classification"], GapConfig(outline_radius_cells=radius))
        return shapely.unary_union([g.polygon for g in gaps if g.polygon.intersects(hole)])

    traced, cells = found(0.5), found(0.0)
    assert traced.intersection(hole).area > 0.97 * hole.area
    assert traced.difference(hole).area < 0.2 * hole.area
    assert cells.difference(hole).area > 0.25 * hole.area
    assert traced.geom_type == "Polygon"


def test_water_is_not_a_gap(topo):
    cls = topo.attributes["classification"]
    water = topo.xyz[cls == 9, :2]
    with_water = detect_gaps(topo.xyz, cls, GapConfig(exclude_classes=[]))
    without = detect_gaps(topo.xyz, cls, GapConfig(exclude_classes=[9]))
    def touching_water(gaps):
        return sum(bool(shapely.contains_xy(g.polygon, water[:, 0], water[:, 1]).any()) for g in gaps)
    assert touching_water(with_water) > 0      # lakes look like holes when water is not excluded
    assert touching_water(without) == 0
    assert len(without) < len(with_water)


def test_intact_tile_has_few_small_gaps(topo):
    gaps = detect_gaps(topo.xyz, topo.attributes["classification"])
    footprint = tile_footprint(topo.xyz[:, :2])
    assert sum(g.area for g in gaps) < 0.01 * footprint.area


def test_geojson_report_names_the_crs(holed_tile):
    cloud = pio.read(holed_tile[0])
    gaps = detect_gaps(cloud.xyz, cloud.attributes["classification"])
    doc = json.loads(json.dumps(gaps_to_geojson(gaps, cloud.crs)))
    assert doc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::2949"
    assert len(doc["features"]) == len(gaps)
    ring = np.asarray(doc["features"][0]["geometry"]["coordinates"][0])
    assert np.allclose(ring.mean(0), cloud.xyz[:, :2].mean(0), atol=80)  # projected metres, not degrees


def test_outlines_that_overlap_become_one_gap():
    from shapely.geometry import box

    from pcgen.tasks.gaps import Gap, _merge_overlaps

    gaps = [Gap(0, box(0, 0, 10, 10), 4.0, 100), Gap(1, box(2, 2, 3, 3), 8.0, 1),  # inside the first
            Gap(2, box(9, 0, 12, 2), 2.0, 6),  # overlaps the first
            Gap(3, box(20, 0, 22, 2), 1.0, 4), Gap(4, box(22, 0, 24, 2), 1.0, 4)]  # only touch
    merged = sorted(_merge_overlaps(gaps), key=lambda g: g.polygon.bounds)
    assert [g.polygon.bounds for g in merged] == [(0, 0, 12, 10), (20, 0, 22, 2), (22, 0, 24, 2)]
    assert merged[0].area == 104 and merged[0].n_cells == 107
    assert merged[0].density_around == (4.0 * 100 + 8.0 + 2.0 * 6) / 107


def test_detected_gaps_of_a_real_survey_never_overlap():
    from pcgen import datadir
    from pcgen.tasks.fill import find_gaps, load_fill_config

    # its traced outlines overlapped: gap 12 lay inside gap 0 and was filled at twice the density
    cloud = pio.read(datadir.data_dir() / "training" / "spanner_ALS_Clip.laz")
    gaps = find_gaps(cloud, load_fill_config())
    # 17 gaps of 89.332 m² before patches a chance could empty were dropped (9 of them); two of
    # the outlines still overlap before they are merged
    assert len(gaps) == 8 and round(sum(g.area for g in gaps), 3) == 83.051
    polys = [g.polygon for g in gaps]
    assert all(polys[i].intersection(polys[j]).area == 0 for i in range(len(polys)) for j in range(i))


def test_chance_leaves_few_gaps_in_a_sparse_stand_and_a_real_hole_is_still_found():
    """Points spread at random, 5 per m² in one half (a flight-line overlap) and 2.5 in the other:
    cells sized by the mean density expect about 5 points in the sparse half, where chance
    empties a cell now and then. Its rim made such a cell a gap: 8 gaps of 71 m² on intact data."""
    from shapely.geometry import box

    rng = np.random.default_rng(0)
    xy = np.r_[rng.uniform([0, 0], [100, 50], (25_000, 2)), rng.uniform([0, 50], [100, 100], (12_500, 2))]
    xyz = np.c_[xy, np.zeros(len(xy))]
    intact = detect_gaps(xyz)
    assert len(intact) <= 2 and sum(g.area for g in intact) < 25.0  # 2 gaps of 23.9 m²
    hole = box(40, 70, 45, 75)  # a 5 m hole in the sparse half: 3.4 cells a side
    cut = detect_gaps(xyz[~shapely.contains_xy(hole, xy[:, 0], xy[:, 1])])
    found = shapely.unary_union([g.polygon for g in cut])
    assert found.intersection(hole).area / hole.area > 0.98
