"""The gap frame, the hybrid baseline and the gap examples, on constructed tiles with a known ground."""

from __future__ import annotations

import numpy as np
import torch
from shapely.geometry import box

from pcgen.models.gap_head import clamp_to_gap, context_floor
from pcgen.tasks.baselines import FILL_BASELINES, CanopyFill, HybridFill, MirrorFill, SurfaceFill, canopy_top
from pcgen.tasks.context import ContextConfig, SortedCloud, build_context
from pcgen.tasks.frame import GapFrame, GroundSurface, filtered_lowest, ground_heights, ground_points, lowest_per_cell
from pcgen.tasks.gap_examples import context_subset, cut_examples, frame_example
from pcgen.tasks.generators import BASELINES, make_generator


def sloped_tile(rng, slope=0.2, canopy=12.0):
    """A 60 m tile on the plane z = 100 + slope * x: ground returns (class 2) on a 1 m grid, and
    a flat canopy layer at ``canopy`` m above ground (class 5) over the half x < 30."""
    gx, gy = np.meshgrid(np.arange(0.5, 60, 1.0), np.arange(0.5, 60, 1.0))
    ground = np.c_[gx.ravel(), gy.ravel()]
    ground = np.c_[ground, 100 + slope * ground[:, 0]]
    cxy = rng.uniform([0, 0], [30, 60], (3000, 2))
    crown = np.c_[cxy, 100 + slope * cxy[:, 0] + canopy]
    xyz = np.r_[ground, crown]
    cls = np.r_[np.full(len(ground), 2), np.full(len(crown), 5)].astype(np.uint8)
    return xyz, cls


def test_frame_round_trip_and_heights_above_ground():
    rng = np.random.default_rng(0)
    xyz, cls = sloped_tile(rng)
    frame = GapFrame.fit(xyz, (25, 25, 35, 35), cls)
    np.testing.assert_allclose(frame.center, [30, 30])
    local = frame.to_frame(xyz)
    np.testing.assert_allclose(frame.to_world(local), xyz, atol=1e-9)
    # canopy points sit 12 m above the sloped ground in the frame, ground points at 0
    assert np.abs(local[cls == 2, 2]).max() < 1e-5
    # IDW flattens a 0.2 slope a little between the 1 m ground grid's points
    np.testing.assert_allclose(local[cls == 5, 2], 12.0, atol=0.15)


def test_ground_falls_back_to_lowest_point_per_cell():
    pts = np.array([[0.5, 0.5, 3.0], [0.6, 0.4, 1.0], [2.5, 0.5, 7.0], [2.6, 0.7, 9.0]])
    np.testing.assert_array_equal(lowest_per_cell(pts, 2.0), [False, True, True, False])
    # IDW at a ground point returns its own height
    assert abs(ground_heights(pts[[1, 2]], np.array([[0.6, 0.4]]))[0] - 1.0) < 1e-5


def crowned_slope(rng, slope=0.3):
    """Unclassified returns on the plane z = 100 + slope * x (60 m square, 1 m grid) with two dense
    crowns 10 m high whose cells hold no ground return: a 12 m disc and an 8 m disc."""
    gx, gy = np.meshgrid(np.arange(0.5, 60, 1.0), np.arange(0.5, 60, 1.0))
    xy = np.c_[gx.ravel(), gy.ravel()]
    crowns = [((20.0, 30.0), 6.0), ((45.0, 15.0), 4.0)]
    under = np.zeros(len(xy), bool)
    for c, r in crowns:
        under |= np.hypot(*(xy - c).T) < r + 1.5  # the crown's shadow: no return reaches the ground
    ground = np.c_[xy[~under], 100 + slope * xy[~under, 0]]
    tops = []
    for c, r in crowns:
        a, d = rng.uniform(0, 2 * np.pi, 800), r * np.sqrt(rng.uniform(0, 1, 800))
        cxy = np.c_[c[0] + d * np.cos(a), c[1] + d * np.sin(a)]
        tops.append(np.c_[cxy, 100 + slope * cxy[:, 0] + 10 - 4 * (d / r) ** 2 + rng.uniform(-1, 0, 800)])
    return np.r_[ground, *tops], len(ground)


