"""Every model x encoder composes, instantiates and takes optimizer steps on real tiles (CPU)."""

from __future__ import annotations

import itertools

import pytest
import torch

MODELS = ["vae", "gan", "diffusion", "flow_matching"]
ENCODERS = ["pointnet", "pointnet2", "dgcnn"]


def _params(module):
    return {k: v.detach().clone() for k, v in module.head.state_dict().items()
            if v.dtype.is_floating_point}


@pytest.mark.parametrize("model,encoder", list(itertools.product(MODELS, ENCODERS)))
def test_two_steps(model, encoder, make_cfg):
    from pcgen.train.run import build

    # GAN: Lightning counts both players' optimizer steps, so 4 steps = 2 batches.
    steps = 4 if model == "gan" else 2
    cfg = make_cfg(model, encoder, [f"trainer.max_steps={steps}"])
    module, datamodule, trainer = build(cfg)
    assert module.hparams["kind"] == model
    before = _params(module)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == steps
    assert module.batches_seen == 2
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"])
    if model == "gan":
        assert {"train_d/disc_adv", "train_g/gen_adv"} <= set(metrics)
    after = _params(module)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no parameter moved after two optimizer steps"
    # EMA is a separate copy that moved towards the live weights but is not them.
    ema = module.ema.module.state_dict()
    assert any(not torch.equal(ema[k], after[k]) for k in changed)


def test_every_config_group_composes(make_cfg):
    """Presets and experiments resolve fully (interpolations included) without training."""
    from omegaconf import OmegaConf

    for extra in (["data=forest"], ["data=terrain"], ["data=urban"], ["experiment=fill"],
                  ["trainer=ddp"], ["trainer=gpu"], ["experiment=forest_diffusion"]):
        cfg = make_cfg("diffusion", "pointnet", [*extra, "data.tile_dir=null"])
        OmegaConf.to_container(cfg, resolve=True)
    cfg = make_cfg("vae", "pointnet", ["experiment=fill"])
    assert cfg.data.conditional is True
    assert cfg.model.head.encoder.cond_dim == 256
    assert cfg.model.head.decoder.num_points == cfg.data.gap.target_points


def test_conditional_fill_steps(make_cfg):
    """experiment=fill trains a gap-filling head on GapDataset batches (context + gap box)."""
    from pcgen.train.run import build

    cfg = make_cfg("flow_matching", "pointnet", [
        "experiment=fill", "trainer.max_steps=2", "model.cond_dim=8",
        "model.head.context_encoder.hidden=16", "data.gap.context_points=48",
        "data.gap.target_points=16", "+data.gap.min_gap_points=2"])
    module, datamodule, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2
    out = module.sampling_head().sample(
        2, 16, context=torch.rand(2, 48, 3) - 0.5,
        gap_box=torch.tensor([[-0.2, -0.2, 0.2, 0.2]] * 2), generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 16, 3)
    assert bool(((out[..., 0] >= -0.2 - 1e-6) & (out[..., 0] <= 0.2 + 1e-6)).all())


def _options(group: str) -> list[str]:
    from importlib.resources import files

    return sorted(p.name[:-5] for p in files("pcgen.conf").joinpath(group).iterdir()
                  if p.name.endswith(".yaml"))


