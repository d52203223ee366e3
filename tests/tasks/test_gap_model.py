"""The gap model end to end: its checkpoint, its generator, its training run and the site split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
import torch

from pcgen.errors import ConfigError
from pcgen.tasks.baselines import HybridFill
from pcgen.tasks.context import build_context
from pcgen.tasks.fill import FillConfig
from pcgen.tasks.gap_examples import gap_source
from pcgen.tasks.generators import DEFAULT_CHECKPOINT, GapModelGenerator, load_generator
from pcgen.tasks.train_fill import read_split, strip_checkpoint

REPO = Path(__file__).resolve().parents[2]
TINY = ["experiment=gap_fill", "model.width=8", "model.head.hidden=8", "logger=none", "data.caches=[unused]"]


def tiny_gap_checkpoint(path: Path, *extra: str, source_copy: str | None = None, height_limit=None,
                        near_side=False) -> Path:
    from pcgen.train.run import build_module, compose_config, head_meta

    cfg = compose_config([*TINY, *extra], root=str(path.parent))
    meta = head_meta(cfg)
    if source_copy is not None:  # as datasets/train_default_fill.py --copy records it
        meta["data"]["source_copy"] = source_copy
    if height_limit is not None:  # as datasets/train_default_fill.py records it
        meta["data"]["height_limit"] = height_limit
    if near_side is not None:  # as datasets/train_default_fill.py records it (None: older checkpoints)
        meta["data"]["near_side"] = near_side
    strip_checkpoint(build_module(cfg), meta, path)
    return path


@pytest.mark.parametrize("kind", ["gap_offset", "gap_flow", "gap_vae", "gap_gan"])
def test_untrained_head_without_noise_returns_its_source(holed_tile, tmp_path, kind):
    import pcgen.io as pio

    path, hole, removed = holed_tile
    cloud = pio.read(path)
    gen = load_generator(tiny_gap_checkpoint(tmp_path / "gap.ckpt", f"model={kind}", f"loss={kind}",
                                             "model.head.source_noise=0.0"))
    assert isinstance(gen, GapModelGenerator)
    ctx = build_context(cloud.xyz, hole, FillConfig().context, attributes=dict(cloud.attributes))
    # the offset layer starts at zero: world -> gap frame -> world gives back the source points
    ours, ours_src = gen.generate_with_source(ctx, 300, np.random.default_rng(5))
    ref, ref_src, _ = gap_source(ctx, 300, np.random.default_rng(5), near_side=True)
    # each generated point is a source point moved: it names the same context point (its class)
    np.testing.assert_array_equal(ours_src, ref_src)
    np.testing.assert_allclose(ours[:, :2], np.clip(ref[:, :2], *np.reshape(hole.bounds, (2, 2))), atol=1e-4)
    np.testing.assert_allclose(ours[:, 2], ref[:, 2], atol=1e-3)


def test_source_is_half_copy_half_surface_with_the_classes_beneath(holed_tile):
    import pcgen.io as pio
    from pcgen.tasks.frame import GROUND_CLASS, GroundSurface, ground_points

    path, hole, _ = holed_tile
    cloud = pio.read(path)
    ctx = build_context(cloud.xyz, hole, FillConfig().context, attributes=dict(cloud.attributes))
    pts, index, kind = gap_source(ctx, 300, np.random.default_rng(3))
    assert pts.shape == (300, 3) and index.shape == (300,)
    np.testing.assert_array_equal(kind, np.r_[np.zeros(150), np.ones(150)])  # copy 0, surface 1
    # the first 150 points are the hybrid copy drawn with the same generator, classes and all
    # (all four strips alike, as the shipped weights were trained)
    ref, ref_index = HybridFill(near_side=False).generate_with_source(ctx, 150, np.random.default_rng(3))
    np.testing.assert_array_equal(pts[:150], ref)
    np.testing.assert_array_equal(index[:150], ref_index)
    # the other 150 are surface samples: those on the interpolated ground speak for ground returns
    cls = np.asarray(ctx.attributes["classification"])
    ground = GroundSurface(ground_points(ctx.xyz, cls))(pts[150:, :2])
    on_ground = np.abs(pts[150:, 2] - ground) < 0.05
    assert on_ground.sum() >= 20
    assert (cls[index[150:][on_ground]] == GROUND_CLASS).mean() > 0.9
    # no surface share: the copy alone
    only, _, _ = gap_source(ctx, 40, np.random.default_rng(3), surface_share=0.0)
    np.testing.assert_array_equal(only, HybridFill(near_side=False).generate_with_source(ctx, 40, np.random.default_rng(3))[0])


def test_a_checkpoint_draws_its_sources_from_the_copy_it_was_trained_on(holed_tile, tmp_path):
    import pcgen.io as pio
    from pcgen.errors import CheckpointError
    from pcgen.tasks.baselines import CanopyFill

    path, hole, _ = holed_tile
    cloud = pio.read(path)
    ctx = build_context(cloud.xyz, hole, FillConfig().context, attributes=dict(cloud.attributes))
    pts, index, _ = gap_source(ctx, 300, np.random.default_rng(3), copy="canopy")
    ref, ref_index = CanopyFill(near_side=False).generate_with_source(ctx, 150, np.random.default_rng(3))
    np.testing.assert_array_equal(pts[:150], ref)
    np.testing.assert_array_equal(index[:150], ref_index)
    assert not np.array_equal(pts[:150], gap_source(ctx, 300, np.random.default_rng(3))[0][:150])
    with pytest.raises(ValueError, match="copy must be one of"):
        gap_source(ctx, 10, np.random.default_rng(3), copy="mirror")
    assert load_generator(tiny_gap_checkpoint(tmp_path / "a.ckpt")).copy == "hybrid"  # older checkpoints
    assert load_generator(tiny_gap_checkpoint(tmp_path / "b.ckpt", source_copy="canopy")).copy == "canopy"
    with pytest.raises(CheckpointError, match="unknown source copy 'exec'"):
        load_generator(tiny_gap_checkpoint(tmp_path / "c.ckpt", source_copy="exec"))


def test_every_gap_checkpoint_starts_from_the_nearest_side_copy_the_baselines_write(holed_tile, tmp_path):
    import pcgen.io as pio
    from pcgen.tasks.baselines import HybridFill

    path, hole, _ = holed_tile
    cloud = pio.read(path)
    ctx = build_context(cloud.xyz, hole, FillConfig().context, attributes=dict(cloud.attributes))
    for near_side in (True, False):
        pts, index, _ = gap_source(ctx, 300, np.random.default_rng(3), near_side=near_side)
        ref, ref_index = HybridFill(near_side=near_side).generate_with_source(ctx, 150, np.random.default_rng(3))
        np.testing.assert_array_equal(pts[:150], ref)
        np.testing.assert_array_equal(index[:150], ref_index)
    assert not np.array_equal(gap_source(ctx, 300, np.random.default_rng(3), near_side=True)[0],
                              gap_source(ctx, 300, np.random.default_rng(3))[0])
    # the training draw a checkpoint records does not change where its fills start: the shipped
    # weights, trained on all four strips alike, come closer from the nearest-side copy
    for i, trained in enumerate((True, False, None)):
        gen = load_generator(tiny_gap_checkpoint(tmp_path / f"{i}.ckpt", "model.head.source_noise=0.0",
                                                 near_side=trained))
        assert gen.near_side is True
        ours, ours_src = gen.generate_with_source(ctx, 300, np.random.default_rng(5))
        ref, ref_src, _ = gap_source(ctx, 300, np.random.default_rng(5), near_side=True)
        np.testing.assert_array_equal(ours_src, ref_src)
        np.testing.assert_allclose(ours[:, 2], ref[:, 2], atol=1e-3)
    assert load_generator().near_side is True


def test_the_height_limit_is_the_99th_percentile_of_the_training_contexts_p95():
    from pcgen.tasks.gap_examples import COND_DIM, height_factor, height_limit

    conds = np.zeros((200, COND_DIM), np.float32)
    conds[:, 3] = np.arange(1, 201) / 10.0  # p95 heights of 1, 2, ... 200 m, in cond's 10 m units
    assert height_limit(conds) == pytest.approx(198.01, abs=1e-3)  # numpy's linear percentile
    heights = np.arange(0.0, 101.0)  # p95 = 95 m
    assert height_factor(heights, None) == 1.0
    assert height_factor(heights, 95.0) == 1.0 and height_factor(heights, 120.0) == 1.0
    assert height_factor(heights, 19.0) == pytest.approx(0.2)
    assert height_factor(np.zeros(0), 19.0) == 1.0


def test_a_forest_taller_than_the_model_knows_is_shrunk_into_its_range_and_back(holed_tile, tmp_path):
    """The head sees the context's p95 height at the checkpoint's limit; its fill is stretched back,
    so an untrained head (which returns its source) gives the same points with or without a limit."""
    import pcgen.io as pio
    from pcgen.errors import CheckpointError
    from pcgen.tasks.gap_examples import frame_example

    path, hole, _ = holed_tile
    cloud = pio.read(path)
    ctx = build_context(cloud.xyz, hole, FillConfig().context, attributes=dict(cloud.attributes))
    p95 = float(np.percentile(frame_example(ctx, 10, np.random.default_rng(0)).context[:, 2], 95))
    assert p95 > 8.0  # a forest: its crowns stand well above the ground
    noiseless = "model.head.source_noise=0.0"
    plain = load_generator(tiny_gap_checkpoint(tmp_path / "plain.ckpt", noiseless))
    limited = load_generator(tiny_gap_checkpoint(tmp_path / "limit.ckpt", noiseless, height_limit=p95 / 2))
    assert plain.height_limit is None and limited.height_limit == pytest.approx(p95 / 2)
    seen = {}
    for name, gen in (("plain", plain), ("limited", limited)):
        def spy(batch, _sample=gen.head.sample, _name=name, **kw):
            seen[_name] = batch
            return _sample(batch, **kw)

        gen.head.sample = spy
    ref, ref_src = plain.generate_with_source(ctx, 300, np.random.default_rng(5))
    ours, ours_src = limited.generate_with_source(ctx, 300, np.random.default_rng(5))
    np.testing.assert_array_equal(ours_src, ref_src)
    np.testing.assert_allclose(ours, ref, atol=2e-3)
    batch, before = seen["limited"], seen["plain"]
    n = int(batch["context_lengths"][0])
    assert float(np.percentile(batch["context"][0, :n, 2].numpy(), 95)) == pytest.approx(p95 / 2, rel=1e-4)
    # the start, the envelope and the height descriptors shrink by the same factor (the model reads
    # at most 1536 context points, whose p95 is about the whole context's); the rest is as it was
    factor = (p95 / 2) / float(np.percentile(before["context"][0, :n, 2].numpy(), 95))
    assert factor == pytest.approx(0.5, abs=0.05)
    torch.testing.assert_close(batch["source"][..., 2], before["source"][..., 2] * factor)
    torch.testing.assert_close(batch["source"][..., :2], before["source"][..., :2])
    torch.testing.assert_close(batch["z_max"], before["z_max"] * factor)
    torch.testing.assert_close(batch["cond"][:, 2:5], before["cond"][:, 2:5] * factor)
    torch.testing.assert_close(batch["cond"][:, [0, 1, 5]], before["cond"][:, [0, 1, 5]])
    # a limit above the forest changes nothing, bit for bit
    high = load_generator(tiny_gap_checkpoint(tmp_path / "high.ckpt", noiseless, height_limit=2 * p95))
    np.testing.assert_array_equal(high.generate_with_source(ctx, 300, np.random.default_rng(5))[0], ref)
    for bad in (0, -3.0, float("nan"), "tall"):
        with pytest.raises(CheckpointError, match="data.height_limit must be a positive number"):
            load_generator(tiny_gap_checkpoint(tmp_path / "bad.ckpt", height_limit=bad))

def test_a_loaded_gap_model_runs_torch_on_one_thread(tmp_path):
    ckpt = tiny_gap_checkpoint(tmp_path / "gap.ckpt")
    torch.set_num_threads(2)
    load_generator(ckpt, threads=None)
    assert torch.get_num_threads() == 2  # left as it was
    load_generator(ckpt)
    assert torch.get_num_threads() == 1


def test_the_source_copy_can_be_chosen_at_fill_time(holed_tile, tmp_path, capsys):
    import pcgen.io as pio
    from pcgen.cli import main
    from pcgen.tasks.gap_examples import COPIES
    from pcgen.tasks.generators import SOURCE_COPIES, make_generator

    assert SOURCE_COPIES == tuple(COPIES)  # fill and eval-fill --source-copy take these
    hybrid_ckpt = tiny_gap_checkpoint(tmp_path / "h.ckpt")
    canopy_ckpt = tiny_gap_checkpoint(tmp_path / "c.ckpt", source_copy="canopy")
    assert load_generator(hybrid_ckpt, "canopy").copy == "canopy"
    assert load_generator(canopy_ckpt, "hybrid").copy == "hybrid"
    assert make_generator(("model", str(hybrid_ckpt), "canopy")).copy == "canopy"
    with pytest.raises(ConfigError, match="source copy must be one of auto, hybrid, canopy"):
        load_generator(hybrid_ckpt, "mirror")
    # the start decides the fill: the same seed and weights from the two copies differ
    path, hole, _ = holed_tile
    mask = tmp_path / "hole.geojson"
    mask.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(hole)}]}))
    fills = {}
    for copy in SOURCE_COPIES:
        out = tmp_path / f"{copy}.laz"
        assert main(["fill", str(path), str(out), "--mask", str(mask), "--ckpt", str(hybrid_ckpt),
                     "--source-copy", copy, "--seed", "0", "--samples", "1", "--quiet"]) in (0, None)
        fills[copy] = pio.read(out).xyz
    assert len(fills["hybrid"]) == len(fills["canopy"])
    assert not np.array_equal(fills["hybrid"], fills["canopy"])
    code = main(["fill", str(path), str(tmp_path / "x.laz"), "--baseline", "mirror",
                 "--source-copy", "canopy"])
    assert code != 0 and "a --baseline fill has none" in capsys.readouterr().err
    assert not (tmp_path / "x.laz").exists()
    code = main(["fill", str(path), str(tmp_path / "x.laz"), "--baseline", "mirror",
                 "--ckpt", str(hybrid_ckpt)])
    assert code == 2 and "--ckpt names the model; a --baseline fill uses none" in capsys.readouterr().err
    for flag in (["--ckpt", str(hybrid_ckpt)], ["--source-copy", "canopy"]):
        code = main(["eval-fill", str(path), "--out", str(tmp_path / "ef"), "--no-model", *flag])
        err = capsys.readouterr().err
        assert code == 2 and f"{flag[0]} sets up the model; --no-model scores the baselines only" in err
    assert not (tmp_path / "x.laz").exists() and not (tmp_path / "ef").exists()
    for flag in (["--samples", "8"], ["--class-code", "3"], ["--baseline", "mirror"]):
        code = main(["fill", str(path), str(tmp_path / "x.laz"), "--gaps-only", *flag])
        assert code == 2 and f"{flag[0]} sets how gaps are filled; --gaps-only fills none" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("x")) == []


def test_the_default_start_is_the_canopy_copy_in_narrow_gaps_only(holed_tile, tmp_path):
    import pcgen.io as pio
    from shapely.geometry import box

    from pcgen.tasks.fill import FillConfig, fill_cloud, mask_gaps
    from pcgen.tasks.gaps import gap_width

    ckpt = tiny_gap_checkpoint(tmp_path / "h.ckpt")
    auto = load_generator(ckpt)
    assert (auto.copy, auto.small_copy) == ("hybrid", "canopy")
    assert load_generator(ckpt, "auto").small_copy == "canopy"
    assert load_generator(ckpt, "hybrid").small_copy == "hybrid"
    path, hole, _ = holed_tile
    cloud = pio.read(path)
    x, y = cloud.xyz[:, :2].min(0) + 30.0  # in the forest, away from the tile's hole
    small, large = box(x - 2.5, y - 2.5, x + 2.5, y + 2.5), box(x - 5, y - 5, x + 5, y + 5)
    assert gap_width(small) == pytest.approx(5.0) and gap_width(large) == pytest.approx(10.0)
    assert gap_width(box(0, 0, 5, 100)) == pytest.approx(5.0)  # a strip is as wide as it is across
    cfg = FillConfig(samples=1, seed=3)

    def fill(copy, gap):
        gen = load_generator(ckpt, copy)
        return fill_cloud(cloud, mask_gaps(cloud, [gap]), gen, cfg).cloud.xyz[len(cloud):]

    np.testing.assert_array_equal(fill(None, small), fill("canopy", small))
    np.testing.assert_array_equal(fill(None, large), fill("hybrid", large))
    assert not np.array_equal(fill("hybrid", small), fill("canopy", small))


def test_generated_points_fill_the_hole_at_the_surrounding_density(holed_tile, tmp_path):
    import pcgen.io as pio
    from pcgen.tasks.fill import fill_cloud, mask_gaps

    path, hole, removed = holed_tile
    cloud = pio.read(path)
    gen = load_generator(tiny_gap_checkpoint(tmp_path / "gap.ckpt"))
    result = fill_cloud(cloud, mask_gaps(cloud, [hole]), gen, FillConfig(seed=1))
    new = result.cloud.xyz[result.n_original:]
    assert shapely.contains_xy(hole.buffer(1e-6), new[:, 0], new[:, 1]).all()
    # Topography.laz holds about one point per m²: the 314 m² hole gets within 25% of the removed count
    assert abs(len(new) - len(removed)) < 0.25 * len(removed)
    # nothing above the surrounding canopy's top + 1 m
    assert new[:, 2].max() <= cloud.xyz[:, 2].max() + 1.0


@pytest.mark.parametrize("kind, extra", [("gap_offset", []), ("gap_flow", []), ("gap_diffusion", []), ("gap_vae", []),
                                         ("gap_gan", []), ("gap_offset", ["model.head.source_kind=true"])])
def test_training_is_deterministic_for_a_seed(tmp_path, kind, extra):
    from pcgen.tasks.context import SortedCloud
    from pcgen.tasks.gap_examples import cut_examples, save_examples
    from pcgen.train.run import build, compose_config

    rng = np.random.default_rng(0)
    gx, gy = np.meshgrid(np.arange(0.5, 80, 1.0), np.arange(0.5, 80, 1.0))
    ground = np.c_[gx.ravel(), gy.ravel(), 0.05 * gx.ravel()]
    crowns = np.c_[rng.uniform(0, 80, (4000, 2)), rng.uniform(5, 15, 4000)]
    crowns[:, 2] += 0.05 * crowns[:, 0]
    cls = np.r_[np.full(len(ground), 2), np.full(len(crowns), 5)]
    exs = cut_examples(SortedCloud(np.r_[ground, crowns], cls), 6, (5, 10), np.random.default_rng(1))
    save_examples(exs, tmp_path / "ex.npz")
    weights = []
    for run in ("a", "b"):
        cfg = compose_config([*TINY[:-1], f"model={kind}", f"loss={kind}", f"data.caches=[{tmp_path / 'ex.npz'}]",
                              "data.batch_size=2",
                              "trainer.max_steps=2", "trainer.enable_progress_bar=false", "seed=3", *extra],
                             root=tmp_path / run)
        module, dm, trainer = build(cfg, tmp_path / run)
        trainer.fit(module, datamodule=dm)
        weights.append(torch.cat([p.detach().flatten() for p in module.head.parameters()]))
    assert trainer.global_step == 2
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_cached_examples_keep_their_sources_kinds(tmp_path):
    """Saved and loaded, every example's source still says which points are surface samples; a
    cache written without the kinds gets gap_source's order (copies first, then the surface)."""
    from pcgen.tasks.context import SortedCloud
    from pcgen.tasks.gap_examples import cut_examples, load_examples, save_examples

    rng = np.random.default_rng(0)
    gx, gy = np.meshgrid(np.arange(0.5, 60, 1.0), np.arange(0.5, 60, 1.0))
    xyz = np.r_[np.c_[gx.ravel(), gy.ravel(), np.zeros(gx.size)],
                np.c_[rng.uniform(0, 60, (2000, 2)), rng.uniform(5, 15, 2000)]]
    cls = np.r_[np.full(gx.size, 2), np.full(2000, 5)]
    exs = cut_examples(SortedCloud(xyz, cls), 4, (5, 10), np.random.default_rng(1))
    save_examples(exs, tmp_path / "ex.npz")
    for ex, back in zip(exs, load_examples(tmp_path / "ex.npz")):
        n = len(ex.source)
        np.testing.assert_array_equal(back["source_kind"], np.r_[np.zeros(n - round(n / 2)), np.ones(round(n / 2))])
        np.testing.assert_array_equal(back["source_kind"], ex.source_kind)
    with np.load(tmp_path / "ex.npz") as z:
        old = {k: z[k] for k in z.files if not k.startswith("source_kind")}
    np.savez(tmp_path / "old.npz", **old)
    for ex, back in zip(exs, load_examples(tmp_path / "old.npz")):
        np.testing.assert_array_equal(back["source_kind"], ex.source_kind)