def test_unclassified_ground_drops_the_lowest_points_that_are_crowns():
    rng = np.random.default_rng(0)
    xyz, n_ground = crowned_slope(rng)
    low = lowest_per_cell(xyz)
    assert low[n_ground:].sum() >= 20  # under a crown the lowest return of a cell is the crown
    kept = filtered_lowest(xyz)
    assert kept[n_ground:].sum() == 0  # ... and the filter drops every one of them
    assert kept[:n_ground].sum() == low[:n_ground].sum()  # while the 0.3 slope keeps all its cells
    np.testing.assert_array_equal(ground_points(xyz), xyz[kept])  # the frame's ground without class 2
    at = np.array([[20.0, 30.0], [45.0, 15.0]])  # the crowns' centres
    truth = 100 + 0.3 * at[:, 0]
    assert np.abs(GroundSurface(xyz[kept])(at) - truth).max() < 0.05
    assert np.abs(GroundSurface(xyz[low])(at) - truth).min() > 5  # the lowest points bent into the crowns


def test_unclassified_ground_is_worked_out_once_per_context_and_handed_out_as_a_copy():
    from pcgen.tasks import frame

    xyz, _ = crowned_slope(np.random.default_rng(1))
    first = filtered_lowest(xyz)
    first[:] = False  # a caller's edit does not reach the kept result
    calls = []
    real = frame._filtered_lowest
    frame._filtered_lowest = lambda pts, cell: calls.append(1) or real(pts, cell)
    try:
        again = filtered_lowest(xyz.copy())  # equal points, another array
    finally:
        frame._filtered_lowest = real
    assert calls == [] and again.sum() > 500
    np.testing.assert_array_equal(again, frame._filtered_lowest(xyz, 2.0))


def test_unclassified_ground_keeps_a_few_points_and_a_plane_as_they_are():
    pts = np.array([[0.5, 0.5, 3.0], [0.6, 0.4, 1.0], [2.5, 0.5, 7.0], [2.6, 0.7, 9.0]])
    np.testing.assert_array_equal(filtered_lowest(pts), lowest_per_cell(pts))  # under 3 cells: nothing to open
    g = np.arange(0.5, 200, 1.0)
    plane = np.c_[np.repeat(g, 5), np.tile(np.arange(0.5, 10, 2.0), len(g)), np.zeros(5 * len(g))]
    plane[:, 2] = 0.5 * plane[:, 0]  # a 27° slope, 200 m long
    np.testing.assert_array_equal(filtered_lowest(plane), lowest_per_cell(plane))


def test_surface_power_weighs_the_nearest_returns_outside_the_triangulation():
    # collinear returns have no triangulation: IDW alone, 1 / d**power over d = 1, 2, 3
    pts = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 10.0], [2.0, 0.0, 10.0]])
    at = np.array([[-1.0, 0.0]])
    for power in (2.0, 6.0):
        w = 1.0 / np.array([1.0, 2.0, 3.0]) ** power
        want = (w * pts[:, 2]).sum() / w.sum()
        np.testing.assert_allclose(GroundSurface(pts, power=power)(at), [want], rtol=1e-12)
    assert GroundSurface(pts, power=6.0)(at)[0] < 0.2 < 2.6 < GroundSurface(pts)(at)[0]



def test_a_surface_is_built_once_for_the_same_returns():
    """K draws from one gap fit the same surfaces: equal returns get the one already built."""
    rng = np.random.default_rng(4)
    g = np.c_[rng.uniform(0, 20, (200, 2)), rng.uniform(0, 1, 200)]
    first = GroundSurface.of(g)
    assert GroundSurface.of(g.copy()) is first
    assert GroundSurface.of(g, power=3.0) is not first
    moved = g.copy()
    moved[0, 2] += 5.0
    other = GroundSurface.of(moved)
    assert other is not first
    xy = rng.uniform(2, 18, (50, 2))
    np.testing.assert_array_equal(first(xy), GroundSurface(g)(xy))
    np.testing.assert_array_equal(other(xy), GroundSurface(moved)(xy))
    # the one changed return lifts the surface next to it, and only there
    near = np.abs(other(g[:1, :2]) - first(g[:1, :2]))
    assert np.isclose(near, 5.0).all()

def test_surface_fill_samples_the_ground_and_the_canopy_top():
    rng = np.random.default_rng(4)
    xyz, cls = sloped_tile(rng)
    ctx = build_context(xyz, box(20, 20, 28, 40), ContextConfig(), attributes={"classification": cls})
    pts = SurfaceFill().generate(ctx, 2000, np.random.default_rng(5))
    assert pts.shape == (2000, 3)
    assert (pts[:, :2] >= [20, 20]).all() and (pts[:, :2] <= [28, 40]).all()
    above = pts[:, 2] - (100 + 0.2 * pts[:, 0])
    on_ground, on_top = np.abs(above) < 1e-6, np.abs(above - 12.0) < 1e-6
    # linear over the triangulations: exact on both planes (IDW alone is off by centimetres)
    assert (on_ground | on_top).all()
    # split about in the ground share of the returns (those near the gap, so not exactly ctx's)
    share = (np.asarray(ctx.attributes["classification"]) == 2).mean()
    assert abs(on_ground.mean() - share) < 0.1


