"""``pcgen train`` refusals: one line, exit 2, nothing written (no run folder, nothing among the
inputs); resume and l-GAN checkpoints that cannot fit; ``last.ckpt`` at the final step."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch

from pcgen.cli import main
from pcgen.errors import CheckpointError, ConfigError, OutputError


def _one_line(capsys, argv, says):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pcgen train: error: "), err
    assert says in err, err


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def vae_ckpt(make_cfg, tmp_path_factory):
    """A debug=tiny VAE (pointnet, latent size 8) trained 2 steps: its last.ckpt."""
    from pcgen.train.run import train

    root = tmp_path_factory.mktemp("vae")
    cfg = make_cfg("vae", "pointnet", ["trainer.max_steps=2", "callbacks.samples.every_n_steps=0",
                                       "callbacks.last.every_n_train_steps=2"],
                   root=root, callbacks="default")
    # An earlier in-process Hydra app left log handlers on a closed captured stream: their
    # "Logging error" reports would land in the next test's stderr.
    raise_exceptions, logging.raiseExceptions = logging.raiseExceptions, False
    try:
        train(cfg, root=root)
    finally:
        logging.raiseExceptions = raise_exceptions
    return root / "checkpoints" / "last.ckpt"


# -- A: the run folder never overlaps an input -----------------------------------------------
@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_run_dir_among_input_tiles_is_refused(tiny_tiles, tmp_path, monkeypatch, capsys, where):
    tiles = tmp_path / "in" / "tiles"
    shutil.copytree(tiny_tiles, tiles)
    before = _listing(tmp_path)
    run_dir = {"same": tiles, "inside": tiles / "run", "contains": tiles.parent}[where]
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, ["train", "debug=tiny", "model=vae", f"data.tile_dir={tiles}", "trainer.max_steps=2",
                       f"hydra.run.dir={run_dir}"], "input")
    assert _listing(tmp_path) == before  # no .hydra/, checkpoints/ or logs/ among the tiles


@pytest.mark.parametrize("how", ["searchpath", "glob sweep"])
def test_run_dir_among_input_tiles_is_refused_with_a_users_config_folder_or_a_glob(
        tiny_tiles, tmp_path, monkeypatch, capsys, how):
    tiles = tmp_path / "in" / "tiles"
    shutil.copytree(tiny_tiles, tiles)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    before = _listing(tmp_path)
    monkeypatch.chdir(tmp_path)
    common = ["debug=tiny", f"data.tile_dir={tiles}", "trainer.max_steps=2"]
    if how == "searchpath":  # composed with the user's folder before Hydra writes anything
        argv = ["train", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "model=vae", *common,
                f"hydra.run.dir={tiles}"]
    else:  # glob(...) over the model options, expanded before the sweep folder is made
        argv = ["train", "-m", "model=glob(va*)", *common, f"hydra.sweep.dir={tiles}"]
    _one_line(capsys, argv, "input")
    assert _listing(tmp_path) == before  # no .hydra/ or multirun.yaml among the tiles


def test_run_dir_holding_a_source_file_is_refused(lidar_dir, tmp_path, monkeypatch, capsys):
    src = tmp_path / "src" / "warsaw_small.las"
    src.parent.mkdir()
    shutil.copy(lidar_dir / "warsaw_small.las", src)
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, ["train", "debug=tiny", "model=vae", f"data.files=[{src}]", "trainer.max_steps=2",
                       f"hydra.run.dir={src.parent}"], f"output would contain the input {src}")
    assert _listing(tmp_path) == ["src", "src/warsaw_small.las"]


def test_library_train_refuses_a_root_among_inputs(make_cfg, tiny_tiles):
    from pcgen.train.run import train

    cfg = make_cfg("vae", "pointnet", ["trainer.max_steps=1"], root=tiny_tiles)
    with pytest.raises(OutputError, match="output would overwrite its input"):
        train(cfg, root=tiny_tiles)


# -- B: settings that used to be tracebacks ---------------------------------------------------
@pytest.mark.parametrize("overrides, says", [
    (["trainer.val_check_interval=0", "data.val_fraction=0.1"], "trainer.val_check_interval must be positive, got 0"),
    (["trainer.max_time=-1"], 'trainer.max_time must be "DD:HH:MM:SS" or null, got -1'),
    (["trainer.max_time=00:25:00:00"], "hours < 24"),
    (["trainer.max_time=00:00:00:00"], "trainer.max_time must be longer than zero"),
    (["callbacks=default", "callbacks.samples.num_samples=0", "callbacks.samples.every_n_steps=1"],
     "callbacks.samples.num_samples must be positive, got 0"),
    (["callbacks=default", "callbacks.samples.num_samples=-3", "callbacks.samples.every_n_steps=1"],
     "callbacks.samples.num_samples must be positive, got -3"),
    (["callbacks=default", "callbacks.samples.every_n_steps=-1"], "callbacks.samples.every_n_steps must be >= 0"),
    (["model=gan", "trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches must be 1 for model.kind=gan"),
    (["model=gan", "model.generator_every=0"], "model.generator_every must be positive, got 0"),
    (["model=gan", "model.generator_every=-2"], "model.generator_every must be positive, got -2"),
    (["model=gan", "model.generator_every=1.5"], "model.generator_every must be an integer, got 1.5"),
    (["model=gan", "trainer.gradient_clip_algorithm=bogus"],
     "trainer.gradient_clip_algorithm must be one of norm, value, got 'bogus'"),
    (["trainer.gradient_clip_algorithm=bogus"], "trainer.gradient_clip_algorithm must be one of norm, value"),
])
def test_bad_training_setting_is_one_line(tiny_tiles, tmp_path, monkeypatch, capsys, overrides, says):
    monkeypatch.chdir(tmp_path)
    model = [] if any(o.startswith("model=") for o in overrides) else ["model=vae"]
    _one_line(capsys, ["train", "debug=tiny", *model, f"data.tile_dir={tiny_tiles}", "trainer.max_steps=2",
                       *overrides], says)
    assert list(tmp_path.iterdir()) == []


def test_lgan_autoencoder_latent_size_must_match(vae_ckpt, tiny_tiles, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, ["train", "debug=tiny", "model=lgan", f"model.autoencoder_ckpt={vae_ckpt}",
                       f"data.tile_dir={tiny_tiles}", "trainer.max_steps=2"],
              "model.autoencoder_ckpt has latent size 8 but model.latent_dim=128: set model.latent_dim=8")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("algorithm", ["value", "norm"])
def test_gan_honours_the_clip_algorithm(make_cfg, algorithm):
    from pcgen.train.run import build_module

    module = build_module(make_cfg("gan", "pointnet", ["trainer.gradient_clip_val=0.5",
                                                       f"trainer.gradient_clip_algorithm={algorithm}"]))
    seen = []
    module.clip_gradients = lambda opt, **kw: seen.append(kw)
    module._clip(None)
    assert seen == [{"gradient_clip_val": 0.5, "gradient_clip_algorithm": algorithm}]


@pytest.mark.parametrize("every", [0, -2, 1.5, True])
def test_gan_module_refuses_a_bad_generator_every(every):
    from pcgen.train.module import GANModule

    with pytest.raises(ConfigError, match="generator_every must be an integer >= 1"):
        GANModule(torch.nn.Linear(1, 1), None, None, None, generator_every=every)


# -- C: last.ckpt holds the final step ------------------------------------------------------
def test_last_checkpoint_is_the_final_step(make_cfg, tmp_path):
    from pcgen.train.run import train

    cfg = make_cfg("vae", "pointnet", ["trainer.max_steps=7", "callbacks.last.every_n_train_steps=5",
                                       "callbacks.best.every_n_train_steps=5", "callbacks.samples.every_n_steps=0"],
                   root=tmp_path, callbacks="default")
    result = train(cfg, root=tmp_path)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == result["global_step"] == 7
    assert ckpt["pcgen"]["batches_seen"] == 7


# -- D: resume that cannot continue ----------------------------------------------------------
@pytest.mark.parametrize("overrides, says", [
    (["encoder=dgcnn"], "checkpoint weights do not fit this model: "),
    (["model.optimizer._target_=torch.optim.SGD"],
     "checkpoint was trained with model.optimizer torch.optim.AdamW, this run asks for torch.optim.SGD"),
    (["trainer.max_steps=1"], "checkpoint is at step 2, trainer.max_steps=1 leaves nothing to train"),
    (["trainer.max_steps=2"], "checkpoint is at step 2, trainer.max_steps=2 leaves nothing to train"),
])
def test_resume_that_cannot_continue_is_refused(vae_ckpt, make_cfg, tmp_path, overrides, says):
    from pcgen.train.run import train

    encoder = "dgcnn" if "encoder=dgcnn" in overrides else "pointnet"
    rest = [o for o in overrides if not o.startswith("encoder=")]
    steps = [] if any("max_steps" in o for o in rest) else ["trainer.max_steps=4"]
    cfg = make_cfg("vae", encoder, [*steps, *rest, f"resume={vae_ckpt}"], root=tmp_path)
    with pytest.raises(CheckpointError, match=str(vae_ckpt)) as info:
        train(cfg, root=tmp_path)
    assert says in str(info.value)
    if encoder == "dgcnn":
        assert "model.head.encoder._target_" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_resume_refusal_from_the_cli_is_one_line(vae_ckpt, tiny_tiles, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, ["train", "debug=tiny", "model=vae", f"data.tile_dir={tiny_tiles}", "trainer.max_steps=2",
                       f"resume={vae_ckpt}"], "leaves nothing to train")
    assert list(tmp_path.iterdir()) == []


# -- F: sweeps ----------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, says", [
    (["model=vae,gan", "data.batch_size=0"], "data.batch_size must be positive, got 0"),
    (["model=vae", "data.batch_size=2,0"], "data.batch_size must be positive, got 0"),
    (["model=nope"], "Could not find 'model/nope'"),
    (["model=vae", "resume=/no/such.ckpt"], "/no/such.ckpt: checkpoint not found"),  # refused inside the app
])
def test_refused_sweep_is_one_line_and_leaves_no_multirun_folder(tiny_tiles, tmp_path, monkeypatch, capsys,
                                                                  overrides, says):
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, ["train", "-m", "debug=tiny", f"data.tile_dir={tiny_tiles}", "trainer.max_steps=2",
                       *overrides], says)
    assert list(tmp_path.iterdir()) == []


def test_augmentation_is_set_from_the_config(tiny_tiles):
    from pcgen.data.transforms import Augment
    from pcgen.train.datamodule import TileDataModule

    dm = TileDataModule(tile_dir=str(tiny_tiles), dataset={"num_points": 64, "augment": {
        "_target_": "pcgen.data.Augment", "rotate_z": True, "scale": [0.8, 1.2], "jitter": 0.02}})
    dm.setup("fit")
    assert dm.tiles.augment == Augment(rotate_z=True, scale=[0.8, 1.2], jitter=0.02)
    assert dm.train_set[0]["points"].shape == (64, 3)  # a dict here was called as a function mid-fit
    with pytest.raises(ConfigError, match="unknown key data.dataset.augment.rotate"):
        TileDataModule(tile_dir=str(tiny_tiles), dataset={"augment": {"rotate": True}})


@pytest.mark.parametrize("fraction", [0.99, 0.01])
def test_a_validation_share_that_leaves_one_side_empty_is_refused(tiny_tiles, fraction):
    from pcgen.train.datamodule import TileDataModule

    dm = TileDataModule(tile_dir=str(tiny_tiles), dataset={"num_points": 64}, val_fraction=fraction)
    with pytest.raises(ConfigError, match=f"data.val_fraction={fraction:g} of .* tiles leaves"):
        dm.setup("fit")  # validation was dropped without a word


def test_one_file_given_as_a_plain_value_is_one_file(tmp_path):
    """data.files=a.laz (no brackets) was read letter by letter ('a: sample LiDAR file not found')."""
    from pcgen.train.datamodule import TileDataModule

    path = str(tmp_path / "a.laz")
    assert TileDataModule(files=path).files == [path]
    assert TileDataModule(files=[path, path + "x"]).files == [path, path + "x"]