def test_the_recipe_takes_the_height_limit_from_all_its_caches(tmp_path):
    from pcgen.tasks.context import SortedCloud
    from pcgen.tasks.gap_examples import cut_examples, height_limit, save_examples
    from pcgen.tasks.train_fill import cached_height_limit

    rng = np.random.default_rng(0)
    gx, gy = np.meshgrid(np.arange(0.5, 60, 1.0), np.arange(0.5, 60, 1.0))
    conds = []
    for name, top in (("low", 6.0), ("tall", 30.0)):
        xyz = np.r_[np.c_[gx.ravel(), gy.ravel(), np.zeros(gx.size)],
                    np.c_[rng.uniform(0, 60, (2000, 2)), rng.uniform(2, top, 2000)]]
        exs = cut_examples(SortedCloud(xyz, np.r_[np.full(gx.size, 2), np.full(2000, 5)]), 4, (5, 10),
                           np.random.default_rng(1))
        save_examples(exs, tmp_path / f"{name}.npz")
        conds += [e.cond for e in exs]
    limit = cached_height_limit([tmp_path / "low.npz", tmp_path / "tall.npz"])
    assert limit == pytest.approx(height_limit(np.stack(conds)), rel=1e-6)
    assert 20.0 < limit < 30.0  # the tall site's crowns, not the low one's
    assert cached_height_limit([tmp_path / "low.npz"]) < 6.0