def test_hybrid_rebases_the_mirror_copy_onto_the_gaps_ground():
    rng = np.random.default_rng(1)
    xyz, cls = sloped_tile(rng, slope=0.3, canopy=10.0)
    gap = box(40, 25, 50, 35)  # ground only around it, on a 0.3 slope
    inside = (xyz[:, 0] >= 40) & (xyz[:, 0] <= 50) & (xyz[:, 1] >= 25) & (xyz[:, 1] <= 35)
    ctx = build_context(xyz[~inside], gap, ContextConfig(min_half_size=15), attributes={"classification": cls[~inside]})
    true_z = lambda p: 100 + 0.3 * p[:, 0]  # noqa: E731
    mirror = MirrorFill().generate(ctx, 400, np.random.default_rng(2))
    hybrid = HybridFill().generate(ctx, 400, np.random.default_rng(2))
    np.testing.assert_array_equal(mirror[:, :2], hybrid[:, :2])  # same copy, same places
    # a reflected strip of ground lands up to 10 m from where it was: the mirror is off by up to 3 m
    assert np.abs(mirror[:, 2] - true_z(mirror)).mean() > 1.0
    assert np.abs(hybrid[:, 2] - true_z(hybrid)).max() < 0.25
    assert np.abs(hybrid[:, 2] - true_z(hybrid)).mean() < 0.05


def test_mirror_copy_takes_each_spot_mostly_from_its_nearest_side():
    # a flat 1 m grid whose points are tagged by which side of the 10 m gap they lie beside
    gx, gy = np.meshgrid(np.arange(0.25, 60, 0.5), np.arange(0.25, 60, 0.5))
    xyz = np.c_[gx.ravel(), gy.ravel(), np.full(gx.size, 100.0)]
    gap = box(25, 25, 35, 35)
    inside = (xyz[:, 0] >= 25) & (xyz[:, 0] <= 35) & (xyz[:, 1] >= 25) & (xyz[:, 1] <= 35)
    ctx = build_context(xyz[~inside], gap, ContextConfig(min_half_size=15))
    pts, src = MirrorFill().generate_with_source(ctx, 400, np.random.default_rng(0))
    was = ctx.xyz[src]
    west, east = was[:, 0] < 25, was[:, 0] > 35
    south, north = was[:, 1] < 25, was[:, 1] > 35
    assert (west | east | south | north).all()
    # within 1 m of the west side (and over 2 m from the others) nearly every copy comes from the west strip;
    # a uniform draw of the four strips gave a quarter
    edge = (pts[:, 0] < 26) & (np.abs(pts[:, 1] - 30) < 3)
    assert edge.sum() > 10 and west[edge].mean() > 0.7
    # in the middle every side counts about alike
    mid = (np.abs(pts[:, 0] - 30) < 2) & (np.abs(pts[:, 1] - 30) < 2)
    assert mid.sum() > 40
    for side in (west, east, south, north):
        assert 0.1 < side[mid].mean() < 0.4
    # the density stays even: the same count in each quarter of the gap, up to the draw's noise
    counts = np.histogram2d(pts[:, 0], pts[:, 1], bins=2, range=[[25, 35], [25, 35]])[0]
    assert counts.min() > 80 and counts.max() < 120
    # a gap with no strip on one side (the tile's edge) keeps its density there too
    cut = xyz[:, 0] < 35 - 1e-9
    ctx = build_context(xyz[~inside & cut], box(25, 25, 35, 35), ContextConfig(min_half_size=15))
    pts, src = MirrorFill().generate_with_source(ctx, 400, np.random.default_rng(0))
    assert (ctx.xyz[src, 0] < 35).all()
    counts = np.histogram(pts[:, 0], bins=2, range=(25, 35))[0]
    assert abs(counts[0] - counts[1]) < 40


