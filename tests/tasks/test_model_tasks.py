"""Model-backed tasks with tiny checkpoints: fill with a conditional head, augmentation, evaluations."""

from __future__ import annotations

import json

import laspy
import numpy as np
import pytest
import shapely
import torch

from pcgen.cli import main
from pcgen.tasks.gmm import fit_gmm, select_gmm
from pcgen.tasks.masks import polygons_to_geojson

from .conftest import sha256


def test_fill_with_a_conditional_checkpoint(holed_tile, fill_ckpt, tmp_path, capsys):
    path, hole, removed = holed_tile
    mask = tmp_path / "m.geojson"
    mask.write_text(json.dumps(polygons_to_geojson([hole])))
    out = tmp_path / "o.laz"
    assert main(["fill", str(path), str(out), "--ckpt", str(fill_ckpt), "--mask", str(mask), "-q"]) == 0
    las = laspy.read(out)
    n = len(laspy.read(path).points)
    new = np.c_[las.x, las.y, las.z][n:]
    assert 0.6 * len(removed) < len(new) < 1.4 * len(removed)
    assert shapely.contains_xy(hole.buffer(0.01), new[:, 0], new[:, 1]).all()
    assert np.isfinite(new).all()


def test_unconditional_checkpoint_cannot_fill(holed_tile, uncond_ckpt, tmp_path, capsys):
    path, _, _ = holed_tile
    h = sha256(path)
    assert main(["fill", str(path), str(tmp_path / "o.laz"), "--ckpt", str(uncond_ckpt)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unconditional flow_matching head" in err
    assert not (tmp_path / "o.laz").exists() and sha256(path) == h


def test_eval_fill_writes_table_json_and_png(crops, fill_ckpt, tmp_path, capsys):
    out = tmp_path / "ev"
    assert main(["eval-fill", str(crops), "--out", str(out), "--ckpt", str(fill_ckpt), "--cuts", "1",
                 "--gap-size", "8", "--tau", "1,2", "-q"]) == 0
    table = capsys.readouterr().out
    assert "| pcgen |" in table and "| mirror |" in table and "| canopy |" in table and "| surface |" in table
    doc = json.loads((out / "eval_fill.json").read_text())
    for method in ("pcgen", "mirror", "hybrid", "canopy", "surface"):
        s = doc["summary"][method]
        assert s["cuts"] == 2
        assert 0 <= s["fscore@1"] <= s["fscore@2"] <= 1
        assert np.isfinite(s["chamfer"]) and np.isfinite(s["emd"])
        assert -1 <= s["uncertainty_spearman"] <= 1  # K follows pcgen fill's default of 8 draws
        if method != "pcgen":  # the tiny checkpoint is untrained; the baselines must be close
            assert 0 < s["chamfer"] < 3 and 0 < s["emd"] < 6
    assert (out / "eval_fill.md").read_text().count("|") > 20
    assert (out / "eval_fill.png").stat().st_size > 10_000


def test_gmm_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0, 0], [4, 4, 0], [-4, 3, 2]], dtype=torch.float64)
    x = torch.cat([torch.randn(400, 3, dtype=torch.float64, generator=g) * 0.4 + c for c in centres])
    x = x[torch.randperm(len(x), generator=g)]
    best, scores = select_gmm(x[:960], x[960:], ks=(1, 3, 6))
    assert best.k == 3 and scores[3] > scores[1] + 1.0
    found = best.means[torch.argsort(best.means[:, 0])]
    assert torch.allclose(found, centres[torch.argsort(centres[:, 0])], atol=0.15)
    one = fit_gmm(x, 1)
    assert torch.allclose(one.covariances[0], torch.cov(x.T), rtol=1e-3, atol=1e-3)
    s = best.sample(3000, torch.Generator().manual_seed(1))
    assert abs(float(best.log_prob(s).mean()) - float(best.log_prob(x).mean())) < 0.2


def test_augment_unconditional(uncond_ckpt, tmp_path):
    out = tmp_path / "aug"
    assert main(["augment", str(out), "--ckpt", str(uncond_ckpt), "--n", "3", "--points", "200",
                 "--preview", "--ply"]) == 0
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))  # .pcgen-manifest.json: pcgen's own record
    assert names == ["manifest.json", "preview.png"] + sorted(
        [f"synthetic_{i:05d}.{e}" for i in range(3) for e in ("laz", "ply")])
    las = laspy.read(out / "synthetic_00000.laz")
    assert len(las.points) == 200 and las.header.parse_crs() is None
    xyz = np.c_[las.x, las.y, las.z]
    assert np.allclose(xyz.min(0), 0, atol=0.01) and abs((xyz[:, :2].max(0)).max() - 40.0) < 0.02
    man = json.loads((out / "manifest.json").read_text())
    assert man["seed"] == 0 and len(man["checkpoint_sha256"]) == 64 and man["tiles"][0]["points"] == 200
    again = tmp_path / "again"
    assert main(["augment", str(again), "--ckpt", str(uncond_ckpt), "--n", "3", "--points", "200"]) == 0
    assert np.array_equal(laspy.read(again / "synthetic_00002.laz").points.array,
                          laspy.read(out / "synthetic_00002.laz").points.array)  # seeded: reproducible