def test_a_recipe_on_the_other_draw_never_reuses_the_old_examples():
    from pcgen.tasks.train_fill import build_parser, cache_name

    assert cache_name("training/hawaii_ept", (5, 25)) == "hawaii_ept_gaps5-25m.npz"  # the shipped recipe's
    assert cache_name("training/hawaii_ept", (5, 25), near_side=True) == "hawaii_ept_gaps5-25m_near.npz"
    assert cache_name("training/hawaii_ept", (5, 25), "canopy", True) == "hawaii_ept_gaps5-25m_canopy_near.npz"
    base = ["--split", "s.yaml", "--out", "o.ckpt", "--work", "w"]
    assert build_parser().parse_args(base).near_side is False  # as the shipped weights were trained
    assert build_parser().parse_args([*base, "--near-side"]).near_side is True


def test_split_refuses_a_site_in_both_lists(tmp_path):
    bad = tmp_path / "split.yaml"
    bad.write_text("train: [training/a.laz, training/b.laz]\nheldout: [training/b.laz]\n")
    with pytest.raises(ConfigError, match="both trained on and held out"):
        read_split(bad)


def test_shipped_checkpoint_never_trained_on_the_heldout_sites():
    split = read_split(REPO / "datasets" / "fill_split.yaml")
    sidecar = json.loads(DEFAULT_CHECKPOINT.with_suffix(".json").read_text())
    assert sidecar["heldout_sites"] == split["heldout"]
    assert sidecar["train_sites"] == split["train"]
    trained = {Path(s).name for s in sidecar["train_sites"]}
    assert not trained & {Path(s).name for s in sidecar["heldout_sites"]}
    assert set(sidecar["examples"]) == set(sidecar["train_sites"])
    # filling shrinks taller forests into the range the recipe measured on its examples
    assert load_generator().height_limit == sidecar["height_limit"] == pytest.approx(23.7)


