"""`pcgen augment` / `pcgen eval-augment`: options the checkpoint or mode would ignore are refused;
the manifest's tile statistics are those of the written files."""

from __future__ import annotations

import json

import laspy
import numpy as np
import pytest

from pcgen.cli import main
from pcgen.tasks.augment import tile_stats


def _fails(capsys, argv, out, must_say):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and must_say in err and "Traceback" not in err, err
    assert not out.exists()


@pytest.mark.parametrize("ckpt, option, says", [
    ("fill", ["--points", "100"], "--points applies to unconditional checkpoints; this one is conditional"),
    ("fill", ["--tile-size", "40"], "--tile-size applies to unconditional checkpoints; this one is conditional"),
    ("shipped", ["--points", "100"], "--points applies to unconditional checkpoints; this one is conditional"),
    ("uncond", ["--gap-fraction", "0.3"], "--gap-fraction applies to conditional checkpoints; "
                                          "this one is unconditional"),
])
def test_augment_refuses_an_option_of_the_other_kind_of_checkpoint(crops, fill_ckpt, uncond_ckpt, tmp_path,
                                                                   capsys, ckpt, option, says):
    out = tmp_path / "aug"
    argv = ["augment", str(out), "--n", "1", *option]
    if ckpt != "shipped":
        argv += ["--ckpt", str(fill_ckpt if ckpt == "fill" else uncond_ckpt)]
    if ckpt != "uncond":
        argv += ["--condition", str(crops)]
    _fails(capsys, argv, out, says)


def test_augment_records_the_defaults_it_used(crops, fill_ckpt, uncond_ckpt, tmp_path, capsys):
    cond, uncond = tmp_path / "c", tmp_path / "u"
    assert main(["augment", str(cond), "--ckpt", str(fill_ckpt), "--n", "1", "--condition", str(crops),
                 "-q"]) == 0
    assert capsys.readouterr() == ("", "")  # --quiet: nothing but errors
    assert main(["augment", str(uncond), "--ckpt", str(uncond_ckpt), "--n", "1", "--points", "64"]) == 0
    c = json.loads((cond / "manifest.json").read_text())["command"]
    u = json.loads((uncond / "manifest.json").read_text())["command"]
    assert c["gap_fraction"] == 0.3 and c["tile_size"] is None and c["points"] is None
    assert u["tile_size"] == 40.0 and u["gap_fraction"] is None
    las = laspy.read(uncond / "synthetic_00000.laz")
    assert abs(np.ptp(np.c_[las.x, las.y], axis=0).max() - 40.0) < 0.02


def _matches_file(folder, tile) -> bool:
    """The manifest's stats of a tile equal those of its file as read back."""
    las = laspy.read(folder / tile["file"])
    stats = tile_stats(tile["file"], np.c_[las.x, las.y, las.z], tile["generated"]).__dict__
    assert {k: tile[k] for k in stats} == stats
    return True


def test_augment_manifest_stats_are_those_of_the_written_tiles(crops, fill_ckpt, uncond_ckpt, tmp_path):
    out = tmp_path / "u"
    # a side off the 1 cm grid: the unrounded samples' extent is 33.3333, the file's 33.33
    assert main(["augment", str(out), "--ckpt", str(uncond_ckpt), "--n", "3", "--points", "300",
                 "--tile-size", "33.3333"]) == 0
    tiles = json.loads((out / "manifest.json").read_text())["tiles"]
    assert all(_matches_file(out, tile) for tile in tiles)
    assert max(max(t["extent_x"], t["extent_y"]) for t in tiles) == 33.33
    cond = tmp_path / "c"
    assert main(["augment", str(cond), "--ckpt", str(fill_ckpt), "--n", "1", "--condition", str(crops)]) == 0
    tile = json.loads((cond / "manifest.json").read_text())["tiles"][0]
    assert _matches_file(cond, tile)


def test_tile_density_keeps_significant_digits():
    rng = np.random.default_rng(0)
    sparse = np.c_[rng.uniform(0, 3000, (50, 2)), rng.uniform(0, 10, 50)]  # 50 points over ~9e6 ft²
    sparse[:2, :2] = [[0, 0], [3000, 3000]]
    assert tile_stats("a.laz", sparse, 50).density == pytest.approx(50 / 9e6, rel=1e-3)
    dense = np.c_[rng.uniform(0, 1, (5000, 2)), np.zeros(5000)]
    dense[:2, :2] = [[0, 0], [1, 1]]
    assert tile_stats("b.laz", dense, 0).density == 5000.0


def test_eval_augment_no_model_refuses_a_checkpoint(crops, fill_ckpt, tmp_path, capsys):
    out = tmp_path / "ea"
    _fails(capsys, ["eval-augment", "--reference", str(crops), "--train", str(crops), "--out", str(out),
                    "--no-model", "--ckpt", str(fill_ckpt), "--n", "2", "--points", "64"], out,
           "--ckpt sets up the model; --no-model scores the baselines only")


def test_eval_augment_fills_the_defaults_of_the_distance_comparison(crops, tmp_path, capsys):
    out = tmp_path / "ea"
    assert main(["eval-augment", "--reference", str(crops), "--train", str(crops), "--out", str(out),
                 "--no-model", "--n", "2", "--points", "64"]) == 0
    doc = json.loads((out / "eval_augment.json").read_text())
    assert doc["tile_size"] == 40.0 and doc["seed"] == 0 and doc["protocol"]["frame"] != "unit"
    assert "emd" not in doc["results"]["jitter"]