def test_canopy_copy_scales_copied_heights_to_the_canopy_where_they_land():
    # flat ground at 100 m, a closed canopy whose top rises with x (h = 5 + 0.25 x): crown tops on
    # a 1 m grid and points at half the canopy height; the gap's strips are reflected across x
    gx, gy = np.meshgrid(np.arange(0.5, 60, 1.0), np.arange(0.5, 60, 1.0))
    xy = np.c_[gx.ravel(), gy.ravel()]
    h = lambda p: 5 + 0.25 * p[:, 0]  # noqa: E731
    xyz = np.r_[np.c_[xy, np.full(len(xy), 100.0)], np.c_[xy + 0.3, 100 + h(xy + 0.3)],
                np.c_[xy + 0.6, 100 + 0.5 * h(xy + 0.6)]]
    cls = np.repeat(np.array([2, 5, 4], np.uint8), len(xy))
    gap = box(25, 25, 35, 35)
    inside = (xyz[:, 0] >= 25) & (xyz[:, 0] <= 35) & (xyz[:, 1] >= 25) & (xyz[:, 1] <= 35)
    ctx = build_context(xyz[~inside], gap, ContextConfig(min_half_size=15), attributes={"classification": cls[~inside]})
    pts, src = CanopyFill().generate_with_source(ctx, 600, np.random.default_rng(2))
    hyb, hyb_src = HybridFill().generate_with_source(ctx, 600, np.random.default_rng(2))
    np.testing.assert_array_equal(src, hyb_src)  # the same draw of the strips
    kind = np.asarray(ctx.attributes["classification"])[src]
    top, mid, ground = kind == 5, kind == 4, kind == 2
    assert top.sum() > 100 and mid.sum() > 100 and ground.sum() > 100
    # a crown top lands on the canopy top where it lands, a mid-crown point at half its height
    assert np.abs(pts[top, 2] - (100 + h(pts[top]))).max() < 0.05
    assert np.abs(pts[mid, 2] - (100 + 0.5 * h(pts[mid]))).max() < 0.05
    assert np.abs(pts[ground, 2] - 100).max() < 1e-6
    # the hybrid copy keeps the height of the canopy it came from, up to 2.5 m off here (less
    # on average, since most spots copy from the side nearest to them)
    assert np.abs(hyb[top, 2] - (100 + h(hyb[top]))).mean() > 0.5
    # over open ground (no canopy taller than 2 m) it is the hybrid copy
    rng = np.random.default_rng(1)
    xyz, cls = sloped_tile(rng, slope=0.3, canopy=10.0)
    gap = box(40, 25, 50, 35)
    inside = (xyz[:, 0] >= 40) & (xyz[:, 0] <= 50) & (xyz[:, 1] >= 25) & (xyz[:, 1] <= 35)
    ctx = build_context(xyz[~inside], gap, ContextConfig(min_half_size=15), attributes={"classification": cls[~inside]})
    np.testing.assert_allclose(CanopyFill().generate(ctx, 400, np.random.default_rng(2)),
                               HybridFill().generate(ctx, 400, np.random.default_rng(2)), atol=1e-9)


def test_canopy_copy_lays_crowns_copied_into_a_clearing_down_to_its_low_canopy():
    # a 15 m stand for x < 30, bare ground beyond: a gap just inside the clearing gets the
    # stand's edge reflected into it, and the canopy top falls from 15 m to the ground across it
    gx, gy = np.meshgrid(np.arange(0.5, 60, 1.0), np.arange(0.5, 60, 1.0))
    xy = np.c_[gx.ravel(), gy.ravel()]
    stand = xy[xy[:, 0] < 30]
    xyz = np.r_[np.c_[xy, np.full(len(xy), 100.0)], np.c_[stand + 0.3, np.full(len(stand), 115.0)]]
    cls = np.r_[np.full(len(xy), 2, np.uint8), np.full(len(stand), 5, np.uint8)]
    gap = box(30, 25, 40, 35)
    inside = (xyz[:, 0] >= 30) & (xyz[:, 0] <= 40) & (xyz[:, 1] >= 25) & (xyz[:, 1] <= 35)
    ctx = build_context(xyz[~inside], gap, ContextConfig(min_half_size=15), attributes={"classification": cls[~inside]})
    pts, src = CanopyFill().generate_with_source(ctx, 800, np.random.default_rng(2))
    crown = np.asarray(ctx.attributes["classification"])[src] == 5
    canopy = canopy_top(ctx.xyz)(pts[:, :2]) - 100  # the canopy height where each point lands
    assert crown.sum() > 100 and (crown & (canopy < 2)).sum() > 10  # some land where it is open
    # a copied crown point stands at its share of the canopy where it lands (at most 1.3 times
    # it); a rule that only scaled under a tall canopy left those in the open at the stand's 15 m
    assert np.all(pts[crown, 2] - 100 <= 1.3 * np.maximum(canopy[crown], 0) + 1e-6)
    assert pts[crown & (canopy < 2), 2].max() - 100 < 2.6


