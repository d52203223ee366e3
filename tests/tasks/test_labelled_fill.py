"""Generated points carry the attributes (class, returns) of a real point: by default the original
their neighbours pick (pcgen.tasks.donors), with ``output.attributes=source`` the one they were
copied from."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

import pcgen.io as pio
from pcgen.tasks.baselines import HybridFill, MirrorFill
from pcgen.tasks.context import build_context, draw_in_gap
from pcgen.tasks.fill import FillConfig, OutputConfig, fill_cloud, mask_gaps


@pytest.fixture()
def tagged_tile(holed_tile):
    """The holed Topography crop, each point tagged with its own index in ``intensity``."""
    path, hole, _ = holed_tile
    cloud = pio.read(path)
    cloud.attributes["intensity"] = np.arange(len(cloud), dtype=np.uint16)
    return cloud, hole


def test_mirror_points_say_which_point_they_reflect(tagged_tile):
    cloud, hole = tagged_tile
    square = box(*hole.bounds)
    ctx = build_context(cloud.xyz, square, FillConfig().context, attributes=dict(cloud.attributes))
    pts, src = draw_in_gap(MirrorFill(), ctx, np.random.default_rng(0))
    assert len(pts) == ctx.n_target and src.shape == (len(pts),)
    orig = ctx.xyz[src]
    np.testing.assert_array_equal(pts[:, 2], orig[:, 2])  # a reflection keeps the height
    xmin, ymin, xmax, ymax = square.bounds
    # each point is its source reflected across one side of the box: one coordinate equal, the
    # other at the same distance from that side
    same_y = np.isclose(pts[:, 1], orig[:, 1])
    across_x = np.isclose(np.minimum(np.abs(pts[:, 0] + orig[:, 0] - 2 * xmin),
                                     np.abs(pts[:, 0] + orig[:, 0] - 2 * xmax)), 0, atol=1e-6)
    across_y = np.isclose(np.minimum(np.abs(pts[:, 1] + orig[:, 1] - 2 * ymin),
                                     np.abs(pts[:, 1] + orig[:, 1] - 2 * ymax)), 0, atol=1e-6)
    assert np.all((same_y & across_x) | (np.isclose(pts[:, 0], orig[:, 0]) & across_y))


def test_filled_points_take_the_attributes_of_their_source(tagged_tile):
    cloud, hole = tagged_tile
    result = fill_cloud(cloud, mask_gaps(cloud, [box(*hole.bounds)]), MirrorFill(),
                        FillConfig(seed=3, output=OutputConfig(attributes="source")))
    n = result.n_original
    new = result.cloud.select(np.arange(n, len(result.cloud)))
    tag = np.asarray(new.attributes["intensity"]).astype(np.int64)
    # the tag names the copied point: same height, same class (not the nearest point's)
    np.testing.assert_allclose(new.xyz[:, 2], cloud.xyz[tag, 2], atol=0.011)
    np.testing.assert_array_equal(new.attributes["classification"], cloud.attributes["classification"][tag])
    nearest = cloud.select(np.arange(n))
    from scipy.spatial import cKDTree
    _, nn = cKDTree(nearest.xyz).query(new.xyz)
    assert np.mean(nn != tag) > 0.5  # provenance, not nearest-neighbour imputation


def test_neighbours_lend_attributes_that_match_the_truth_more_often(tagged_tile, topo):
    """The hole's true points are known (the uncut Topography crop). Each new point's class is
    compared with the class of the true point nearest to it. The hybrid copy's points carry the
    class of the point they were copied from on 86% of them (365 true points). The default donors,
    read off the originals around where each point lands, agree on 88%. The intensity tag shows every new
    point takes its attributes from a single original."""
    from scipy.spatial import cKDTree

    cloud, hole = tagged_tile
    xy = topo.xyz[:, :2]
    xmin, ymin, xmax, ymax = hole.bounds
    inside = (xy[:, 0] >= xmin) & (xy[:, 0] <= xmax) & (xy[:, 1] >= ymin) & (xy[:, 1] <= ymax)
    inside &= ~np.isin(np.round(topo.xyz[:, 0], 2) + 1j * np.round(topo.xyz[:, 1], 2),
                       np.round(cloud.xyz[:, 0], 2) + 1j * np.round(cloud.xyz[:, 1], 2))
    truth, truth_cls = topo.xyz[inside], np.asarray(topo.attributes["classification"])[inside]
    share = {}
    for mode in ("source", "neighbours"):
        result = fill_cloud(cloud, mask_gaps(cloud, [box(*hole.bounds)]), HybridFill(),
                            FillConfig(seed=3, output=OutputConfig(attributes=mode)))
        new = result.cloud.select(np.arange(result.n_original, len(result.cloud)))
        cls = np.asarray(new.attributes["classification"])
        tag = np.asarray(new.attributes["intensity"]).astype(np.int64)
        np.testing.assert_array_equal(cls, np.asarray(cloud.attributes["classification"])[tag])
        share[mode] = float(np.mean(cls == truth_cls[cKDTree(truth).query(new.xyz)[1]]))
    assert round(share["source"], 2) == 0.86 and round(share["neighbours"], 2) == 0.88


def test_hybrid_ground_copies_stay_on_the_ground(holed_tile, topo):
    path, hole, _ = holed_tile
    cloud = pio.read(path)
    square = box(*hole.bounds)
    ctx = build_context(cloud.xyz, square, FillConfig().context, attributes=dict(cloud.attributes))
    pts, src = draw_in_gap(HybridFill(), ctx, np.random.default_rng(1))
    ground = ctx.attributes["classification"][src] == 2
    assert ground.sum() > 10 and (~ground).sum() > 10
    # copies of ground returns land on the true ground of the hole (the original file's class 2
    # returns there); copies of the rest stand above it
    from scipy.spatial import cKDTree
    xmin, ymin, xmax, ymax = square.bounds
    t = topo.xyz
    inside = (t[:, 0] >= xmin) & (t[:, 0] <= xmax) & (t[:, 1] >= ymin) & (t[:, 1] <= ymax)
    truth = t[inside & (topo.attributes["classification"] == 2)]
    _, j = cKDTree(truth[:, :2]).query(pts[:, :2])
    above = pts[:, 2] - truth[j, 2]
    assert np.median(np.abs(above[ground])) < 0.5
    assert np.median(above[~ground]) > 2.0


def test_no_return_under_a_roof():
    from pcgen.tasks.context import under_roofs

    pts = np.array([[0.0, 0.0, 5.0],    # roof
                    [0.5, 0.0, 0.0],    # ground 0.5 m beside it, 5 m below: hidden
                    [3.0, 0.0, 0.0],    # ground 3 m away: seen
                    [0.2, 0.0, 4.5],    # a branch 0.5 m below the roof line: within the clearance
                    [0.0, 0.9, 3.9]])   # 1.1 m below, 0.9 m away: hidden
    cls = np.array([6, 2, 2, 5, 5])
    np.testing.assert_array_equal(under_roofs(pts, cls), [False, True, False, False, True])
    assert not under_roofs(pts, np.full(5, 2)).any()  # no building, nothing hidden


def test_copied_roofs_do_not_stand_over_copied_ground():
    """Mirror copies superimpose the strips of all four sides; a roof must not land on ground."""
    from pcgen.datadir import lidar_file
    from pcgen.tasks.context import under_roofs

    cloud = pio.read(lidar_file("las_with_several_extra_byte_bloc.laz"))
    cls = np.asarray(cloud.attributes["classification"])
    roof = cloud.xyz[cls == 6]
    assert len(roof) > 100
    c = np.median(roof[:, :2], axis=0)
    square = box(c[0] + 1, c[1] - 6, c[0] + 13, c[1] + 6)  # east of the building, its roof reflects in
    ctx = build_context(cloud.xyz, square, FillConfig().context, attributes={"classification": cls})
    raw, raw_src = HybridFill().generate_with_source(ctx, 4 * ctx.n_target, np.random.default_rng(0))
    assert under_roofs(raw, ctx.attributes["classification"][raw_src]).any()  # the raw copy hides ground
    pts, src = draw_in_gap(HybridFill(), ctx, np.random.default_rng(0))
    made = ctx.attributes["classification"][src]
    assert (made == 6).sum() > 10 and (made == 2).sum() > 10
    assert not under_roofs(pts, made).any()


def test_donors_vote_by_height_above_the_ground_and_lend_the_nearest_of_the_winning_class():
    from pcgen.tasks.donors import attribute_donors

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 20, (400, 2))
    slope = lambda p: 0.3 * p[:, 0]  # a 30% slope: heights are read above it, not as z
    ground = np.c_[xy[:200], slope(xy[:200])]
    crowns = np.c_[xy[200:], slope(xy[200:]) + 10.0]
    xyz = np.r_[ground, crowns]
    cls = np.r_[np.full(200, 2), np.full(200, 5)]
    new_xy = np.array([[5.0, 5.0], [15.0, 12.0]])
    low = np.c_[new_xy, slope(new_xy) + 0.4]   # just over the ground: lent by a ground return
    high = np.c_[new_xy, slope(new_xy) + 8.5]  # in the crowns
    pts = np.r_[low, high]
    donors = attribute_donors(xyz, cls, slope, pts)
    np.testing.assert_array_equal(cls[donors], [2, 2, 5, 5])
    # the donor is the nearest voter of the winning class, distances across halved
    frame = lambda p: np.c_[p[:, :2] * 0.5, p[:, 2] - slope(p)]
    for p, d in zip(pts, donors):
        same = np.flatnonzero(cls == cls[d])
        assert d == same[np.argmin(np.linalg.norm(frame(xyz[same]) - frame(p[None]), axis=1))]
    # one isolated vegetation return beside the new ground-level point is outvoted by the ground
    lone = np.r_[xyz, [[5.1, 5.0, slope(np.array([[5.1]]))[0] + 0.45]]]
    lone_cls = np.r_[cls, 5]
    assert lone_cls[attribute_donors(lone, lone_cls, slope, low[:1])][0] == 2
    # without a classification the nearest original lends
    nearest = attribute_donors(xyz, None, slope, pts)
    np.testing.assert_array_equal(nearest, [np.argmin(np.linalg.norm(frame(xyz) - frame(p[None]), axis=1)) for p in pts])
    assert attribute_donors(xyz, cls, slope, np.zeros((0, 3))).shape == (0,)


def test_a_fill_config_names_a_known_donor():
    from pcgen.errors import ConfigError
    from pcgen.tasks.fill import load_fill_config

    assert load_fill_config().output.attributes == "neighbours"
    with pytest.raises(ConfigError, match="output.attributes must be one of neighbours, source, got 'nearest'"):
        fill_cloud(pio.PointCloud(np.zeros((3, 3))), [], MirrorFill(),
                   FillConfig(output=OutputConfig(attributes="nearest")))