def test_recipe_outputs_never_replace_an_input_or_a_foreign_file(tmp_path, fill_ckpt):
    """`--out` on a training site wrote a checkpoint over it (and on the split file, over that)."""
    from pcgen import datadir
    from pcgen.errors import OutputError
    from pcgen.tasks.train_fill import check_outputs

    split_file = tmp_path / "split.yaml"
    split_file.write_text("train: [lidar/Topography.laz, training/hawaii_ept]\nheldout: [lidar/Megaplot.laz]\n")
    split, work = read_split(split_file), tmp_path / "work"
    data = datadir.data_dir()
    for out, says in ((data / "lidar" / "Topography.laz", "overwrite its input"),
                      (data / "lidar" / "Megaplot.laz", "overwrite its input"),  # held-out sites too
                      (data / "training" / "hawaii_ept" / "x.ckpt", "inside the input"),
                      (split_file, "overwrite its input"),
                      (work / "x.ckpt", "inside the input")):  # the sidecar may not land in the work folder
        with pytest.raises(OutputError, match=says):
            check_outputs(split_file, split, work, out)
    with pytest.raises(OutputError, match="output lies inside the input"):
        check_outputs(split_file, split, data / "training" / "hawaii_ept" / "w", tmp_path / "a.ckpt")
    foreign = tmp_path / "mine.ckpt"
    foreign.write_bytes(b"not a checkpoint")
    with pytest.raises(OutputError, match="pcgen did not write it"):
        check_outputs(split_file, split, work, foreign)
    check_outputs(split_file, split, work, fill_ckpt)  # a checkpoint this recipe wrote is replaced


