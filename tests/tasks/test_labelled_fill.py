"""Generated points carry the attributes (class, returns) of the real point they were copied from."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

import pcgen.io as pio
from pcgen.tasks.baselines import HybridFill, MirrorFill
from pcgen.tasks.context import build_context, draw_in_gap
from pcgen.tasks.fill import FillConfig, fill_cloud, mask_gaps


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
    result = fill_cloud(cloud, mask_gaps(cloud, [box(*hole.bounds)]), MirrorFill(), FillConfig(seed=3))
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
