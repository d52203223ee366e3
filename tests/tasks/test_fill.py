"""Filling a real tile: originals bit-exact, density matched, points inside the gap, attributes imputed."""

from __future__ import annotations

import laspy
import numpy as np
import pytest
import shapely
import torch
from shapely.geometry import Point, Polygon

import pcgen.io as pio
from pcgen.errors import ConfigError, InputError
from pcgen.tasks.baselines import MirrorFill, SurfaceFill
from pcgen.tasks.context import ContextConfig, SortedCloud, build_context
from pcgen.tasks.fill import FillConfig, fill_cloud, load_fill_config, mask_gaps


@pytest.mark.parametrize("generator", [MirrorFill(), SurfaceFill()], ids=lambda g: g.name)
def test_fill_keeps_originals_and_matches_density(holed_tile, tmp_path, generator):
    path, hole, removed = holed_tile
    cloud = pio.read(path)
    cfg = FillConfig(samples=3)
    result = fill_cloud(cloud, mask_gaps(cloud, [hole]), generator, cfg)
    out = tmp_path / "filled.laz"
    pio.write(result.cloud, out)

    src, dst = laspy.read(path), laspy.read(out)
    n = len(src.points)
    assert result.n_original == n
    for name in src.points.array.dtype.names:  # every original field, byte for byte
        assert np.array_equal(src.points.array[name], dst.points.array[name][:n]), name
    assert dst.header.parse_crs().to_epsg() == 2949
    assert {v.record_id for v in src.header.vlrs} <= {v.record_id for v in dst.header.vlrs}

    new = np.c_[dst.x, dst.y, dst.z][n:]
    gen = np.asarray(dst["generated"])
    assert gen[:n].sum() == 0 and (gen[n:] == 1).all()
    assert (np.asarray(dst.synthetic)[n:] == 1).all()
    assert shapely.contains_xy(hole.buffer(0.01), new[:, 0], new[:, 1]).all()
    # density in the gap matches the surroundings: the removed count within 35 %
    assert 0.65 * len(removed) < len(new) < 1.35 * len(removed)
    # heights stay in the range of the removed points (terrain + canopy), give or take 5 m
    assert removed[:, 2].min() - 5 < new[:, 2].min() and new[:, 2].max() < removed[:, 2].max() + 5
    # imputed attributes come from real neighbours
    assert set(np.unique(dst.intensity[n:])) <= set(np.unique(src.intensity))
    unc = np.asarray(dst["uncertainty"])
    # mirror draws reuse a finite pool, so a point can recur in every draw (spread 0)
    assert (unc[:n] == 0).all() and (unc[n:] > 0).mean() > 0.5 and unc[n:].max() < 20


def test_points_without_a_las_header_get_the_synthetic_bit(holed_tile, tmp_path):
    """A PLY/XYZ cloud has no synthetic attribute; its fill written as LAS had the bit unset."""
    path, hole, _ = holed_tile
    cloud = pio.PointCloud(pio.read(path).xyz)
    result = fill_cloud(cloud, mask_gaps(cloud, [hole]), MirrorFill(), FillConfig())
    pio.write(result.cloud, tmp_path / "f.laz")
    out = laspy.read(tmp_path / "f.laz")
    n = result.n_original
    assert len(out.points) > n
    assert np.array_equal(np.asarray(out.synthetic), np.asarray(out["generated"]))
    assert not np.asarray(out.synthetic)[:n].any() and np.asarray(out.synthetic)[n:].all()
    no_flag = fill_cloud(cloud, mask_gaps(cloud, [hole]), MirrorFill(),
                         load_fill_config(overrides=["output.set_synthetic_flag=false", "samples=1"]))
    assert "synthetic" not in no_flag.cloud.attributes