def test_every_packaged_option_composes(tmp_path):
    """Every option of every training group resolves (interpolations included) from the wheel's tree."""
    from omegaconf import OmegaConf

    from pcgen.train.run import compose_config

    groups = ["model", "encoder", "data", "trainer", "callbacks", "logger", "experiment", "debug"]
    assert {g: len(_options(g)) > 0 for g in groups} == {g: True for g in groups}
    for group in groups:
        for option in _options(group):
            extra = ["model.autoencoder_ckpt=vae.ckpt"] if (group, option) == ("model", "lgan") else []
            cfg = compose_config([f"{group}={option}", *extra], root=tmp_path)
            OmegaConf.to_container(cfg, resolve=True)
    # l-GAN's players return exactly these terms, so its loss needs no require_all escape.
    lgan = compose_config(["model=lgan", "model.autoencoder_ckpt=vae.ckpt"], root=tmp_path).loss
    assert OmegaConf.to_container(lgan) == {
        "generator": {"_target_": "pcgen.losses.WeightedLoss", "_convert_": "all", "terms": {"gen_adv": 1.0}},
        "discriminator": {"_target_": "pcgen.losses.WeightedLoss", "_convert_": "all",
                          "terms": {"disc_adv": 1.0, "gradient_penalty": 10.0}}}
    loggers = compose_config(["logger=default"], root=tmp_path).logger
    assert sorted(loggers) == ["csv", "tensorboard"] and loggers.csv.version == "csv"


def test_debug_tiny_follows_the_chosen_parts(tmp_path):
    from pcgen.train.run import compose_config

    cfg = compose_config(["debug=tiny", "model=gan", "encoder=dgcnn"], root=tmp_path)
    assert (cfg.encoder.k, cfg.model.noise_dim, list(cfg.model.head.generator.hidden)) == (8, 8, [32])
    assert (cfg.data.batch_size, cfg.data.dataset.num_points, cfg.trainer.accelerator) == (2, 64, "cpu")
    assert not cfg.logger and not cfg.callbacks
    full = compose_config(["model=gan", "encoder=dgcnn"], root=tmp_path)
    assert (full.encoder.k, full.model.noise_dim) == (20, 128)


def test_image_presets_inherit_the_base_recipe():
    from omegaconf import OmegaConf

    from pcgen.image.config import load_preset, preset_names

    assert preset_names() == ["ldm128", "ldm256_c160", "ldm256_c192", "tiny"]
    base, small = load_preset("ldm256_c192"), load_preset("ldm128")
    assert small.data.image_size == 128 and list(small.unet.block_out_channels) == [192, 384, 768, 768]
    assert OmegaConf.to_container(small.autoencoder) == OmegaConf.to_container(base.autoencoder)
    tiny = load_preset("tiny", ["data.image_size=64"])
    assert (tiny.data.image_size, tiny.cosplace.backbone, tiny.diffusion.timesteps) == (64, "ResNet18", 1000)


def test_a_users_config_folder_adds_and_replaces(tmp_path):
    from pcgen.errors import ConfigError
    from pcgen.image.config import load_preset
    from pcgen.train.run import compose_config

    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ntrainer:\n  max_steps: 7\ndata:\n  batch_size: 3\n")
    cfg = compose_config(["experiment=mine"], root=tmp_path, config_dir=tmp_path)
    assert (cfg.trainer.max_steps, cfg.data.batch_size, cfg.model.kind) == (7, 3, "diffusion")
    (tmp_path / "image").mkdir()
    (tmp_path / "image" / "mine.yaml").write_text("defaults:\n  - /image/tiny\n  - _self_\ndata:\n  image_size: 48\n")
    mine = load_preset("mine", config_dir=tmp_path)
    assert (mine.data.image_size, mine.data.batch_size) == (48, 4)
    with pytest.raises(ConfigError, match="not found"):
        compose_config([], config_dir=tmp_path / "missing")
    with pytest.raises(ConfigError, match="experiment/nope"):
        compose_config(["experiment=nope"], config_dir=tmp_path)


