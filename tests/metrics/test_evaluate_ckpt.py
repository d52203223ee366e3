"""``pcgen evaluate ckpt=... data=...``: a real (tiny) trained head against real tiles."""

from __future__ import annotations

import json

import pytest

from pcgen.cli import main


def evaluate_main(args: list[str]) -> int:
    """``pcgen evaluate ARGS...`` in this process."""
    return main(["evaluate", *args])


@pytest.fixture(scope="module")
def trained(make_cfg, tiny_tiles, tmp_path_factory):
    from pcgen.train.run import train

    root = tmp_path_factory.mktemp("vae_run")
    cfg = make_cfg("vae", "pointnet",
                   ["trainer.max_steps=2", "callbacks.last.every_n_train_steps=2",
                    "callbacks.best.every_n_train_steps=2", "callbacks.samples.every_n_steps=0"],
                   root=root, callbacks="default")
    train(cfg, root=root)
    return root / "checkpoints" / "last.ckpt", tiny_tiles


def test_checkpoint_evaluation_writes_report(trained, tmp_path):
    ckpt, tiles = trained
    out = tmp_path / "report.json"
    assert evaluate_main([f"ckpt={ckpt}", f"data={tiles}", f"out={out}", "max_clouds=4",
                          "batch_size=2"]) == 0
    report = json.loads(out.read_text())
    assert report["num_generated"] == report["num_reference"] == 4
    assert report["num_points"] == 64  # the checkpoint's points per sample
    for m in ("chamfer", "emd"):
        assert 0.0 <= report[m]["1nna"] <= 1.0 and report[m]["mmd"] > 0
    assert 0.0 <= report["jsd"] <= 1.0


def test_bad_checkpoint_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"not a checkpoint")
    (tmp_path / "tiles").mkdir()
    out = tmp_path / "report.json"
    assert evaluate_main([f"ckpt={bad}", f"data={tmp_path / 'tiles'}", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pcgen evaluate: error:") and "broken.ckpt" in err
    assert not out.exists()
