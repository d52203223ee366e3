"""Issue 14, class 4, training and evaluation: bad settings are one line, exit 2, nothing written.

``pcgen train`` / ``train.py`` with ``model.optimizer.lr=abc``, ``trainer.max_steps=-5`` or a
negative ``num_points`` is refused before Hydra creates ``outputs/<run>/``; ``pcgen evaluate``
with a device the machine lacks is refused before anything is read or written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pcgen.cli import main
from pcgen.errors import ConfigError
from pcgen.train.run import build_module, compose_config, validate_config

ROOT = Path(__file__).resolve().parents[1]


def _one_line(capsys, argv, says):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"pcgen {argv[0]}: error: "), err
    assert says in err, err


@pytest.mark.parametrize("override, says", [
    ("model.optimizer.lr=abc", "model.optimizer.lr must be a number, got 'abc'"),
    ("model.optimizer.lr=-1e-3", "model.optimizer.lr must be positive, got -0.001"),
    ("trainer.max_steps=-5", "trainer.max_steps must be -1 (no limit) or 1..1000000000, got -5"),
    ("trainer.max_steps=0", "trainer.max_steps must be -1 (no limit) or 1..1000000000, got 0"),
    ("trainer.max_steps=99999999999999999999", "must be -1 (no limit) or 1..1000000000, got 99999999999999999999"),
    ("trainer.max_steps=-1", "trainer.max_steps=-1 and trainer.max_epochs=-1 with no trainer.max_time: the run "
                             "would never stop"),
    ("model.ema_decay=2", "model.ema_decay must be in [0, 1) (0 or null: no average), got 2"),
    ("data.tile_dir=/no/such/tiles", "/no/such/tiles: tile folder not found (data.tile_dir)"),
    ("--bogus", "unknown option --bogus: pcgen train takes overrides (key=value) and Hydra's flags"),
    ("data=fill", "data=fill feeds each gap's context to the head, and model.kind=diffusion has no context "
                  "encoder: use experiment=fill"),
    ("trainer.max_steps=2.5", "trainer.max_steps must be an integer, got 2.5"),
    ("data.dataset.num_points=-1", "data.dataset.num_points must be positive, got -1"),
    ("data.batch_size=0", "data.batch_size must be positive, got 0"),
    ("data.num_points=-1", "no key 'data.num_points' to override; did you mean data.dataset.num_points?"),
    ("optim.lr=1e-3", "no key 'optim.lr' to override; did you mean model.optimizer.lr?"),  # was "Could not override"
    ("model.head.bogus=1", "no key 'model.head.bogus' to override"),
    ("seed=-1", "seed must be 0..4294967295, got -1"),
    ("seed=nan", "seed must be an integer, got nan"),
    ("trainer.gradient_clip_val=nan", "trainer.gradient_clip_val must be a number, got nan"),
    ("model=lgan", "model.autoencoder_ckpt is required: set it (model.autoencoder_ckpt=...)"),
    ("+data.tile_options.bufer=5", "unknown key data.tile_options.bufer (known: size, buffer,"),
    ("+data.dataset.bogus=1", "unknown key data.dataset.bogus (known: num_points, sampling,"),
])
def test_pcgen_train_bad_setting(tmp_path, monkeypatch, capsys, override, says):
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, ["train", override, "trainer.max_steps=1" if "max_steps" not in override else "seed=0"],
              says)
    assert list(tmp_path.iterdir()) == []  # no outputs/<run>/ left behind


def test_train_py_bad_lr_leaves_no_run_folder(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "model.optimizer.lr=abc"], cwd=tmp_path,
                          check=False, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "train.py: error: model.optimizer.lr must be a number, got 'abc'"
    assert list(tmp_path.iterdir()) == []


def test_refused_inside_the_app_removes_its_run_folder(tmp_path, monkeypatch, capsys):
    """A hydra.* override skips the pre-check; the app's own check then removes the fresh run folder."""
    monkeypatch.chdir(tmp_path)
    _one_line(capsys, ["train", "hydra.job.name=train", "model.optimizer.lr=0"],
              "model.optimizer.lr must be positive, got 0")
    assert list(tmp_path.iterdir()) == []


def test_good_defaults_pass_and_bad_target_is_a_config_error(tmp_path):
    cfg = compose_config(["model=vae", "debug=tiny"], root=tmp_path)
    validate_config(cfg)  # the packaged defaults are valid
    cfg.model.optimizer._target_ = "torch.optim.NoSuchOptimizer"
    with pytest.raises(ConfigError, match="cannot build model.optimizer"):
        build_module(cfg)