def test_fill_config_file_sets_some_keys_and_overrides_win(tmp_path):
    from pcgen.errors import ConfigError
    from pcgen.tasks.fill import load_fill_config

    mine = tmp_path / "my_fill.yaml"
    mine.write_text("samples: 3\ngaps:\n  density_ratio: 0.3\n")
    cfg, packaged = load_fill_config(mine, ["gaps.density_ratio=0.2", "seed=4"]), load_fill_config()
    assert (cfg.samples, cfg.gaps.density_ratio, cfg.seed) == (3, 0.2, 4)
    assert (packaged.samples, packaged.seed, packaged.gaps.exclude_classes) == (8, 0, [9])
    assert (cfg.gaps.min_gap_cells, cfg.gaps.exclude_classes) == (packaged.gaps.min_gap_cells, [9])
    assert cfg.context == packaged.context
    assert load_fill_config(overrides=["gaps.exclude_classes=[9,2]"]).gaps.exclude_classes == [9, 2]
    (tmp_path / "bad.yaml").write_text("gaps:\n  no_such_key: 1\n")
    for args in [(tmp_path / "bad.yaml",), (tmp_path / "missing.yaml",), (None, ["samples=many"])]:
        with pytest.raises(ConfigError):
            load_fill_config(*args)


def test_pcgen_train_runs_two_steps(make_cfg, tmp_path):
    from pcgen.cli import main

    tiles = make_cfg("vae", "pointnet").data.tile_dir
    run = tmp_path / "run"
    assert main(["train", "debug=tiny", "model=flow_matching", f"data.tile_dir={tiles}",
                 "trainer.max_steps=2", "callbacks=default", "callbacks.last.every_n_train_steps=2",
                 "callbacks.best.every_n_train_steps=2", "callbacks.samples.every_n_steps=0",
                 f"hydra.run.dir={run}"]) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2 and ckpt["hyper_parameters"]["kind"] == "flow_matching"
    assert (run / "train.log").exists()


def test_pcgen_train_with_an_experiment_from_the_users_config_folder(make_cfg, tmp_path):
    from pcgen.cli import main

    tiles = make_cfg("vae", "pointnet").data.tile_dir
    (tmp_path / "my_conf" / "experiment").mkdir(parents=True)
    (tmp_path / "my_conf" / "experiment" / "survey.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: vae\ntrainer:\n  max_steps: 2\n")
    run = tmp_path / "run"
    assert main(["train", f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "experiment=survey",
                 "debug=tiny", f"data.tile_dir={tiles}", "callbacks=default",
                 "callbacks.last.every_n_train_steps=2", "callbacks.best.every_n_train_steps=2",
                 "callbacks.samples.every_n_steps=0", f"hydra.run.dir={run}"]) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2 and ckpt["hyper_parameters"]["kind"] == "vae"


def test_a_refused_train_run_keeps_the_folders_the_user_had(make_cfg, tmp_path, monkeypatch, capsys):
    from pcgen.cli import main
    from pcgen.train import train_cli

    monkeypatch.chdir(tmp_path)
    tiles = make_cfg("vae", "pointnet").data.tile_dir
    logs = tmp_path / "mylogs"
    logs.mkdir()
    (logs / "train.log").write_text("my notes")
    # hydra.* overrides no longer skip the check before Hydra makes (or reuses) the folder
    assert main(["train", "debug=tiny", "model=vae", f"data.tile_dir={tiles}", "hydra.run.dir=mylogs",
                 "data.batch_size=0"]) == 2
    assert "data.batch_size must be positive" in capsys.readouterr().err
    assert (logs / "train.log").read_text() == "my notes" and sorted(logs.iterdir()) == [logs / "train.log"]
    # refused inside the run, after Hydra wrote .hydra/: a folder the user had stays
    train_cli._note_existing(["hydra.run.dir=mylogs"])
    (logs / ".hydra").mkdir()
    train_cli._remove_if_unused(str(logs))
    assert (logs / "train.log").read_text() == "my notes"
    # a folder the run made goes, its empty parent that the user had stays
    (tmp_path / "runs").mkdir()
    train_cli._note_existing(["hydra.run.dir=runs/a/b"])
    made = tmp_path / "runs" / "a" / "b"
    (made / ".hydra").mkdir(parents=True)
    train_cli._remove_if_unused(str(made))
    assert not (tmp_path / "runs" / "a").exists() and (tmp_path / "runs").is_dir()