def test_class_code_and_single_sample(holed_tile):
    path, hole, _ = holed_tile
    cloud = pio.read(path)
    cfg = load_fill_config(overrides=["output.class_code=18", "samples=1"])
    result = fill_cloud(cloud, mask_gaps(cloud, [hole]), MirrorFill(), cfg)
    cls = result.cloud.attributes["classification"]
    assert (cls[result.n_original:] == 18).all()
    assert not (cls[:result.n_original] == 18).any()
    assert "uncertainty" not in result.cloud.attributes


def test_no_points_around_the_gap_is_an_error(holed_tile):
    path, hole, _ = holed_tile
    cloud = pio.read(path)
    c = np.asarray(hole.centroid.coords[0])
    far = np.hypot(*(cloud.xyz[:, :2] - c).T) > 60.0  # beyond the 80 m window
    with pytest.raises(InputError, match="points around it"):
        build_context(cloud.xyz[far], hole, ContextConfig())


def test_a_sorted_cloud_gives_every_gap_the_context_a_full_scan_gives():
    # a 1 m grid, shuffled; the first hole's 40 m window has its edges on grid lines
    gx, gy = np.meshgrid(np.arange(0.0, 101.0), np.arange(0.0, 101.0))
    xyz = np.c_[gx.ravel(), gy.ravel(), np.zeros(gx.size)][np.random.default_rng(0).permutation(gx.size)]
    cloud = SortedCloud(xyz, None)
    cfg = ContextConfig(max_points=100_000)
    contexts = []
    for x0, y0, side in [(28.0, 38.0, 4.0), (0.0, 0.0, 5.0), (77.5, 12.25, 5.0)]:
        hole = Polygon([(x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)])
        full = build_context(xyz, hole, cfg)
        fast = build_context(xyz, hole, cfg, cloud=cloud)
        assert np.array_equal(fast.index, full.index) and fast.n_target == full.n_target
        contexts.append(fast)
    # window [10, 50] x [20, 60]: 41 x 41 grid points, less the 3 x 3 strictly inside the hole
    first = contexts[0]
    assert first.window.bounds == (10.0, 20.0, 50.0, 60.0)
    assert len(first.index) == 41 * 41 - 9
    assert np.isin(xyz[first.index, 0], (10.0, 50.0)).sum() == 2 * 41  # both edges kept


def test_bad_config_values_are_config_errors():
    with pytest.raises(ConfigError):
        load_fill_config(overrides=["gaps.no_such_key=1"])
    with pytest.raises(ConfigError):
        fill_cloud(None, [], MirrorFill(), FillConfig(samples=0))


def test_a_config_changed_in_python_is_checked_like_the_command_line(holed_tile):
    path, hole, _ = holed_tile
    cloud = pio.read(path)
    cfg = FillConfig()
    cfg.output.class_code = 300  # was numpy's OverflowError for uint8 mid-fill
    with pytest.raises(ConfigError, match="output.class_code must be 0..255, got 300"):
        fill_cloud(cloud, mask_gaps(cloud, [hole]), MirrorFill(), cfg)
    cfg = FillConfig()
    cfg.gaps.density_ratio = -1.0
    with pytest.raises(ConfigError, match="gaps.density_ratio"):
        fill_cloud(cloud, mask_gaps(cloud, [hole]), MirrorFill(), cfg)


def test_the_medoid_draw_is_written():
    from pcgen.tasks.fill import representative

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, (50, 3))
    shifted = [base + [dx, 0.0, 0.0] for dx in (5.0, 0.0, 1.0)]
    # summed Chamfer to the others: shift 5 -> 5 + 4, shift 0 -> 5 + 1, shift 1 -> 4 + 1 (the least)
    assert representative(shifted) == 2
    assert representative(shifted[:2]) == 0  # two draws have no medoid: the first is kept
    assert representative([shifted[0], base[:0], shifted[2]]) == 0  # an empty draw: keep the first


