"""The gap examples' on-the-fly augmentation: turns, mirrors, the stretch of heights, thinning."""

from __future__ import annotations

import re

import numpy as np
import pytest

from pcgen.errors import ConfigError
from pcgen.train.gap_data import GapDataModule, GapExamples, augment_example, thin_example


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


def test_site_weights_give_each_site_its_share():
    from pcgen.train.gap_data import site_weights

    w = site_weights([900, 100], 0.5).numpy()
    assert len(w) == 1000 and abs(w.sum() - 1.0) < 1e-12
    # balance 0.5: n^0.5, 30 against 10, so the large site gets 3/4 of the draws, not 9/10
    assert abs(w[:900].sum() - 0.75) < 1e-12 and abs(w[900:].sum() - 0.25) < 1e-12
    assert np.allclose(w[:900], w[0]) and np.allclose(w[900:], w[900])
    even = site_weights([900, 100], 1.0).numpy()
    assert abs(even[:900].sum() - 0.5) < 1e-12
    plain = site_weights([900, 100], 0.0).numpy()
    assert np.allclose(plain, 1e-3)


def test_balanced_draws_follow_the_weights_and_repeat_for_a_seed(tmp_path):
    from pcgen.train.gap_data import GapDataModule

    def loader_order(seed):
        dm = GapDataModule(["a", "b"], batch_size=1, seed=seed, site_balance=1.0)
        dm.train_set = GapExamples([example(i) for i in range(40)], seed=seed, max_context=4096)
        dm.site_sizes = [36, 4]
        return list(iter(dm.train_dataloader().sampler))

    first, again, other = loader_order(0), loader_order(0), loader_order(1)
    assert first == again and first != other
    share_small = np.mean([i >= 36 for i in first + loader_order(2) + loader_order(3)])
    assert 0.35 < share_small < 0.65  # balanced: about half the draws from the 4-example site


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "even"])
def test_a_bad_site_balance_is_refused(bad):
    from pcgen.train.gap_data import GapDataModule

    with pytest.raises(ConfigError, match="data.site_balance"):
        GapDataModule(["a"], site_balance=bad)


def test_thinning_keeps_one_factor_for_every_part_and_moves_the_density_descriptor():
    ex = example()  # density exp(3 * 0.3) = 2.46 points/m²
    thin = thin_example(ex, np.random.default_rng(4), min_density=0.5)
    density = np.exp(3 * thin["cond"][1])
    assert 0.5 <= density < np.exp(0.9) - 0.1
    factor = density / np.exp(0.9)
    assert len(thin["source"]) == round(60 * factor) and len(thin["truth"]) == round(80 * factor)
    assert abs(len(thin["context"]) - 500 * factor) < 4 * np.sqrt(500 * factor)  # a binomial draw
    for key in ("context", "source", "truth"):  # a subset of the example's own points
        rows = {tuple(r) for r in ex[key]}
        assert all(tuple(r) in rows for r in thin[key])
    np.testing.assert_array_equal(thin["context_ground"], (thin["context"][:, 2] == 0).astype(np.float32))
    np.testing.assert_array_equal(thin["cond"][[0, 2, 3, 4, 5]], ex["cond"][[0, 2, 3, 4, 5]])
    np.testing.assert_array_equal(ex["context"], example()["context"])  # the cache is untouched


def test_thinned_densities_spread_log_uniformly_down_to_the_floor():
    ex = example()
    rng = np.random.default_rng(0)
    dens = np.array([np.exp(3 * thin_example(ex, rng, 0.5)["cond"][1]) for _ in range(300)])
    # log-uniform on [0.5, 2.46] (a source of 60 points keeps at least 8: never under 0.33)
    assert dens.min() >= 0.5 * 0.99 and dens.max() <= np.exp(0.9)
    assert abs((dens < np.sqrt(0.5 * np.exp(0.9))).mean() - 0.5) < 0.1
    assert thin_example(ex, rng, 3.0) is ex  # already sparser than the floor


def test_without_a_share_no_draw_is_thinned_and_the_stream_is_unchanged():
    ex = example(2)
    plain = augment_example(ex, np.random.default_rng(5), 4096, 512)
    same = augment_example(ex, np.random.default_rng(5), 4096, 512, thin_share=0.0, thin_min_density=0.1)
    for key in ("context", "source", "truth", "cond"):
        np.testing.assert_array_equal(plain[key], same[key])
    ds = GapExamples([ex], seed=1, max_context=4096, thin_share=0.5, thin_min_density=0.5)
    counts = np.array([len(ds[0]["context"]) for _ in range(200)])
    assert 0.35 < (counts < 500).mean() < 0.65  # about half the draws thinned


@pytest.mark.parametrize("share,floor", [(-0.1, 0.5), (1.5, 0.5), (float("nan"), 0.5), (0.5, 0.0),
                                         (0.5, -1.0), (0.5, float("inf")), ("some", 0.5)])
def test_a_bad_thinning_is_refused(share, floor):
    with pytest.raises(ConfigError, match="data.thin_"):
        GapExamples([example()], thin_share=share, thin_min_density=floor)


def test_the_source_keeps_its_kinds_when_thinned_or_cut_to_the_budget():
    """Each kept source point keeps its own kind (1 surface sample, 0 copy): here the kind is
    also written into the point's height, so a mix-up shows."""
    ex = example(4)
    kind = (np.arange(len(ex["source"])) % 3 == 0).astype(np.float32)
    ex["source"][:, 2] = 30.0 * kind + 1.0
    ex["source_kind"] = kind
    for seed in range(5):
        for out in (augment_example(ex, np.random.default_rng(seed), 4096, max_points=20),
                    thin_example(ex, np.random.default_rng(seed), min_density=0.05)):
            assert len(out["source"]) < len(ex["source"])
            np.testing.assert_array_equal(out["source_kind"], (out["source"][:, 2] > 15).astype(np.float32))
            assert 0 < out["source_kind"].sum() < len(out["source"])


@pytest.mark.parametrize("kwargs, says", [
    ({"max_points": 0}, "data.max_points must be >= 1"),
    ({"max_context": 0}, "data.max_context must be >= 1"),
    ({"context_band": -1.0}, "data.context_band must be >= 0"),
    ({"site_balance": 2.0}, "data.site_balance must be a number in [0, 1]"),
])
def test_the_gap_data_refuses_budgets_it_cannot_draw(kwargs, says):
    """max_points=0 failed in the neighbour search at step 0, max_context=0 was an index error, a
    negative band was taken silently; each is now refused when the module is built."""
    with pytest.raises(ConfigError, match=re.escape(says)):
        GapDataModule(caches=["unused.npz"], **kwargs)
