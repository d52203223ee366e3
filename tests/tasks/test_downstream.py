"""The downstream augmentation benchmark: labelled tiles, the arms, determinism, the split, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from pcgen import datadir
from pcgen.cli import main
from pcgen.errors import ConfigError, InputError
from pcgen.tasks.downstream import arm_parts, check_split, load_settings, nested_budgets
from pcgen.tasks.labelled_tiles import IGNORE, ClassMap
from pcgen.tasks import downstream_report
from pcgen.train.segmentation import ClassicAugment, balanced_weights, iou, iou_ceiling

REPO = Path(__file__).resolve().parents[2]
TOPO_WATER = ["--set", "classes=ground_water"]


def training_file(name: str) -> str:
    return str(datadir.data_dir() / "training" / name)


def smoke(out, *extra):
    return ["eval-augment", "--downstream", "--train", str(datadir.lidar_file("Topography.laz")),
            "--reference", training_file("lastools_lake.laz"), "--out", str(out), "--set", "experiment=smoke",
            *TOPO_WATER, *extra]


def test_class_map_labels_codes_and_ignores_the_rest():
    with pytest.raises(ConfigError, match="class 'veg' wants ASPRS codes, e.g. veg: \\[3, 4, 5\\], got 'abc'"):
        ClassMap.from_mapping({"veg": "abc"})
    cm = ClassMap.from_mapping({"ground": [2], "vegetation": [3, 4, 5], "water": 9})
    assert cm.labels(np.array([0, 1, 2, 3, 4, 5, 6, 9, 18])).tolist() == [
        IGNORE, IGNORE, 0, 1, 1, 1, IGNORE, 2, IGNORE]
    with pytest.raises(ConfigError, match="code 2 is under both"):
        ClassMap.from_mapping({"ground": [2], "low": [2, 3]})
    with pytest.raises(ConfigError, match="0–255"):
        ClassMap.from_mapping({"ground": [256]})
    with pytest.raises(InputError, match="'water', which no point"):
        cm.check_present(np.array([10, 5, 0]), "the training files")


def test_iou_from_a_known_confusion():
    conf = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 0]])  # rows true, columns predicted
    scores = iou(conf)
    assert scores[0] == pytest.approx(8 / 11) and scores[1] == pytest.approx(9 / 12)
    assert np.isnan(scores[2])


def test_the_ceiling_calls_a_class_never_shown_where_it_costs_least():
    # water (40 test points) was never shown: called ground, ground's IoU is 100/140 and
    # vegetation's 1; called vegetation, 1 and 60/100. The first is higher.
    assert iou_ceiling([100, 60, 40], [0, 1]) == pytest.approx((100 / 140 + 1 + 0) / 3)
    assert iou_ceiling([100, 60, 40], [0, 1, 2]) == 1.0
    # a class the test set lacks is not scored; an untrained one it has scores 0
    assert iou_ceiling([100, 60, 0], [0]) == pytest.approx((100 / 160 + 0) / 2)
    assert iou_ceiling([5, 5], []) == 0.0


def test_the_report_names_a_class_no_scarce_set_held_and_the_ceiling():
    runs = [{"fraction": f, "seed": s, "arm": a, "real_tiles": 4, "synthetic_tiles": 0, "miou": 0.5,
             "iou": {"ground": 0.7, "vegetation": 0.8, "water": 0.0},
             "ceiling": 0.6 if (f, s) != (0.05, 1) else 0.5, "untrained": ["water"] if f == 0.05 else []}
            for f in (0.05, 0.2) for s in (0, 1) for a in ("real", "classic")]
    doc = {"runs": runs, "scored_classes": ["ground", "vegetation", "water"], "train_sites": ["a.laz"],
           "heldout_sites": ["b.laz"], "test_tiles": 3, "settings": {"tile_size": 40.0, "points": 1024, "seeds": [0, 1]}}
    c = downstream_report.ceilings(doc)
    assert c[0.05] == {"ceiling": pytest.approx(0.55), "seeds": 2, "missing": {"water": 2}}
    assert c[0.2]["missing"] == {}
    text = downstream_report.markdown(doc, downstream_report.summarize(doc))
    assert "5% budget: the scarce sets lack water in 2 of 2 seeds" in text and "above 55.0 mIoU" in text
    assert "20% budget: the scarce sets lack" not in text


def test_balanced_weights_follow_the_class_shares():
    labels = [np.array([0] * 60 + [IGNORE] * 5), np.array([0] * 30 + [1] * 10)]
    # shares 0.9 / 0.1: inverse square roots 1.054 / 3.162, divided by their mean 2.108
    assert np.allclose(balanced_weights(labels, 3, 0.5), [0.5, 1.5, 1.0])
    assert np.allclose(balanced_weights(labels, 3, 1.0), [0.2, 1.8, 1.0])
    assert np.allclose(balanced_weights(labels, 3, 0.0), [1.0, 1.0, 1.0])


def test_budgets_are_nested_and_seeded():
    b = nested_budgets(200, [0.05, 0.2], seed=4)
    assert len(b[0.05]) == 10 and len(b[0.2]) == 40
    assert b[0.05].tolist() == b[0.2][:10].tolist()
    assert b[0.2].tolist() == nested_budgets(200, [0.2], seed=4)[0.2].tolist()
    assert b[0.2].tolist() != nested_budgets(200, [0.2], seed=5)[0.2].tolist()


def test_classic_augmentation_keeps_labels_with_their_points():
    rng = np.random.default_rng(0)
    pts = rng.uniform(-20, 20, (500, 3)).astype(np.float32)
    pts[:, 2] = np.where(np.arange(500) < 250, 0.0, 15.0)  # ground at 0 m, crowns at 15 m
    lab = (np.arange(500) >= 250).astype(np.int64)
    aug = ClassicAugment(jitter=0.01, drop=0.5, scale=(0.9, 1.1))
    out, out_lab = aug(pts, lab, np.random.default_rng(1))
    assert out.shape == pts.shape and out_lab.shape == lab.shape
    # heights stay with their label (rotation is about z; scale at most 10 %)
    assert np.all(out[out_lab == 0, 2] < 0.1) and np.all(out[out_lab == 1, 2] > 13.4)
    again, _ = aug(pts, lab, np.random.default_rng(1))
    np.testing.assert_array_equal(out, again)
    # the horizontal spread is rotated, not lost
    assert np.linalg.norm(out[:, :2], axis=1).max() > 0.9 * np.linalg.norm(pts[:, :2], axis=1).max()


def test_arms_and_settings_are_checked():
    assert arm_parts("classic") == ("real", True) and arm_parts("pcgen+classic") == ("pcgen", True)
    with pytest.raises(ConfigError, match="arm 'diffusion'"):
        load_settings(["arms=[real,diffusion]"])
    with pytest.raises(ConfigError, match="train.max_steps must be >= 1"):
        load_settings(["train.max_steps=0"])
    with pytest.raises(ConfigError, match="gap_fraction"):
        load_settings(["gap_fraction=nan"])
    with pytest.raises(ConfigError, match="fractions"):
        load_settings(["fractions=[0.0]"])
    with pytest.raises(ConfigError, match="seeds must be integers 0..4294967295, got -1"):
        load_settings(["seeds=[0,-1]"])
    with pytest.raises(ConfigError, match=r"seeds must be a list, e.g. seeds=\[0, 1, 2\], got 1"):
        load_settings(["seeds=1"])
    with pytest.raises(ConfigError, match="arms must be a list, e.g. arms=.*, got 'foo'"):
        load_settings(["arms=foo"])
    with pytest.raises(ConfigError, match="fractions must be a list, e.g. fractions=.*, got 0.5"):
        load_settings(["fractions=0.5"])
    with pytest.raises(ConfigError, match="classifier.lr must be a finite number"):
        load_settings(["classifier.lr=nan"])
    # Hydra took a map for the classes group as nothing and kept landcover
    with pytest.raises(ConfigError, match=r"--set classes=\{ground:\[2\]\}: classes names a class map"):
        load_settings(["classes={ground:[2]}"])
    assert load_settings(["classes.ground=[2,8]"])["classes"]["ground"] == [2, 8]


def test_heldout_sites_are_never_training_sites():
    split = yaml.safe_load((REPO / "datasets" / "augment_split.yaml").read_text())
    fill = yaml.safe_load((REPO / "datasets" / "fill_split.yaml").read_text())
    held = {Path(p).name for p in split["heldout"]}
    assert held == {"pyfor_test.laz", "lastools_lake.laz"}
    assert "hawaii_ept" not in {Path(p).name for p in split["train"]}  # its class 5 covers the ground
    # neither the classifier's labelled tiles nor the gap model that makes pcgen's tiles saw them
    assert not held & {Path(p).name for p in split["train"]}
    assert not held & {Path(p).name for p in fill["train"]}
    assert held <= {Path(p).name for p in fill["heldout"]}
    with pytest.raises(InputError, match="lastools_lake.laz are also training sites"):
        check_split(["a/lastools_lake.laz", "b/x.laz"], ["c/lastools_lake.laz"])
    with pytest.raises(InputError, match="hawaii_ept"):
        check_split(["d/hawaii_ept/ept.json"], ["e/hawaii_ept/ept.json"])


def test_downstream_run_reports_every_arm_and_repeats_for_a_seed(tmp_path, capsys):
    arms = "arms=[real,classic,jitter,gmm,pcgen,pcgen+classic]"
    assert main(smoke(tmp_path / "a", "--set", arms, "--set", "fractions=[1.0]")) == 0
    doc = json.loads((tmp_path / "a" / "downstream.json").read_text())
    assert [r["arm"] for r in doc["runs"]] == ["real", "classic", "jitter", "gmm", "pcgen", "pcgen+classic"]
    assert doc["train_sites"] == ["Topography.laz"] and doc["heldout_sites"] == ["lastools_lake.laz"]
    assert doc["scored_classes"] == ["ground", "water"]
    for r in doc["runs"]:
        assert 0.0 <= r["miou"] <= 1.0
        assert r["untrained"] == [] and r["ceiling"] == 1.0  # Topography holds ground and water
        assert r["synthetic_tiles"] == (0 if r["arm"] in ("real", "classic") else r["real_tiles"])
    assert (tmp_path / "a" / "downstream.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 100% | pcgen |" in (tmp_path / "a" / "downstream.md").read_text()
    # the synthetic tiles and the real ones they came from, scored against the held-out tiles in metres
    dist = doc["synthetic_distances"]
    assert sorted(dist) == ["jitter", "pcgen", "real"]
    assert dist["pcgen"]["tiles"] == dist["real"]["tiles"] == doc["runs"][0]["real_tiles"]
    assert all(0.0 <= d["1nna"] <= 1.0 and d["mmd"] > 0 for d in dist.values())
    assert "| pcgen |" in (tmp_path / "a" / "downstream.md").read_text().split("s per tile")[1]
    # the same seed gives the same scores, the pcgen arm's generated tiles included
    assert main(smoke(tmp_path / "b", "--set", "arms=[classic,pcgen]", "--set", "fractions=[1.0]")) == 0
    again = json.loads((tmp_path / "b" / "downstream.json").read_text())
    first = {r["arm"]: r for r in doc["runs"]}
    for r in again["runs"]:
        assert r["iou"] == first[r["arm"]]["iou"]


def _fails(capsys, argv, out, must_say):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and must_say in err, err
    assert not out.exists()


def test_downstream_bad_input(tmp_path, capsys):
    out = tmp_path / "out"
    # a class map naming a class the training files do not have
    _fails(capsys, smoke(out, "--set", "classes=landcover"), out,
           "names 'vegetation', 'building', which no point of the training files carries")
    # held-out files without labels (lastools_sample is all class 0)
    argv = smoke(out)
    argv[argv.index("--reference") + 1] = training_file("lastools_sample.laz")
    _fails(capsys, argv, out, "the downstream test needs labelled held-out tiles")
    # a held-out site that is also a training site
    argv = smoke(out)
    argv[argv.index("--reference") + 1] = str(datadir.lidar_file("Topography.laz"))
    _fails(capsys, argv, out, "also training sites")


@pytest.mark.parametrize("option, says", [
    (["--n", "5"], "--n sets up the distance comparison; --downstream ignores it: its synthetic tiles per real "
                   "one are --set synthetic_per_tile=K"),
    (["--points", "17"], "--points sets up the distance comparison; --downstream ignores it: use --set points=N"),
    (["--tile-size", "3"], "--tile-size sets up the distance comparison; --downstream ignores it: "
                           "use --set tile_size=M"),
    (["--emd"], "--emd sets up the distance comparison; --downstream ignores it"),
    (["--frame", "unit"], "--frame sets up the distance comparison; --downstream ignores it"),
    (["--frame", "metres"], "--frame sets up the distance comparison"),  # given explicitly, even the default
    (["--seed", "9"], "--seed sets up the distance comparison; --downstream ignores it: use --set seeds=[S,...]"),
])
def test_downstream_refuses_the_options_of_the_distance_comparison(tmp_path, capsys, option, says):
    out = tmp_path / "out"
    _fails(capsys, smoke(out, "--set", "arms=[real,classic]", *option), out, says)


def test_downstream_no_model_drops_every_pcgen_arm(tmp_path, capsys, monkeypatch):
    from pcgen.tasks import generators

    def no_model(*args, **kwargs):
        raise AssertionError("--no-model loaded the gap model")

    monkeypatch.setattr(generators, "load_generator", no_model)
    out = tmp_path / "a"
    assert main(smoke(out, "--no-model", "--set", "arms=[real,pcgen,pcgen+classic]")) == 0
    doc = json.loads((out / "downstream.json").read_text())
    assert [r["arm"] for r in doc["runs"]] == ["real"] and doc["settings"]["arms"] == ["real"]
    assert "pcgen" not in doc["seconds_per_tile"] and "pcgen" not in doc["synthetic_distances"]


def test_downstream_no_model_without_an_arm_left_is_refused_up_front(tmp_path, capsys, monkeypatch):
    from pcgen.tasks import downstream

    def never(*args, **kwargs):
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(downstream, "run_benchmark", never)
    out = tmp_path / "out"
    for arms in ("arms=[pcgen]", "arms=[pcgen,pcgen+classic]"):
        _fails(capsys, smoke(out, "--no-model", "--set", arms), out,
               "no arm left: --no-model drops every pcgen arm")


@pytest.mark.parametrize("override, says", [
    ("classic.jitter=-1", "classic.jitter must be >= 0, got -1"),
    ("classic.jitter=nan", "classic.jitter must be a finite number"),
    ("classic.scale=[5,1]", "classic.scale must be [low, high] with low <= high"),
    ("classic.scale=[0,1]", "classic.scale must be > 0, got 0"),
    ("classic.scale=1.1", "classic.scale wants a list of 2 numbers"),
    ("classic.drop=1.5", "classic.drop must be <= 1"),
    ("classic.rotate=maybe", "classic.rotate must be true or false"),
    ("classifier.scale=[0,0,0]", "classifier.scale must be > 0, got 0"),
    ("classifier.scale=[20,20]", "classifier.scale wants a list of 3 numbers"),
    ("classifier.scale=[20,inf,10]", "classifier.scale must be a finite number"),
    ("seeds=[0,0]", "seeds repeats 0: give each once"),
    ("seeds=[1,0,1]", "seeds repeats 1"),
    ("fractions=[0.2,0.2]", "fractions repeats 0.2"),
    ("arms=[real,classic,real]", "arms repeats real"),
])
def test_classic_classifier_and_repeated_settings_are_checked(override, says):
    with pytest.raises(ConfigError) as exc:
        load_settings([override])
    assert says in str(exc.value)


def test_the_checked_list_settings_come_back_as_numbers():
    cfg = load_settings(["classic.scale=[0.8,1]", "classifier.scale=[10,10,5]", "classic.jitter=0"])
    assert cfg["classic"]["scale"] == [0.8, 1.0] and cfg["classifier"]["scale"] == [10.0, 10.0, 5.0]
    assert cfg["classic"]["jitter"] == 0.0 and cfg["seeds"] == [0, 1, 2]


def test_repeated_seeds_are_refused_by_the_cli(tmp_path, capsys):
    out = tmp_path / "out"
    _fails(capsys, smoke(out, "--set", "seeds=[0,0]"), out, "seeds repeats 0")


def test_downstream_ckpt_path_needs_no_override_quoting(fill_ckpt, tmp_path, capsys):
    odd = tmp_path / "ck" / "it's [1], x=y.ckpt"
    odd.parent.mkdir()
    odd.write_bytes(Path(fill_ckpt).read_bytes())
    out = tmp_path / "a"
    assert main(smoke(out, "--set", "arms=[pcgen]", "--ckpt", str(odd))) == 0
    doc = json.loads((out / "downstream.json").read_text())
    assert doc["settings"]["ckpt"] == str(odd) and [r["arm"] for r in doc["runs"]] == ["pcgen"]
    assert doc["runs"][0]["synthetic_tiles"] > 0
    capsys.readouterr()
    # a missing one is named as given
    missing = tmp_path / "ck" / "it's gone.ckpt"
    _fails(capsys, smoke(tmp_path / "b", "--set", "arms=[pcgen]", "--ckpt", str(missing)), tmp_path / "b",
           f"{missing}: checkpoint not found")


def test_downstream_output_among_its_settings_inputs_is_refused(tmp_path, capsys, fill_ckpt):
    """The checkpoint of --set ckpt= and the --config-dir folder are inputs as much as --ckpt."""
    (tmp_path / "ck").mkdir()
    ckpt = tmp_path / "ck" / "fill.ckpt"
    ckpt.write_bytes(Path(fill_ckpt).read_bytes())
    assert main(smoke(tmp_path / "ck", "--set", "arms=[pcgen]", "--set", f"ckpt={ckpt}", "--overwrite")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"output would contain the input {ckpt}" in err, err
    (tmp_path / "conf" / "classes").mkdir(parents=True)
    (tmp_path / "conf" / "classes" / "mine.yaml").write_text("ground: [2]\nvegetation: [3, 4, 5]\n")
    _fails(capsys, smoke(tmp_path / "conf" / "out", "--set", "arms=[real]", "--config-dir",
                         str(tmp_path / "conf"), "--set", "classes=mine"),
           tmp_path / "conf" / "out", "output lies inside the input")
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["fill.ckpt"]


def test_downstream_ckpt_needs_a_pcgen_arm(tmp_path, capsys, fill_ckpt):
    out = tmp_path / "out"
    _fails(capsys, smoke(out, "--set", "arms=[real,classic]", "--ckpt", str(fill_ckpt)), out,
           "--ckpt sets up the pcgen arms; arms=['real', 'classic'] has none")
