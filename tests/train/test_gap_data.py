"""The gap examples' on-the-fly augmentation: turns, mirrors and the stretch of heights."""

from __future__ import annotations

import numpy as np
import pytest

from pcgen.errors import ConfigError
from pcgen.train.gap_data import GapExamples, augment_example


def example(seed: int = 0) -> dict:
    """A gap in the frame: flat ground, crowns 4-20 m up, a 10 m gap with points inside."""
    rng = np.random.default_rng(seed)
    ground = np.c_[rng.uniform(-20, 20, (300, 2)), np.zeros(300)]
    crowns = np.c_[rng.uniform(-20, 20, (200, 2)), rng.uniform(4, 20, 200)]
    context = np.r_[ground, crowns].astype(np.float32)
    hz = context[:, 2]
    cond = np.array([0.5, 0.3, np.percentile(hz, 50) / 10, np.percentile(hz, 95) / 10, hz.max() / 10, 0.6],
                    np.float32)
    truth = np.c_[rng.uniform(-5, 5, (80, 2)), rng.uniform(0, 18, 80)].astype(np.float32)
    source = np.c_[rng.uniform(-5, 5, (60, 2)), rng.uniform(0, 18, 60)].astype(np.float32)
    return {"context": context, "context_ground": (hz == 0).astype(np.float32), "source": source,
            "truth": truth, "cond": cond, "half": np.array([5.0, 5.0], np.float32), "z_max": float(hz.max())}


def test_stretch_scales_every_height_by_one_factor_and_nothing_else():
    ex = example()
    plain = augment_example(ex, np.random.default_rng(7), 4096, 512, 0.0, (1.0, 1.0))
    tall = augment_example(ex, np.random.default_rng(7), 4096, 512, 0.0, (0.5, 2.0))
    factor = tall["z_max"] / plain["z_max"]
    assert 0.5 <= factor <= 2.0 and abs(factor - 1.0) > 1e-3
    for key in ("context", "source", "truth"):
        np.testing.assert_array_equal(tall[key][:, :2], plain[key][:, :2])  # the same turn and mirror
        np.testing.assert_allclose(tall[key][:, 2], plain[key][:, 2] * factor, rtol=1e-5)
    np.testing.assert_allclose(tall["cond"][2:5], ex["cond"][2:5] * factor, rtol=1e-5)
    np.testing.assert_array_equal(tall["cond"][[0, 1, 5]], ex["cond"][[0, 1, 5]])
    # the descriptors still describe the stretched context, as frame_example would compute them
    hz = tall["context"][:, 2]
    np.testing.assert_allclose(tall["cond"][2:5], [np.percentile(hz, 50) / 10, np.percentile(hz, 95) / 10,
                                                   hz.max() / 10], rtol=1e-5)
    np.testing.assert_array_equal(tall["context_ground"], ex["context_ground"])
    # the cached example is left as it was
    np.testing.assert_array_equal(ex["context"], example()["context"])
    np.testing.assert_array_equal(ex["cond"], example()["cond"])


def test_without_a_range_heights_are_untouched():
    ex = example(1)
    out = augment_example(ex, np.random.default_rng(3), 4096, 512)
    np.testing.assert_array_equal(np.sort(out["truth"][:, 2]), np.sort(ex["truth"][:, 2]))
    assert out["z_max"] == ex["z_max"] and np.array_equal(out["cond"], ex["cond"])


def test_the_factors_spread_over_the_range_log_uniformly():
    ds = GapExamples([example()], seed=2, max_context=4096, height_scale=(0.5, 2.0))
    factors = np.array([ds[0]["z_max"] / example()["z_max"] for _ in range(400)])
    assert factors.min() >= 0.5 and factors.max() <= 2.0
    # log-uniform on [1/2, 2]: half the factors below 1, a quarter below 1/sqrt(2)
    assert abs((factors < 1.0).mean() - 0.5) < 0.08
    assert abs((factors < 2 ** -0.5).mean() - 0.25) < 0.07


@pytest.mark.parametrize("bad", [(0.0, 1.0), (-1.0, 2.0), (1.5, 1.2), (float("nan"), 1.0), (1.0, float("inf")),
                                 (1.0,), 1.2, "tall"])
def test_a_bad_range_is_refused(bad):
    with pytest.raises(ConfigError, match="data.height_scale"):
        GapExamples([example()], height_scale=bad)
