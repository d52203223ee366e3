"""Filling a real tile: originals bit-exact, density matched, points inside the gap, attributes imputed."""

from __future__ import annotations

import laspy
import numpy as np
import pytest
import shapely

import pcgen.io as pio
from pcgen.errors import ConfigError, InputError
from pcgen.tasks.baselines import MirrorFill, SurfaceFill
from pcgen.tasks.context import ContextConfig, build_context
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


def test_bad_config_values_are_config_errors():
    with pytest.raises(ConfigError):
        load_fill_config(overrides=["gaps.no_such_key=1"])
    with pytest.raises(ConfigError):
        fill_cloud(None, [], MirrorFill(), FillConfig(samples=0))


def test_the_medoid_draw_is_written():
    from pcgen.tasks.fill import representative

    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, (50, 3))
    shifted = [base + [dx, 0.0, 0.0] for dx in (5.0, 0.0, 1.0)]
    # summed Chamfer to the others: shift 5 -> 5 + 4, shift 0 -> 5 + 1, shift 1 -> 4 + 1 (the least)
    assert representative(shifted) == 2
    assert representative(shifted[:2]) == 0  # two draws have no medoid: the first is kept
    assert representative([shifted[0], base[:0], shifted[2]]) == 0  # an empty draw: keep the first
