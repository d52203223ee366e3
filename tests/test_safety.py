"""Issue 14, class 1: no command may delete, replace or write beside its own inputs.

Every case: exit 2, one line on stderr, every file under the test folder byte-identical
afterwards and nothing new left behind (no staging folders, no locks, no partial output).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pcgen import datadir
from pcgen.atomic import MANIFEST, atomic_dir
from pcgen.cli import main
from pcgen.errors import OutputError


def _snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def _refused(capsys, root, argv, must_say):
    before = _snapshot(root)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"pcgen {argv[0]}: error:"), err
    assert must_say in err, err
    assert _snapshot(root) == before


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name in ("warsaw_small.las", "simple.las"):
        shutil.copy(datadir.lidar_file(name), d / name)
    return d


def test_tile_into_its_own_input_folder(folder, tmp_path, capsys):
    _refused(capsys, tmp_path, ["tile", str(folder), str(folder), "--size", "1000", "--overwrite"],
             "would overwrite its input")


def test_tile_into_an_ancestor_of_an_input(folder, tmp_path, capsys):
    _refused(capsys, tmp_path, ["tile", str(folder / "simple.las"), str(tmp_path), "--overwrite"],
             "would contain the input")


def test_tile_into_a_folder_inside_the_input(folder, tmp_path, capsys):
    _refused(capsys, tmp_path, ["tile", str(folder), str(folder / "tiles")], "lies inside the input")


def test_dot_dot_output_with_overwrite(folder, tmp_path, capsys, monkeypatch):
    sub = folder / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    _refused(capsys, tmp_path, ["tile", str(folder / "simple.las"), "..", "--overwrite"],
             "would contain the input")


def test_symlinked_output_is_still_the_input(folder, tmp_path, capsys):
    link = tmp_path / "alias"
    link.symlink_to(folder)
    _refused(capsys, tmp_path, ["tile", str(folder), str(link), "--overwrite"], "would overwrite its input")


def test_tile_index_listing_tiles_inside_the_output(folder, tmp_path, capsys):
    # re-tiling tiles of an earlier run into that run's folder would replace them
    out = tmp_path / "tiles"
    assert main(["tile", str(folder / "warsaw_small.las"), str(out), "--size", "40"]) == 0
    index = tmp_path / "some.txt"
    index.write_text("".join(f"{p}\n" for p in sorted(out.glob("*.laz"))[:3]))
    _refused(capsys, tmp_path, ["tile", str(index), str(out), "--size", "10", "--overwrite"],
             "would contain the input")


@pytest.mark.parametrize("command", ["tile", "eval-fill"])
def test_output_inside_an_ept_dataset_named_by_its_json(tmp_path, capsys, command):
    dataset = tmp_path / "ds"
    (dataset / "ept-data").mkdir(parents=True)
    (dataset / "ept.json").write_text("{}")
    (dataset / "ept-data" / "0-0-0-0.laz").write_bytes(b"node")
    argv = {"tile": ["tile", str(dataset / "ept.json"), str(dataset / "ept-data"), "--overwrite"],
            "eval-fill": ["eval-fill", str(dataset / "ept.json"), "--out", str(dataset / "ef"),
                          "--no-model", "-q"]}[command]
    _refused(capsys, tmp_path, argv, "lies inside the input")


def test_training_tile_cache_inside_the_input_folder(folder, tmp_path):
    from pcgen.train.datamodule import TileDataModule

    before = _snapshot(tmp_path)
    module = TileDataModule(files=[str(folder)], cache_dir=str(folder / "cache"))
    with pytest.raises(OutputError, match="output lies inside the input"):
        module.resolve_tile_dir()
    assert _snapshot(tmp_path) == before


def test_eval_fill_out_is_the_tiles(folder, tmp_path, capsys):
    _refused(capsys, tmp_path, ["eval-fill", str(folder), "--out", str(folder), "--no-model", "-q"],
             "would overwrite its input")


def test_eval_fill_out_holds_a_tile_of_an_index(folder, tmp_path, capsys):
    index = tmp_path / "tiles.txt"
    index.write_text(str(folder / "simple.las") + "\n")
    _refused(capsys, tmp_path, ["eval-fill", str(index), "--out", str(folder), "--no-model", "-q",
                                "--overwrite"], "would contain the input")


def test_eval_augment_out_is_the_reference(folder, tmp_path, capsys):
    _refused(capsys, tmp_path, ["eval-augment", "--reference", str(folder), "--train", str(folder),
                                "--out", str(folder), "--no-model"], "would overwrite its input")


def test_augment_out_holds_the_condition(folder, tmp_path, capsys):
    _refused(capsys, tmp_path, ["augment", str(folder), "--n", "1", "--condition", str(folder / "simple.las")],
             "would contain the input")


def test_augment_out_is_the_checkpoint(folder, tmp_path, capsys):
    ckpt = folder / "x.ckpt"
    ckpt.write_bytes(b"not read")
    _refused(capsys, tmp_path, ["augment", str(ckpt), "--n", "1", "--ckpt", str(ckpt)], "would overwrite its input")


def test_image_rasterize_into_the_input_folder(folder, tmp_path, capsys):
    _refused(capsys, tmp_path, ["image", "rasterize", str(folder / "simple.las"), str(folder), "--res", "1"],
             "would contain the input")


def test_image_train_into_the_photos(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"\x89PNG not really")
    _refused(capsys, tmp_path, ["image", "train", "--images", str(photos), "--out", str(photos)],
             "would overwrite its input")


@pytest.mark.parametrize("verb", ["sample", "explain"])
def test_image_sampling_into_the_images(tmp_path, capsys, verb):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(b"x")
    ckpt = tmp_path / "ldm.ckpt"
    ckpt.write_bytes(b"x")
    _refused(capsys, tmp_path, ["image", verb, "--ckpt", str(ckpt), "--images", str(photos), "--out",
                                str(tmp_path)], "would contain the input")


def test_fill_folder_into_its_parent(folder, tmp_path, capsys):
    _refused(capsys, tmp_path, ["fill", str(folder), str(tmp_path), "--baseline", "mirror", "--overwrite"],
             "would contain the input")


def test_fill_report_onto_the_input(folder, tmp_path, capsys):
    src = folder / "simple.las"
    _refused(capsys, tmp_path, ["fill", str(src), str(tmp_path / "o.las"), "--baseline", "mirror",
                                "--gaps", str(src)], "would overwrite its input")


def test_fill_report_under_a_file_writes_nothing(folder, tmp_path, capsys):
    src = folder / "simple.las"
    _refused(capsys, tmp_path, ["fill", str(src), str(tmp_path / "o.las"), "--baseline", "mirror",
                                "--gaps", str(folder / "warsaw_small.las" / "r.geojson")], "a file is in the way")


def test_demo_out_holding_the_sample_data(tmp_path, capsys, monkeypatch):
    (tmp_path / "lidar").mkdir()
    shutil.copy(datadir.lidar_file("simple.las"), tmp_path / "lidar" / "simple.las")
    monkeypatch.setenv("PCGEN_DATA", str(tmp_path))
    _refused(capsys, tmp_path, ["demo", str(tmp_path), "--file", "simple.las", "--overwrite"],
             "would contain the input")


def test_folder_output_that_is_a_file(folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("mine")
    _refused(capsys, tmp_path, ["tile", str(folder / "simple.las"), str(out), "--overwrite"],
             "exists and is not a folder")


@pytest.mark.parametrize("argv", [
    ["eval-fill", "{tiles}", "--out", "{out}", "--no-model", "-q"],
    ["augment", "{out}", "--n", "1"],
    ["image", "rasterize", "{tiles}/simple.las", "{out}"],
    ["tile", "{tiles}", "{out}"],
])
def test_non_empty_output_needs_overwrite_everywhere(folder, tmp_path, capsys, argv):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = [a.format(tiles=folder, out=out) for a in argv]
    _refused(capsys, tmp_path, argv, "exists and is not empty (pass --overwrite")


def test_overwrite_keeps_files_pcgen_did_not_write(folder, tmp_path, capsys):
    out = tmp_path / "keep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["eval-fill", str(folder / "warsaw_small.las"), "--out", str(out), "--no-model", "-q", "--cuts", "1",
            "--overwrite"]
    assert main(argv) == 0
    first = _snapshot(out)
    assert (out / "notes.txt").read_text() == "mine"
    assert {"eval_fill.json", "eval_fill.md", "eval_fill.png", MANIFEST} <= set(first)
    assert main(argv) == 0  # a second run replaces pcgen's files only
    assert set(_snapshot(out)) == set(first) and (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "keep"]


def test_overwrite_refuses_to_replace_a_user_file_of_the_same_name(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("mine")
    with pytest.raises(OutputError, match="pcgen did not write"):
        with atomic_dir(out) as tmp:
            (tmp / "report.json").write_text("new")
            (tmp / "other.json").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert (out / "report.json").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_removes_pcgen_files_of_the_previous_run_only(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "sheets").mkdir()
        (tmp / "sheets" / "a.png").write_bytes(b"1")
        (tmp / "b.png").write_bytes(b"1")
    (out / "notes.txt").write_text("mine")
    with atomic_dir(out) as tmp:
        (tmp / "c.png").write_bytes(b"2")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "c.png", "notes.txt"]


def test_manifest_cannot_point_outside_the_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    (out / MANIFEST).write_text('{"files": ["../victim.txt", "%s"]}' % victim)
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("x")
    assert victim.read_text() == "mine"


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_second_run_into_a_locked_output_fails_cleanly(folder, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".out.pcgen-lock").write_text(str(holder.pid))
        _refused(capsys, tmp_path, ["tile", str(folder / "simple.las"), str(out)],
                 f"another pcgen run (pid {holder.pid}) is writing this output")
    finally:
        holder.kill()
        holder.wait()


def test_leftovers_of_a_killed_run_are_cleaned_on_the_next_run(folder, tmp_path, capsys):
    pid = _dead_pid()
    out = tmp_path / "out"
    stale_dir = tmp_path / f".out.pcgen-{pid}-abc.tmp"
    stale_dir.mkdir()
    (stale_dir / "tile.laz").write_bytes(b"partial")
    (tmp_path / ".out.pcgen-lock").write_text(str(pid))
    mine = tmp_path / ".out.tmp"  # not a pcgen name: never touched
    mine.write_text("user's")
    assert main(["tile", str(folder / "simple.las"), str(out), "--no-overview"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.tmp", "in", "out"]


def test_a_live_runs_staging_is_left_alone(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".out.pcgen-{holder.pid}-abc.tmp"
        live.mkdir()
        with atomic_dir(tmp_path / "other"):
            pass
        from pcgen.atomic import remove_stale

        assert remove_stale(tmp_path / "out") == [] and live.is_dir()
    finally:
        holder.kill()
        holder.wait()


def test_failed_folder_fill_leaves_no_output_folder(folder, tmp_path, capsys):
    (folder / "broken.las").write_bytes(b"LASF" + b"\0" * 50)
    out = tmp_path / "filled"
    assert main(["fill", str(folder), str(out), "--baseline", "mirror", "-q"]) == 2
    assert "broken.las" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_demo_with_a_bad_checkpoint_tiles_nothing(tmp_path, capsys):
    bad = tmp_path / "random.ckpt"
    bad.write_bytes(os.urandom(256))
    _refused(capsys, tmp_path, ["demo", str(tmp_path / "out"), "--ckpt", str(bad)], "random.ckpt")


def test_demo_names_a_folder_given_as_its_file(tmp_path, capsys):
    """A folder was looked up as a sample name: 'sample LiDAR file not found'."""
    _refused(capsys, tmp_path, ["demo", str(tmp_path / "out"), "--file", str(tmp_path)],
             "--file takes one LiDAR file, not a folder")


def test_demo_finds_the_held_out_sites_it_suggests_by_name(tmp_path, capsys):
    """Three of the five held-out sites the refusal lists live in training/, not lidar/."""
    _refused(capsys, tmp_path, ["demo", str(tmp_path / "out"), "--file", "Topography.laz"],
             "demo a held-out site (MixedConifer.laz, pyfor_test.laz")
    from pcgen import datadir

    assert datadir.lidar_file("pyfor_test.laz") == datadir.data_dir() / "training" / "pyfor_test.laz"
    _refused(capsys, tmp_path, ["demo", str(tmp_path / "out"), "--file", "nope.laz"],
             "nope.laz: sample LiDAR file not found (looked in lidar/ and training/")


def test_demo_on_a_file_too_sparse_for_its_tiles_leaves_nothing(tmp_path, capsys):
    # simple.las: 1065 points over 3.5 km, no 40 m tile holds 384 of them
    assert main(["demo", str(tmp_path / "out"), "--file", "simple.las"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("pcgen demo: error:")
    assert "simple.las: no 40 m tile of it holds 384 points" in err
    assert list(tmp_path.iterdir()) == []
    _refused(capsys, tmp_path, ["demo", str(tmp_path / "out"), "--gap-size", "1e9"],
             "--gap-size must be under 32 m")


def test_tile_with_a_bad_header_scale_leaves_nothing(tmp_path, capsys):
    import struct

    bad = tmp_path / "bad.las"
    data = bytearray(datadir.lidar_file("simple.las").read_bytes())
    data[131:139] = struct.pack("<d", 0.0)
    bad.write_bytes(bytes(data))
    _refused(capsys, tmp_path, ["tile", str(bad), str(tmp_path / "out")], "header X scale 0.0")


@pytest.mark.parametrize("source", ["training/hawaii_ept/ept.json", "training/hawaii_ept", "lidar/Topography.laz"])
def test_demo_refuses_a_training_site_however_it_is_named(source):
    """The shipped checkpoint trained on hawaii_ept: its ept.json passed the check by its name."""
    from pcgen.errors import InputError
    from pcgen.tasks.demo import check_heldout
    from pcgen.tasks.generators import DEFAULT_CHECKPOINT

    with pytest.raises(InputError, match=f"trained on {Path(source.replace('/ept.json', '')).name}; demo a held-out"):
        check_heldout(Path(DEFAULT_CHECKPOINT), datadir.data_dir() / source)
    check_heldout(Path(DEFAULT_CHECKPOINT), datadir.data_dir() / "lidar" / "Megaplot.laz")  # held out