def test_recipe_script_reports_bad_settings_in_one_line_before_any_work(tmp_path, capsys):
    import runpy

    script = runpy.run_path(str(REPO / "datasets" / "train_default_fill.py"))
    assert script["main"](["--work", str(tmp_path / "w"), "--out", str(tmp_path / "o.ckpt"),
                           "--set", "data.batch_size=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "train_default_fill.py: error: data.batch_size must be positive, got 0"
    assert not (tmp_path / "w" / "examples").exists() and not (tmp_path / "o.ckpt").exists()


@pytest.fixture(scope="module")
def six_examples(tmp_path_factory):
    """A cache of 6 gap examples cut from a synthetic slope with crowns."""
    from pcgen.tasks.context import SortedCloud
    from pcgen.tasks.gap_examples import cut_examples, save_examples

    rng = np.random.default_rng(0)
    gx, gy = np.meshgrid(np.arange(0.5, 80, 1.0), np.arange(0.5, 80, 1.0))
    ground = np.c_[gx.ravel(), gy.ravel(), 0.05 * gx.ravel()]
    crowns = np.c_[rng.uniform(0, 80, (4000, 2)), rng.uniform(5, 15, 4000)]
    cls = np.r_[np.full(len(ground), 2), np.full(len(crowns), 5)]
    path = tmp_path_factory.mktemp("ex") / "six.npz"
    save_examples(cut_examples(SortedCloud(np.r_[ground, crowns], cls), 6, (5, 10), np.random.default_rng(1)), path)
    return path


@pytest.mark.parametrize("args, says", [
    (["model=gap_offset", "data.tile_dir={tiles}"], "model=gap_offset trains on cut gap examples: use experiment=gap_fill"),
    (["experiment=gap_fill", "model=vae", "loss=vae", "data.caches=[{six}]"], "data=gap_examples feeds the gap heads"),
    (["experiment=gap_fill", "data.caches=[{tmp}/nope.npz]"], "nope.npz: gap example cache not found"),
    (["experiment=gap_fill", "data.caches={tmp}/nope.npz"], "nope.npz: gap example cache not found"),  # not n, o, p...
    (["experiment=gap_fill", "data.caches=[{tiles}/tile_index.geojson]"], "tile_index.geojson: not a gap example cache"),
    (["experiment=gap_fill", "data.caches=[{six}]"], "6 gap examples, fewer than data.batch_size (8)"),  # trained nothing, exit 0
    (["experiment=gap_fill", "data.caches=[{six}]", "+data.bogus=1"], "unknown key data.bogus"),
])
def test_gap_training_data_refused_in_one_line_leaving_no_run_folder(six_examples, tiny_tiles, tmp_path, monkeypatch,
                                                                     capsys, args, says):
    import logging

    from pcgen.cli import main

    monkeypatch.chdir(tmp_path)
    # an earlier in-process Hydra app left log handlers on a closed captured stream
    monkeypatch.setattr(logging, "raiseExceptions", False)
    argv = ["train", *[a.format(tiles=tiny_tiles, six=six_examples, tmp=tmp_path) for a in args],
            "trainer.max_steps=2", "logger=csv"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err
    assert list(tmp_path.iterdir()) == []


def test_debug_tiny_trains_a_gap_head(six_examples, tmp_path):
    """debug=tiny sizes tile samples (data.dataset), which gap examples do not take: it failed."""
    from pcgen.cli import main

    run = tmp_path / "run"
    assert main(["train", "debug=tiny", "experiment=gap_fill", f"data.caches=[{six_examples}]",
                 "trainer.max_steps=2", f"hydra.run.dir={run}"]) == 0