def test_every_fill_baseline_has_one_name_everywhere():
    assert BASELINES == tuple(FILL_BASELINES)  # fill --baseline, eval-fill and demo take these
    assert all(type(make_generator((name,))) is FILL_BASELINES[name] for name in BASELINES)


def test_frame_example_budget_and_envelope():
    rng = np.random.default_rng(3)
    xyz, cls = sloped_tile(rng)
    gap = box(20, 20, 30, 30)
    inside = (xyz[:, 0] >= 20) & (xyz[:, 0] <= 30) & (xyz[:, 1] >= 20) & (xyz[:, 1] <= 30)
    ctx = build_context(xyz[~inside], gap, ContextConfig(min_half_size=15), attributes={"classification": cls[~inside]})
    # the 40 m window minus the gap holds 1500 ground points and ~1500 crown points (the canopy
    # covers x < 30 at 1.67 /m²) on 1500 m²: 2 points /m², 200 points for the 100 m² gap
    ex = frame_example(ctx, ctx.n_target, rng, truth_xyz=xyz[inside])
    assert len(ex.source) == ctx.n_target
    assert abs(ctx.n_target - 200) <= 10
    np.testing.assert_allclose(ex.half, [5, 5])
    assert abs(ex.z_max - 12.0) < 0.15
    # every truth point is ground (0 m) or canopy (12 m) in the frame
    z = ex.truth[:, 2]
    assert np.all((np.abs(z) < 0.15) | (np.abs(z - 12) < 0.15))
    # sampled points are kept inside the gap's box and under the envelope + 1 m
    x = torch.tensor([[[9.0, -7.0, 30.0], [1.0, 2.0, -5.0]]])
    out = clamp_to_gap(x, torch.tensor([[5.0, 5.0]]), torch.tensor([12.0]))
    np.testing.assert_allclose(out[0].numpy(), [[5, -5, 13], [1, 2, -1]])
    # and over the context's lowest point, where it is above -1 m
    out = clamp_to_gap(x, torch.tensor([[5.0, 5.0]]), torch.tensor([12.0]), z_min=torch.tensor([-0.2]))
    np.testing.assert_allclose(out[0].numpy(), [[5, -5, 13], [1, 2, -0.2]], atol=1e-6)
    batch = {"context": torch.tensor([[[0.0, 0.0, 3.0], [1.0, 1.0, -0.2], [0.0, 0.0, -9.0]]]),
             "context_lengths": torch.tensor([2])}  # the third row is padding
    np.testing.assert_allclose(context_floor(batch).numpy(), [-0.2], atol=1e-6)


def test_cut_examples_have_truth_inside_the_gap():
    rng = np.random.default_rng(4)
    xyz, cls = sloped_tile(rng)
    exs = cut_examples(SortedCloud(xyz, cls), 5, (5, 10), np.random.default_rng(5),
                       context=ContextConfig(min_half_size=12))
    assert len(exs) == 5
    for ex in exs:
        assert np.all(np.abs(ex.truth[:, :2]) <= ex.half + 1e-4)
        assert np.all(np.abs(ex.source[:, :2]) <= ex.half + 1e-4)
        assert 5 / 2 <= ex.half[0] <= 10 / 2


def test_context_subset_takes_the_points_near_the_gap_first():
    rng = np.random.default_rng(0)
    ctx = np.c_[rng.uniform(-40, 40, (4000, 2)), rng.uniform(0, 20, 4000)]
    half = np.array([10.0, 10.0])
    near = np.hypot(*np.maximum(np.abs(ctx[:, :2]) - half, 0).T) <= 10.0
    keep = context_subset(ctx, half, 1500, 1.0, np.random.default_rng(1))
    assert len(keep) == 1500 and len(np.unique(keep)) == 1500
    assert set(np.flatnonzero(near)) <= set(keep.tolist())  # every near point (about 1000) is kept
    # band 0: the uniform draw the first checkpoints were trained with, bit for bit
    np.testing.assert_array_equal(context_subset(ctx, half, 1500, 0.0, np.random.default_rng(1)),
                                  np.random.default_rng(1).choice(4000, 1500, replace=False))
    # more near points than the budget: a subset of the near ones only
    few = context_subset(ctx, half, 300, 1.0, np.random.default_rng(2))
    assert near[few].all() and len(np.unique(few)) == 300
    assert len(context_subset(ctx[:100], half, 1500, 1.0, rng)) == 100