def test_consensus_moves_each_point_to_the_mean_of_the_draws_nearest_it():
    from pcgen.tasks.fill import consensus

    grid = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0), [0.0]), -1).reshape(-1, 3) * 4.0
    up = np.array([0.0, 0.0, 0.3])
    # draw 0 at the grid, three draws 0.3 m above it: every point's share is itself and its three twins
    moved = consensus([grid, grid + up, grid + up, grid + up], first=0, rounds=1)
    np.testing.assert_allclose(moved, grid + [0.0, 0.0, 0.225])
    # the draws disagree symmetrically: the mean is draw 0 itself, and more rounds keep it there
    np.testing.assert_allclose(consensus([grid, grid + up, grid - up], first=0), grid)
    assert consensus([grid], first=0) is not grid  # one draw: a copy, written as it is


def test_consensus_of_noisy_draws_lies_closer_to_the_truth_than_any_one_draw():
    from pcgen.ops import chamfer
    from pcgen.tasks.fill import combine_draws

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 10, (400, 2))
    truth = np.c_[xy, np.sin(xy[:, 0])]  # a wavy ground
    draws = [truth[rng.permutation(400)[:200]] + rng.normal(0, 0.3, (200, 3)) for _ in range(4)]

    def cd(p):
        return float(chamfer(torch.as_tensor(p[None], dtype=torch.float32),
                             torch.as_tensor(truth[None], dtype=torch.float32), squared=False).loss) / 2

    medoid, k = combine_draws(draws, "medoid")
    mean, k2 = combine_draws(draws, "consensus")
    assert k == k2 and medoid is draws[k] and len(mean) == 200
    assert cd(mean) < 0.92 * cd(medoid)  # 0.336 against 0.372 m
    assert all(cd(mean) < cd(d) for d in draws)


def test_consensus_keeps_a_point_whose_mean_would_leave_the_gap():
    from pcgen.tasks.fill import combine_draws

    ell = Polygon([(0, 0), (10, 0), (10, 1), (1, 1), (1, 10), (0, 10)])  # an L: its inner corner is outside
    corner = np.array([[0.9, 0.9, 0.0]])  # inside the L, near its inner corner
    arms = [np.array([[5.0, 0.9, 0.0]]), np.array([[0.9, 5.0, 0.0]])]  # the two arms' draws
    pts, k = combine_draws([corner, *arms], "consensus", inside=ell)
    assert k == 0  # the corner is the medoid (4.1 m from each arm, the arms 5.8 m apart)
    assert not ell.contains(Point(2.27, 2.27)) and np.allclose(pts, corner)  # the mean left the L: kept
    pts, _ = combine_draws([corner, *arms], "consensus")
    np.testing.assert_allclose(pts, [[6.8 / 3, 6.8 / 3, 0.0]])  # without the polygon it would have moved


def test_an_unknown_way_to_combine_draws_is_a_config_error():
    from pcgen.tasks.config_checks import check_fill_config

    with pytest.raises(ConfigError, match="combine must be one of consensus, medoid, got 'mean'"):
        check_fill_config(load_fill_config(overrides=["combine=mean"]))


def test_gaps_spread_over_processes_fill_the_same_points(holed_tile):
    # each gap draws from its own stream (seed, gap index), so two processes write what one does
    from shapely.geometry import box

    from pcgen.tasks.generators import make_generator

    path, hole, _ = holed_tile
    cloud = pio.read(path)
    x0, y0 = cloud.xyz[:, :2].min(0)
    holes = [hole] + [box(x0 + 10 + 25 * k, y0 + 10, x0 + 18 + 25 * k, y0 + 18) for k in range(4)]
    gaps = mask_gaps(cloud, holes)
    spec = ("model", None, None)
    cfg = FillConfig(samples=2, seed=5)
    one = fill_cloud(cloud, gaps, make_generator(spec), cfg)
    two = fill_cloud(cloud, gaps, make_generator(spec), cfg, workers=2, spec=spec)
    n = one.n_original
    assert len(one.cloud) - n > 100 and len(two.cloud) == len(one.cloud)
    np.testing.assert_array_equal(two.cloud.xyz, one.cloud.xyz)
    for name in ("classification", "intensity", "uncertainty", "generated"):
        np.testing.assert_array_equal(two.cloud.attributes[name], one.cloud.attributes[name])
    assert [g.n_generated for g in two.gaps] == [g.n_generated for g in one.gaps]
    other = fill_cloud(cloud, gaps, make_generator(spec), FillConfig(samples=2, seed=6))
    assert not np.array_equal(other.cloud.xyz[n:n + 50], one.cloud.xyz[n:n + 50])


