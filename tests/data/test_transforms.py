"""Normalization inverts to 1e-9 in real-world float64; augmentations are seeded."""

from __future__ import annotations

import numpy as np
import pytest

import pcgen.io as io
from pcgen import datadir
from pcgen.data.transforms import Augment, Normalization

from .scenes import make_scene


@pytest.mark.parametrize("mode", ["sphere", "unit_cube"])
@pytest.mark.parametrize("name", ["Megaplot.laz", "autzen_trim.laz", "mvk-thin.las"])
def test_round_trip_real_coordinates(name, mode):
    xyz = io.read(datadir.lidar_file(name)).xyz
    norm = Normalization.fit(xyz, mode)
    unit = norm.apply(xyz)
    assert np.abs(norm.invert(unit) - xyz).max() <= 1e-9
    if mode == "sphere":
        assert np.linalg.norm(unit, axis=1).max() == pytest.approx(1.0)
        np.testing.assert_allclose(unit.mean(axis=0), 0.0, atol=1e-9)
    else:
        ext = unit.max(axis=0) - unit.min(axis=0)
        assert ext.max() == pytest.approx(1.0)
        np.testing.assert_allclose(unit.max(axis=0) + unit.min(axis=0), 0.0, atol=1e-12)


def test_invert_accepts_float32_torch():
    torch = pytest.importorskip("torch")
    xyz = make_scene(1).xyz
    norm = Normalization.fit(xyz)
    back = norm.invert(torch.from_numpy(norm.apply(xyz)).float())
    assert back.dtype == np.float64
    assert np.abs(back - xyz).max() < 1e-5 * norm.scale


def test_bad_mode():
    with pytest.raises(ValueError, match="'sphere' or 'unit_cube'"):
        Normalization.fit(np.zeros((3, 3)), "ball")


def test_cube_is_the_older_name_of_unit_cube():
    xyz = np.array([[0.0, 0.0, 0.0], [4.0, 2.0, 1.0], [1.0, 1.0, 3.0]])
    old, new = Normalization.fit(xyz, "cube"), Normalization.fit(xyz, "unit_cube")
    np.testing.assert_array_equal(old.center, [2.0, 1.0, 1.5])
    assert old.scale == new.scale == 4.0
    np.testing.assert_array_equal(old.center, new.center)


def test_augment_is_seeded_and_keeps_z_axis():
    pts = np.random.default_rng(0).normal(size=(100, 3))
    aug = Augment(rotate_z=True, scale=None, jitter=0.0)
    a = aug(pts, np.random.default_rng(5))
    b = aug(pts, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[:, 2], pts[:, 2])
    np.testing.assert_allclose(np.linalg.norm(a[:, :2], axis=1), np.linalg.norm(pts[:, :2], axis=1))
    assert not np.allclose(a, pts)


def test_synthetic_scene_is_deterministic_and_classified():
    a, b = make_scene(3), make_scene(3)
    np.testing.assert_array_equal(a.xyz, b.xyz)
    assert set(np.unique(a.attributes["classification"])) == {2, 5, 6}
    assert a.crs.to_epsg() == 32617
    assert not np.array_equal(make_scene(4).xyz[:100], a.xyz[:100])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("mode", ["sphere", "unit_cube"])
def test_fit_refuses_points_that_are_not_finite(mode, bad):
    xyz = np.array([[0.0, 0.0, 0.0], [4.0, 2.0, 1.0], [1.0, bad, 3.0]])
    with pytest.raises(ValueError, match="must be finite"):  # NaN gave a NaN centre, inf a NaN scale
        Normalization.fit(xyz, mode)