@pytest.mark.parametrize("device, says", [
    ("cuda:7", "device 'cuda:7' does not exist"),
    ("banana", "device must be cpu, cuda or cuda:N, got 'banana'"),
])
def test_evaluate_missing_device(tmp_path, capsys, device, says):
    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    out = tmp_path / "report.json"
    _one_line(capsys, ["evaluate", "generated=g.npy", "reference=r.npy", f"out={out}", f"device={device}"], says)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("setting, says", [
    ("num_points=0", "num_points must be >= 1"),
    ("num_points=nan", "num_points must be an integer, got nan"),
    ("max_clouds=-1", "max_clouds must be >= 2"),
    ("pr_k=0", "pr_k must be >= 1"),
    ("jsd_resolution=100000", "jsd_resolution must be >= 2 and <= 256"),
    ("emd_eps=inf", "emd_eps must be > 0 and <= 1"),
    ("emd_squared=maybe", "emd_squared must be true or false, got 'maybe'"),
    ("seed=-1", "seed must be >= 0"),
    ("batch_size=0", "batch_size must be >= 1"),
    ("out=null", "out must be a file name for the report"),
])
def test_evaluate_bad_settings(tmp_path, capsys, setting, says):
    _one_line(capsys, ["evaluate", "generated=g.npy", "reference=r.npy", f"out={tmp_path / 'o.json'}",
                       setting], says)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_pr_k_past_the_set_size(tmp_path, capsys):
    """k-NN balls over a whole set hold every cloud: precision and recall read 1 whatever the clouds."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp_path / "g.npy", rng.normal(size=(4, 32, 3)).astype("f4"))
    np.save(tmp_path / "r.npy", rng.normal(size=(5, 32, 3)).astype("f4"))
    _one_line(capsys, ["evaluate", f"generated={tmp_path / 'g.npy'}", f"reference={tmp_path / 'r.npy'}",
                       f"out={tmp_path / 'o.json'}", "pr_k=4"],
              "pr_k=4 needs more than 4 clouds in each set; got 4 generated and 5 reference (use pr_k <= 3)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.npy", "r.npy"]


def test_a_config_folder_without_yaml(tmp_path, capsys):
    (tmp_path / "conf").mkdir()
    _one_line(capsys, ["evaluate", "generated=g.npy", "reference=r.npy", f"out={tmp_path / 'o.json'}",
                       "--config-dir", str(tmp_path / "conf")], "config folder holds no .yaml file")


def test_evaluate_replaces_only_its_own_report(tmp_path, capsys):
    import numpy as np

    from pcgen.cli import main

    rng = np.random.default_rng(0)
    g, r = tmp_path / "g.npy", tmp_path / "r.npy"
    np.save(g, rng.normal(size=(4, 32, 3)).astype("f4"))
    np.save(r, rng.normal(size=(5, 32, 3)).astype("f4"))
    before = g.read_bytes()
    _one_line(capsys, ["evaluate", f"generated={g}", f"reference={r}", f"out={g}"], "output would overwrite its input")
    assert g.read_bytes() == before
    mine = tmp_path / "mine.las"
    mine.write_text("a user's file")
    _one_line(capsys, ["evaluate", f"generated={g}", f"reference={r}", f"out={mine}", "--overwrite"],
              "output file exists and pcgen did not write it")
    assert mine.read_text() == "a user's file"
    out = tmp_path / "o.json"
    assert main(["evaluate", f"generated={g}", f"reference={r}", f"out={out}"]) == 0
    _one_line(capsys, ["evaluate", f"generated={g}", f"reference={r}", f"out={out}"], "pass --overwrite")
    assert main(["evaluate", f"generated={g}", f"reference={r}", f"out={out}", "seed=3", "--overwrite"]) == 0
    assert json.loads(out.read_text())["generator"] == "pcgen evaluate"


def test_evaluate_config_dir_wants_a_whole_config(tmp_path, capsys):
    """A partial DIR/config.yaml failed as "Could not override 'generated'"."""
    import numpy as np

    from pcgen.tasks import eval_generation

    rng = np.random.default_rng(0)
    g, r = tmp_path / "g.npy", tmp_path / "r.npy"
    np.save(g, rng.normal(size=(4, 16, 3)).astype("f4"))
    np.save(r, rng.normal(size=(5, 16, 3)).astype("f4"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("metrics: [chamfer]\n")
    _one_line(capsys, ["evaluate", "--config-dir", str(mine), f"generated={g}", f"reference={r}",
                       f"out={tmp_path / 'o.json'}"],
              "mine/config.yaml: it replaces pcgen's evaluate config whole and lacks generated, reference")
    assert not (tmp_path / "o.json").exists()
    packaged = Path(eval_generation.__file__).parents[1] / "conf" / "evaluate" / "config.yaml"
    (mine / "config.yaml").write_text(packaged.read_text().replace("metrics: [chamfer, emd]", "metrics: [chamfer]"))
    assert main(["evaluate", "--config-dir", str(mine), f"generated={g}", f"reference={r}",
                 f"out={tmp_path / 'o.json'}"]) == 0
    assert "emd" not in json.loads((tmp_path / "o.json").read_text())


@pytest.mark.parametrize("override, says", [
    ("trainer.precision=foo", "trainer settings refused: Precision 'foo' is invalid"),
    ("trainer.devices=0", "trainer settings refused: `Trainer(devices=0)` value is not a valid input"),
])
def test_trainer_settings_lightning_refuses_are_one_line(make_cfg, tmp_path, monkeypatch, capsys, override, says):
    monkeypatch.chdir(tmp_path)
    tiles = make_cfg("vae", "pointnet").data.tile_dir
    _one_line(capsys, ["train", "debug=tiny", "model=vae", f"data.tile_dir={tiles}", "trainer.max_steps=1",
                       override], says)
    assert list(tmp_path.iterdir()) == []  # the run folder Hydra made is gone again
