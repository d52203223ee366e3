"""`pcgen image ...` end to end on real data, and every bad-input case: exit 2, one line, no output."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from pcgen.cli import main
from pcgen.errors import InputError
from pcgen.image.data import ImageFolder, load_images


def run_cli(capsys, *argv):
    rc = main(["image", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(err):
    lines = [l for l in err.strip().splitlines() if not l.startswith("pcgen image: warning")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_gray_and_rgba_are_converted(tmp_path, photos):
    rgb = Image.open(photos / "database" / "db3.jpg").convert("RGB").resize((48, 40))
    rgb.convert("L").save(tmp_path / "gray.png")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(90)
    rgba.save(tmp_path / "rgba.png")
    Image.fromarray(np.asarray(rgb)[..., 0]).convert("P").save(tmp_path / "palette.png")
    folder = ImageFolder(tmp_path, 32)
    assert folder.images.shape == (3, 3, 32, 32)
    gray = folder.images[folder.paths.index(tmp_path / "gray.png")]
    torch.testing.assert_close(gray[0], gray[1])
    assert folder.images.min() >= -1 and folder.images.max() <= 1


def test_unreadable_files_are_skipped_with_a_warning_naming_them(tmp_path, photos):
    shutil.copy(photos / "database" / "db4.jpg", tmp_path / "ok.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    with pytest.warns(UserWarning, match="broken.jpg"):
        items = load_images(tmp_path)
    assert [i.path.name for i in items] == ["ok.jpg"]
    (tmp_path / "ok.jpg").unlink()
    with pytest.raises(InputError, match="none of the 1 image file"):
        load_images(tmp_path)


def test_train_on_folder_without_images_fails_cleanly(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    rc, _, err = run_cli(capsys, "train", "--images", tmp_path / "empty", "--out", tmp_path / "run",
                         "--ae-steps", 1, "--ldm-steps", 1)
    assert rc == 2
    line = one_line_error(err)
    assert line.startswith("pcgen image: error: ") and "no images" in line and str(tmp_path / "empty") in line
    assert not (tmp_path / "run").exists() and [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_train_when_nothing_is_readable_fails_cleanly(tmp_path, capsys):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"garbage")
    rc, _, err = run_cli(capsys, "train", "--images", tmp_path / "bad", "--out", tmp_path / "run")
    assert rc == 2 and "could be read" in one_line_error(err) and "a.png" in err
    assert not (tmp_path / "run").exists()


def test_explain_end_to_end(tiny_run, few_photos, tmp_path, capsys):
    (tmp_path / "src").mkdir()
    for p in few_photos.iterdir():
        shutil.copy(p, tmp_path / "src" / p.name)
    (tmp_path / "src" / "corrupt.jpg").write_bytes(b"nope")
    rc, out, err = run_cli(capsys, "explain", "--ckpt", tiny_run["ldm"], "--images", tmp_path / "src",
                           "--samples", 2, "--steps", 3, "--out", tmp_path / "report", "--threads", 1)
    assert rc == 0, err
    assert "corrupt.jpg" in err and "recall@1" in out
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    assert rep["num_sources"] == 3 and rep["samples_per_source"] == 2
    assert rep["recall_chance"] == {"1": pytest.approx(1 / 3), "5": 1.0}
    assert rep["recall"]["5"] == 1.0 and 0 <= rep["recall"]["1"] <= 1  # only 3 sources: top-5 holds all
    assert -1 <= rep["cosine_to_source_mean"] <= 1 and len(rep["per_source"]) == 3
    assert np.array(rep["region_colour_difference"]).shape == (3, 3)
    assert any("corrupt.jpg" in s for s in rep["skipped"])
    sheets = sorted((tmp_path / "report" / "sheets").iterdir())
    assert [s.name for s in sheets] == ["db1.png", "db15.png", "db2.png"]
    assert Image.open(sheets[0]).size == (3 * 34 + 2, 36)  # source | 2 generations, 32 px + 2 px padding
    assert "| generations → sources |" in (tmp_path / "report" / "report.md").read_text()


def test_sample_from_embeddings_and_unconditionally(tiny_run, few_photos, tmp_path, capsys):
    rc, _, err = run_cli(capsys, "sample", "--ckpt", tiny_run["ldm"], "--images", few_photos, "--num", 2,
                         "--steps", 3, "--out", tmp_path / "s", "--guidance", 2.0)
    assert rc == 0, err
    files = sorted(p.name for p in (tmp_path / "s").iterdir() if p.name != ".pcgen-manifest.json")
    assert len(files) == 7 and "grid.png" in files and "db1_01.png" in files
    assert Image.open(tmp_path / "s" / "db1_00.png").size == (32, 32)
    rc, _, err = run_cli(capsys, "sample", "--ckpt", tiny_run["ldm"], "--num", 3, "--steps", 2,
                         "--sampler", "ddpm", "--out", tmp_path / "u")
    assert rc == 0, err
    assert len(list((tmp_path / "u").glob("*.png"))) == 4


def test_sample_names_images_of_one_name_in_two_folders_apart(tiny_run, few_photos, tmp_path, capsys):
    for sub in ("a", "b"):
        (tmp_path / "imgs" / sub).mkdir(parents=True)
        shutil.copy(few_photos / "db1.jpg", tmp_path / "imgs" / sub / "img.jpg")
    rc, out, err = run_cli(capsys, "sample", "--ckpt", tiny_run["ldm"], "--images", tmp_path / "imgs",
                           "--num", 1, "--steps", 2, "--out", tmp_path / "s")
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "s").glob("*.png")) == ["a__img_00.png", "b__img_00.png", "grid.png"]


def test_rasterize_files_of_one_name_from_two_folders(lidar_dir, tmp_path, capsys):
    for sub in ("d1", "d2"):
        (tmp_path / sub).mkdir()
        shutil.copy(lidar_dir / "MixedConifer.laz", tmp_path / sub / "x.laz")
    rc, _, err = run_cli(capsys, "rasterize", tmp_path / "d1" / "x.laz", tmp_path / "d2" / "x.laz",
                         tmp_path / "r", "--res", 1.0, "--tile", 30)
    assert rc == 0, err
    names = sorted(p.name for p in (tmp_path / "r").glob("*.png"))
    assert len(names) == 18 and sum(n.startswith("x-2_") for n in names) == 9
    index = json.loads((tmp_path / "r" / "index.json").read_text())
    assert sorted(e["png"] for e in index) == names


def test_rasterize_names_a_file_too_sparse_for_any_tile(lidar_dir, tmp_path, capsys):
    # Megaplot at 0.5 m fills under half the cells of any 256-cell tile
    rc, out, err = run_cli(capsys, "rasterize", lidar_dir / "MixedConifer.laz", lidar_dir / "Megaplot.laz",
                           tmp_path / "r", "--res", 0.5)
    assert rc == 0, err
    assert out.strip() == f"1 rasters from 1 of 2 files: {tmp_path / 'r'}"
    assert err.strip() == (f"pcgen image rasterize: {lidar_dir / 'Megaplot.laz'}: no tile with 50% of its "
                           "cells holding points, none written (a coarser --res or a smaller --tile may help)")


def test_explain_with_checkpoint_of_other_architecture(tiny_run, few_photos, tmp_path, capsys):
    ckpt = torch.load(tiny_run["ldm"], weights_only=True)
    ckpt["pcgen_image"]["config"]["unet"]["block_out_channels"] = [48, 64]
    torch.save(ckpt, tmp_path / "other.ckpt")
    rc, _, err = run_cli(capsys, "explain", "--ckpt", tmp_path / "other.ckpt", "--images", few_photos,
                         "--out", tmp_path / "rep")
    assert rc == 2
    line = one_line_error(err)
    assert "other.ckpt" in line and "shape mismatch unet." in line
    assert not (tmp_path / "rep").exists()
    (tmp_path / "cos.pth").write_bytes(b"\x00" * 16)
    rc, _, err = run_cli(capsys, "explain", "--ckpt", tmp_path / "cos.pth", "--images", few_photos,
                         "--out", tmp_path / "rep")
    assert rc == 2 and "cannot read checkpoint" in one_line_error(err) and not (tmp_path / "rep").exists()


@pytest.mark.parametrize("setting, says", [
    ("data.image_size=0", "data.image_size must be >= 8"),
    ("data.image_size=33", "data.image_size must be a multiple of 8"),
    ("data.batch_size=0", "data.batch_size must be >= 1"),
    ("diffusion.base_lr=nan", "diffusion.base_lr must be > 0 and <= 1, got nan"),
    ("cosplace.checkpoint=/no/such.pth", "CosPlace checkpoint not found"),
])
def test_train_bad_setting_is_refused_before_anything_trains(few_photos, tmp_path, capsys, setting, says):
    rc, _, err = run_cli(capsys, "train", "--images", few_photos, "--out", tmp_path / "t", "--preset", "tiny",
                         "--ae-steps", 1, "--ldm-steps", 1, "--set", setting)
    assert rc == 2 and says in one_line_error(err)
    assert not (tmp_path / "t").exists()


def test_rasterize_library_names_its_parameters():
    """The library's errors name its parameters, not the CLI's flags (which argparse checks first)."""
    from pcgen.errors import ConfigError
    from pcgen.image.rasterize import rasterize_points

    xyz = np.zeros((4, 3))
    with pytest.raises(ConfigError, match="^res must be positive, got 0"):
        rasterize_points(xyz, 0.0)
    with pytest.raises(ConfigError, match="^channels must be 1 or 3, got 2"):
        rasterize_points(xyz, 1.0, "dsm", channels=2)


def test_rasterize_chm_and_dsm(lidar_dir, tmp_path, capsys):
    src = lidar_dir / "MixedConifer.laz"  # heights normalised, 0-32 m
    rc, out, err = run_cli(capsys, "rasterize", src, tmp_path / "chm", "--res", 1.0, "--tile", 30)
    assert rc == 0, err
    pngs = sorted((tmp_path / "chm").glob("*.png"))
    assert len(pngs) == 9  # a 90 m square at 1 m in 30-cell tiles
    arr = np.stack([np.asarray(Image.open(p)) for p in pngs])
    assert arr.ndim == 3 and Image.open(pngs[0]).mode == "L"
    assert 170 <= arr.max() <= 215  # ~32 m canopy on a 40 m = 255 scale
    assert (arr < 10).mean() > 0.05  # gaps between crowns reach the ground
    index = json.loads((tmp_path / "chm" / "index.json").read_text())
    assert len(index) == 9 and index[0]["channels"]["chm"] == [0.0, 40.0]
    rc, _, err = run_cli(capsys, "rasterize", src, tmp_path / "dsm", "--res", 2.0, "--kind", "dsm",
                         "--channels", 3, "--tile", 0)
    assert rc == 0, err
    (png,) = (tmp_path / "dsm").glob("*.png")
    im = Image.open(png)
    assert im.mode == "RGB" and abs(im.size[0] - 46) <= 1
    # The rasters train the same LDM: they load as images.
    assert ImageFolder(tmp_path / "chm", 32).images.shape == (9, 3, 32, 32)


def test_rasterize_bad_input(tmp_path, capsys):
    (tmp_path / "x.laz").write_bytes(b"LASF but truncated")
    rc, _, err = run_cli(capsys, "rasterize", tmp_path / "x.laz", tmp_path / "out")
    assert rc == 2 and "x.laz" in one_line_error(err) and not (tmp_path / "out").exists()


def test_image_logger_writes_at_most_8_images_every_n_batches(tiny_run):
    # tiny_run: 6 LDM steps, logging every 4 batches -> batches 0 and 4.
    names = sorted(p.name for p in (tiny_run["dir"] / "ldm_images").iterdir())
    assert names == sorted(f"{k}_gs-{gs:06d}_b-{b:06d}.png" for k in ("inputs", "reconstructions", "samples")
                           for gs, b in ((1, 0), (5, 0)))
    im = Image.open(tiny_run["dir"] / "ldm_images" / "samples_gs-000001_b-000000.png")
    assert im.size == (4 * 34 + 2, 36)  # the batch of 4 (<= 8), 32 px each with 2 px padding


def test_chm_pit_filling():
    from pcgen.image.rasterize import rasterize_points

    # A 6 m x 6 m canopy at 20 m on flat ground (1 m cells); cell (2, 3) caught only a ground return,
    # columns 4-7 are a real gap and stay open.
    xs, ys = np.meshgrid(np.arange(8) + 0.5, np.arange(6) + 0.5)
    z = np.where(xs >= 4, 0.0, 20.0)
    z[(xs == 3.5) & (ys == 2.5)] = 0.0
    xyz = np.c_[xs.ravel(), ys.ravel(), z.ravel()]
    flat = lambda x, y: np.zeros_like(x)
    raw = rasterize_points(xyz, 1.0, "chm", ground=flat).values[..., 0]
    filled = rasterize_points(xyz, 1.0, "chm", ground=flat, pit_depth=2.0).values[..., 0]
    assert (raw == 0).sum() == 6 * 4 + 1 and (filled == 0).sum() == 6 * 4
    assert filled[3, 3] == 20.0  # row 3 from the north = y 2.5
    np.testing.assert_array_equal(filled[:, 4:], 0.0)