def test_a_self_crossing_gap_polygon_is_refused_before_filling(holed_tile):
    path, _, _ = holed_tile
    cloud = pio.read(path)
    x, y = cloud.xyz[:, :2].mean(0)
    bowtie = Polygon([(x, y), (x + 10, y + 10), (x + 10, y), (x, y + 10)])  # was a GEOS TopologyException mid-fill
    with pytest.raises(ConfigError, match="gap polygon 0 cannot be filled: Self-intersection"):
        mask_gaps(cloud, [bowtie])
    with pytest.raises(ConfigError, match="gap polygon 1 cannot be filled: empty or not a Polygon"):
        mask_gaps(cloud, [Point(x, y).buffer(3), Polygon()])


def test_fill_building_blocks_refuse_what_they_cannot_use():
    from pcgen.tasks.baselines import CanopyFill
    from pcgen.tasks.fill import combine_draws

    with pytest.raises(ConfigError, match=r"share_range\[1\] must be >= 2"):
        CanopyFill(share_range=(2, 1))  # every share was clipped to 1, silently
    with pytest.raises(ConfigError, match="min_canopy must be a number"):
        CanopyFill(min_canopy="2")
    with pytest.raises(ValueError, match="at least one draw"):
        combine_draws([])  # was an IndexError


def test_augmentation_and_ground_building_blocks_refuse_what_they_cannot_use():
    from pcgen.data.ground import GroundCollector
    from pcgen.tasks.baselines import JitterResample

    with pytest.raises(ConfigError, match="at least one tile"):
        JitterResample([])  # sample() failed later: "high <= 0"
    with pytest.raises(ConfigError, match=r"tile 1 has shape \(0, 3\)"):
        JitterResample([np.zeros((5, 3)), np.zeros((0, 3))])
    with pytest.raises(ConfigError, match="sigma must be >= 0"):
        JitterResample([np.zeros((5, 3))], sigma=-0.1)
    tiles = JitterResample([np.ones((5, 3))], sigma=0.0).sample(2, 7, np.random.default_rng(0))
    assert [t.shape for t in tiles] == [(7, 3), (7, 3)] and np.all(tiles[0] == 1)
    with pytest.raises(ValueError, match="no points were added"):
        GroundCollector(0).fit()  # was numpy's "need at least one array to concatenate"



def test_a_class_code_the_point_format_cannot_store_is_refused_before_filling(holed_tile):
    path, hole, _ = holed_tile
    cloud = pio.read(path)
    assert cloud.header.point_format.id < 6  # 5-bit classification: 0..31

    class Counting(MirrorFill):
        calls = 0

        def generate_with_source(self, ctx, n, rng):
            Counting.calls += 1
            return super().generate_with_source(ctx, n, rng)

    cfg = load_fill_config(overrides=["output.class_code=200", "samples=1"])
    with pytest.raises(ConfigError, match=f"output.class_code \\(--class-code\\) 200 does not fit the "
                                          f"classification of LAS point format {cloud.header.point_format.id}"):
        fill_cloud(cloud, mask_gaps(cloud, [hole]), Counting(), cfg)
    assert Counting.calls == 0  # refused before a gap was filled (it was refused at the write)
    cfg = load_fill_config(overrides=["output.class_code=31", "samples=1"])
    result = fill_cloud(cloud, mask_gaps(cloud, [hole]), MirrorFill(), cfg)
    assert (result.cloud.attributes["classification"][result.n_original:] == 31).all()