def test_augment_conditional_reimagines_real_tiles(crops, fill_ckpt, tmp_path):
    out = tmp_path / "aug"
    assert main(["augment", str(out), "--ckpt", str(fill_ckpt), "--n", "2", "--condition", str(crops)]) == 0
    las = laspy.read(out / "synthetic_00000.laz")
    assert las.header.parse_crs().to_epsg() == 2949
    assert 0 < np.asarray(las["generated"]).sum() < len(las.points)


def test_augment_labelled_tiles_carry_the_class_of_their_source(crops, topo, tmp_path):
    from scipy.spatial import cKDTree

    out = tmp_path / "aug"
    assert main(["augment", str(out), "--n", "2", "--condition", str(crops), "--labels", "--seed", "3"]) == 0
    man = json.loads((out / "manifest.json").read_text())
    ground = topo.xyz[np.asarray(topo.attributes["classification"]) == 2]
    tree = cKDTree(ground[:, :2])
    for i, tile in enumerate(man["tiles"]):
        las = laspy.read(out / f"synthetic_{i:05d}.laz")
        src = laspy.read(tile["condition"])
        new = np.asarray(las["generated"]) == 1
        cls = np.asarray(las.classification)
        assert new.sum() > 50 and set(np.unique(cls[new])) <= set(np.unique(src.classification))
        assert np.asarray(las.synthetic)[new].all() and not np.asarray(las.synthetic)[~new].any()
        assert tile["generated_classes"] == {str(c): int((cls[new] == c).sum()) for c in np.unique(cls[new])}
        # a generated point labelled ground lies on the site's real ground; the others stand above it
        xyz = np.c_[las.x, las.y, las.z][new]
        _, j = tree.query(xyz[:, :2])
        above = xyz[:, 2] - ground[j, 2]
        # vegetation labels stand clear of the ground (upper quartile; the shrub layer is low)
        on_ground = np.median(np.abs(above[cls[new] == 2]))
        assert on_ground < 0.5 and np.percentile(above[cls[new] == 1], 75) > 2.0


def test_augment_labels_need_a_class_source(crops, uncond_ckpt, tmp_path, capsys):
    out = tmp_path / "aug"
    assert main(["augment", str(out), "--ckpt", str(uncond_ckpt), "--n", "1", "--labels"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "generates points without a class" in err and not out.exists()
    blank = tmp_path / "blank.laz"
    las = laspy.read(next(crops.glob("*.laz")))
    las.classification = np.zeros(len(las.points), np.uint8)
    las.write(blank)
    assert main(["augment", str(out), "--n", "1", "--condition", str(blank), "--labels"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "blank.laz" in err and "no classified points" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, says", [
    (["--n", "0"], "argument --n: must be >= 1"),
    ([], "give real tiles with --condition"),
    (["--gap-fraction", "1"], "argument --gap-fraction: must be < 1"),
    (["--gap-fraction", "1e-6", "--condition", "{crop}"], "no box of 1e-06 of the tile's side held a point"),
])
def test_augment_bad_input(fill_ckpt, crops, tmp_path, capsys, argv, says):
    out = tmp_path / "aug"
    argv = [a.format(crop=next(crops.glob("*.laz"))) for a in argv]
    assert main(["augment", str(out), "--ckpt", str(fill_ckpt)] + argv) == 2
    assert says in capsys.readouterr().err and not out.exists()


def test_eval_augment_baselines(crops, tmp_path, capsys):
    out = tmp_path / "ea"
    assert main(["eval-augment", "--reference", str(crops), "--train", str(crops), "--out", str(out),
                 "--no-model", "--n", "2", "--points", "64"]) == 0
    doc = json.loads((out / "eval_augment.json").read_text())
    assert set(doc["results"]) == {"jitter", next(k for k in doc["results"] if k.startswith("gmm"))}
    for r in doc["results"].values():
        assert 0 <= r["chamfer"]["cov"] <= 1 and 0 <= r["chamfer"]["1nna"] <= 1


def test_eval_augment_with_an_unconditional_checkpoint_too_small_for_the_tiles(crops, uncond_ckpt, tmp_path,
                                                                                capsys):
    # the tiny head's unit-cube samples, placed as 40 m tiles, fill no whole tile: one line, no output
    out = tmp_path / "ea"
    assert main(["eval-augment", "--reference", str(crops), "--train", str(crops), "--out", str(out),
                 "--ckpt", str(uncond_ckpt), "--n", "2", "--points", "64"]) == 2
    err = capsys.readouterr().err
    assert "give 0 whole tiles; need at least 2" in err and "uncond.ckpt" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("shape, says", [
    ("same", "same.las: 0 of its points lie outside the re-imagined box"),
    ("line", "line.las: points are collinear"),
])
def test_augment_names_a_condition_tile_it_cannot_refill(fill_ckpt, tmp_path, capsys, shape, says):
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales, header.offsets = [0.01] * 3, [0, 0, 0]
    las = laspy.LasData(header)
    t = np.linspace(0, 100, 1000)
    las.x, las.y = (np.full(1000, 10.0), np.full(1000, 20.0)) if shape == "same" else (t, t)
    las.z = np.zeros(1000)
    las.write(tmp_path / f"{shape}.las")
    out = tmp_path / "aug"
    assert main(["augment", str(out), "--ckpt", str(fill_ckpt), "--n", "2",
                 "--condition", str(tmp_path / f"{shape}.las")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and not out.exists()
