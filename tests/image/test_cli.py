"""`pcgen image ...` end to end on real data, and every bad-input case: exit 2, one line, no output."""

import json
import re
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


def test_rasterize_picks_one_cell_size_that_the_sparsest_input_fills(lidar_dir, tmp_path, capsys):
    """A fixed 0.5 left most cells of a 1-2 points/m² survey empty: Megaplot gave no raster."""
    from pcgen.image.rasterize import auto_res, point_density

    rc, out, err = run_cli(capsys, "rasterize", lidar_dir / "MixedConifer.laz", lidar_dir / "Megaplot.laz",
                           tmp_path / "r")
    assert rc == 0, err
    assert err.strip() == "pcgen image rasterize: --res auto: 2 file units a cell"  # Megaplot: 1.5 points/m²
    assert out.strip() == f"2 rasters from 2 of 2 files: {tmp_path / 'r'}"
    assert {e["res"] for e in json.loads((tmp_path / "r" / "index.json").read_text())} == {2.0}
    assert [auto_res(d) for d in (100.0, 12.0, 4.4, 1.5, 0.28, 1e-6)] == [0.25, 0.5, 1.0, 2.0, 5.0, 1733.0]
    g = np.arange(0.5, 100, 1.0)  # one point per unit² over a 100 x 100 square, and half of it empty
    grid = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    assert point_density(grid) == pytest.approx(1.0, rel=0.05)
    assert point_density(grid[grid[:, 0] < 50]) == pytest.approx(1.0, rel=0.05)  # not 0.5: the covered area


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
    with pytest.raises(ConfigError, match="^res must be > 0 and <= 1e.06, got 0"):
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


# -- two images of one name, output guards, checked numbers, options a stage or sampler ignores --

def _same_stem_folder(few_photos, root):
    root.mkdir()
    shutil.copy(few_photos / "db1.jpg", root / "x.jpg")
    Image.open(few_photos / "db2.jpg").save(root / "x.png")
    return root


def test_image_names_refuse_two_images_of_one_stem(few_photos, tmp_path):
    from pcgen.image.data import image_names

    src = _same_stem_folder(few_photos, tmp_path / "src")
    with pytest.raises(InputError, match=r"x\.jpg and .*x\.png would both be written as 'x'"):
        image_names([src / "x.jpg", src / "x.png"], src)
    # a/b__c.png and a__b/c.png flatten to one name too
    with pytest.raises(InputError, match="would both be written as 'a__b__c'"):
        image_names([src / "a" / "b__c.png", src / "a__b" / "c.png"], src)
    assert image_names([src / "a" / "x.png", src / "x.png"], src) == ["a__x", "x"]


def test_sample_and_explain_refuse_two_images_of_one_stem(tiny_run, few_photos, tmp_path, capsys):
    src = _same_stem_folder(few_photos, tmp_path / "src")
    rc, out, err = run_cli(capsys, "sample", "--ckpt", tiny_run["ldm"], "--images", src, "--num", 1,
                           "--steps", 2, "--out", tmp_path / "s")
    line = one_line_error(err)
    assert rc == 2 and str(src / "x.jpg") in line and str(src / "x.png") in line, err
    assert not (tmp_path / "s").exists()
    rc, out, err = run_cli(capsys, "explain", "--ckpt", tiny_run["ldm"], "--images", src, "--samples", 1,
                           "--steps", 2, "--out", tmp_path / "r")
    line = one_line_error(err)
    assert rc == 2 and str(src / "x.jpg") in line and str(src / "x.png") in line, err
    assert not (tmp_path / "r").exists()


def test_explain_api_guards_its_output(tiny_run, few_photos, tmp_path):
    from pcgen.errors import OutputError
    from pcgen.image.config import load_ldm
    from pcgen.image.explain import explain

    src = tmp_path / "src"
    shutil.copytree(few_photos, src)
    before = sorted(p.name for p in src.iterdir())
    model = load_ldm(tiny_run["ldm"])
    with pytest.raises(OutputError, match="lies inside the input"):
        explain(model, src, src / "report", 1, steps=2)
    with pytest.raises(OutputError, match="would contain the input"):
        explain(model, src, tmp_path, 1, steps=2)
    assert sorted(p.name for p in src.iterdir()) == before
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("a user's file")
    with pytest.raises(OutputError, match=r"not empty \(pass overwrite=True"):
        explain(model, src, tmp_path / "busy", 1, steps=2)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["mine.txt"]


@pytest.mark.parametrize("kw, says", [
    (dict(guidance_scale=float("nan")), "guidance_scale must be >= 0 and <= 1000, got nan"),
    (dict(samples=1.5), "samples must be an integer, got 1.5"),
    (dict(samples=0), "samples must be >= 1"),
    (dict(eta=float("nan")), "eta must be"),
    (dict(steps=2.5), "steps must be a whole number"),
])
def test_explain_api_checks_its_numbers_before_work(tiny_run, few_photos, tmp_path, kw, says):
    from pcgen.errors import ConfigError
    from pcgen.image.config import load_ldm
    from pcgen.image.explain import explain

    kw = {"samples": 1, "steps": 2, **kw}
    with pytest.raises(ConfigError, match=says):
        explain(load_ldm(tiny_run["ldm"]), few_photos, tmp_path / "r", kw.pop("samples"), **kw)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("kw, says", [
    (dict(max_height=float("nan")), "max_height must be > 0"),
    (dict(max_height=0), "max_height must be > 0"),
    (dict(max_height=-5), "max_height must be > 0"),
    (dict(min_valid=float("nan")), "min_valid must be >= 0 and <= 1, got nan"),
    (dict(min_valid=2), "min_valid must be >= 0 and <= 1, got 2"),
    (dict(pit_depth=-1), "pit_depth must be > 0"),
    (dict(pit_depth=float("nan")), "pit_depth must be > 0"),
    (dict(res=float("nan")), "res must be > 0"),
    (dict(res=float("inf")), "res must be > 0"),
    (dict(tile=2.5), "tile must be an integer, got 2.5"),
    (dict(tile=-1), "tile must be >= 0"),
    (dict(channels=2), "channels must be 1 or 3"),
    (dict(kind="dtm"), "kind must be chm or dsm"),
])
def test_rasterize_files_checks_its_numbers(lidar_dir, tmp_path, kw, says):
    from pcgen.errors import ConfigError
    from pcgen.image.rasterize import rasterize_files

    with pytest.raises(ConfigError, match=says):
        rasterize_files([lidar_dir / "simple.las"], tmp_path / "r", **kw)
    assert not (tmp_path / "r").exists()


def test_rasterize_files_guards_its_output_and_takes_one_path(lidar_dir, tmp_path):
    from pcgen.errors import OutputError
    from pcgen.image.rasterize import rasterize_files

    (tmp_path / "in").mkdir()
    src = tmp_path / "in" / "plot.laz"
    shutil.copy(lidar_dir / "MixedConifer.laz", src)
    with pytest.raises(OutputError, match="lies inside the input"):
        rasterize_files([src], src / "r", res=2.0, tile=0)
    with pytest.raises(OutputError, match="would contain the input"):
        rasterize_files([src], tmp_path / "in", res=2.0, tile=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("a user's file")
    with pytest.raises(OutputError, match=r"not empty \(pass overwrite=True"):
        rasterize_files([src], tmp_path / "busy", res=2.0, tile=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "in"]
    assert [p.name for p in (tmp_path / "in").iterdir()] == ["plot.laz"]
    counts = []
    written = rasterize_files(str(src), tmp_path / "r", res=2.0, tile=0, counts=counts)  # one path, as text
    assert [p.name for p in written] == ["plot_chm1_r000_c000.png"] and counts == [1]


@pytest.mark.parametrize("xyz, says", [
    (np.zeros((0, 3)), "no points to rasterize"),
    (np.array([[0.0, 0.0, 1.0], [np.nan, 1.0, 2.0]]), "NaN or infinite coordinates"),
    (np.array([[0.0, 0.0, 1.0], [1.0, 1.0, np.inf]]), "NaN or infinite coordinates"),
])
def test_rasterize_points_refuses_empty_and_non_finite_points(xyz, says):
    from pcgen.image.rasterize import rasterize_points

    with pytest.raises(InputError, match=says):
        rasterize_points(xyz, 1.0, "dsm")


def test_rasterize_counts_a_file_named_twice_twice(lidar_dir, tmp_path, capsys):
    src = lidar_dir / "MixedConifer.laz"
    rc, out, err = run_cli(capsys, "rasterize", src, src, tmp_path / "r", "--res", 2.0, "--tile", 0)
    assert rc == 0, err
    assert out.strip() == f"2 rasters from 2 of 2 files: {tmp_path / 'r'}" and not err.strip()


def _unconditional_ckpt(path):
    from pcgen.image.config import build_ldm, load_preset

    cfg = load_preset("tiny", ["cosplace=null", "unet._target_=diffusers.UNet2DModel",
                               "unet.down_block_types=[AttnDownBlock2D,DownBlock2D]",
                               "unet.up_block_types=[UpBlock2D,AttnUpBlock2D]", "unet.attention_head_dim=8"])
    cfg.unet.pop("resnet_time_scale_shift")
    torch.manual_seed(0)
    model = build_ldm(cfg)
    torch.save({"state_dict": model.state_dict(), "pcgen_image": {"kind": "ldm", "config": model.config}}, path)
    return path


def test_sample_refuses_guidance_for_an_unconditional_checkpoint(tmp_path, capsys):
    ckpt = _unconditional_ckpt(tmp_path / "uncond.ckpt")
    rc, _, err = run_cli(capsys, "sample", "--ckpt", ckpt, "--num", 1, "--steps", 2, "--guidance", 5,
                         "--out", tmp_path / "s")
    assert rc == 2 and "--guidance needs a CosPlace-conditioned checkpoint" in one_line_error(err)
    assert not (tmp_path / "s").exists()
    rc, _, err = run_cli(capsys, "sample", "--ckpt", ckpt, "--num", 1, "--steps", 2, "--out", tmp_path / "s")
    assert rc == 0, err
    assert sorted(p.name for p in (tmp_path / "s").glob("*.png")) == ["grid.png", "sample_00.png"]


@pytest.mark.parametrize("verb", ["sample", "explain"])
def test_eta_is_refused_unless_the_sampler_is_ddim(tiny_run, few_photos, tmp_path, capsys, verb):
    extra = ["--images", few_photos, "--samples", 1] if verb == "explain" else ["--num", 1]
    rc, _, err = run_cli(capsys, verb, "--ckpt", tiny_run["ldm"], *extra, "--steps", 2, "--sampler", "ddpm",
                         "--eta", 0.5, "--out", tmp_path / "o")
    assert rc == 2 and "--eta applies to --sampler ddim only, not ddpm" in one_line_error(err)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, says", [
    (["--stage", "autoencoder", "--autoencoder", "{ae}"], "--autoencoder does not apply to --stage autoencoder"),
    (["--stage", "autoencoder", "--ldm-steps", "1"], "--ldm-steps does not apply to --stage autoencoder"),
    (["--stage", "autoencoder", "--cosplace", "{ae}"], "--cosplace does not apply to --stage autoencoder"),
    (["--stage", "both", "--autoencoder", "{ae}"], "--autoencoder does not apply to --stage both"),
    (["--autoencoder", "{ae}"], "--autoencoder does not apply to --stage both"),
    (["--stage", "ldm", "--autoencoder", "{ae}", "--ae-steps", "1"], "--ae-steps does not apply to --stage ldm"),
])
def test_train_refuses_options_its_stage_ignores(tiny_run, few_photos, tmp_path, capsys, monkeypatch, argv, says):
    import pcgen.image.train as train

    def must_not_train(*a, **k):
        raise AssertionError("trained despite an option the stage ignores")
    monkeypatch.setattr(train, "fit_autoencoder", must_not_train)
    monkeypatch.setattr(train, "fit_ldm", must_not_train)
    argv = [a.format(ae=tiny_run["autoencoder"]) for a in argv]
    rc, out, err = run_cli(capsys, "train", "--images", few_photos, "--out", tmp_path / "t", *argv)
    assert rc == 2 and says in one_line_error(err) and not out
    assert not (tmp_path / "t").exists()


def _cosplace_weights(dim):
    from pcgen.image.cosplace import CosPlace

    return CosPlace("ResNet18", dim, image_size=64).state_dict()


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_bytes(b"\x00" * 16), "cannot read checkpoint"),
    (lambda p: torch.save(_cosplace_weights(64), p), "shape mismatch aggregation.3"),  # D 64, the preset wants 512
])
def test_train_checks_cosplace_before_any_training(few_photos, tmp_path, capsys, monkeypatch, make, says):
    import pcgen.image.train as train

    def must_not_train(*a, **k):
        raise AssertionError("trained before the CosPlace checkpoint was checked")
    monkeypatch.setattr(train, "fit_autoencoder", must_not_train)
    make(tmp_path / "cos.pth")
    rc, out, err = run_cli(capsys, "train", "--images", few_photos, "--out", tmp_path / "t",
                           "--cosplace", tmp_path / "cos.pth")
    line = one_line_error(err)
    assert rc == 2 and says in line and "cos.pth" in line
    assert out == "" and not (tmp_path / "t").exists()


def test_train_prints_each_checkpoint_only_once_written(few_photos, tmp_path, capsys, monkeypatch):
    import pcgen.image.train as train

    def fake_fit(cfg, images, out, *a, **k):
        out.write_bytes(b"weights")
        return out

    def failing_fit(*a, **k):
        raise InputError("the LDM stage failed")
    monkeypatch.setattr(train, "fit_autoencoder", fake_fit)
    monkeypatch.setattr(train, "fit_ldm", failing_fit)
    rc, out, err = run_cli(capsys, "train", "--images", few_photos, "--out", tmp_path / "t")
    assert rc == 2 and "the LDM stage failed" in one_line_error(err)
    assert out == "" and not (tmp_path / "t").exists()  # no "autoencoder: ..." for a file never committed
    monkeypatch.setattr(train, "fit_ldm", fake_fit)
    rc, out, err = run_cli(capsys, "train", "--images", few_photos, "--out", tmp_path / "t")
    assert rc == 0, err
    assert out.splitlines() == [f"autoencoder: {tmp_path / 't' / 'autoencoder.ckpt'}",
                                f"ldm: {tmp_path / 't' / 'ldm.ckpt'}"]
    assert (tmp_path / "t" / "autoencoder.ckpt").is_file() and (tmp_path / "t" / "ldm.ckpt").is_file()


def test_preset_steps_must_be_at_least_one(few_photos, tmp_path, capsys):
    from pcgen.errors import ConfigError
    from pcgen.image.config import load_preset

    for key in ("trainer.autoencoder_steps", "trainer.ldm_steps"):
        with pytest.raises(ConfigError, match=f"{key} must be >= 1"):
            load_preset("tiny", [f"{key}=0"])
    rc, _, err = run_cli(capsys, "train", "--images", few_photos, "--out", tmp_path / "t",
                         "--set", "trainer.autoencoder_steps=0")
    assert rc == 2 and "trainer.autoencoder_steps must be >= 1" in one_line_error(err)
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("override, says", [
    ("cosplace.image_size=0", "cosplace.image_size must be >= 32"),
    ("unet.layers_per_block=0", "unet.layers_per_block must be >= 1"),
    ("autoencoder.norm_num_groups=7",
     "autoencoder.block_out_channels [16, 32, 32, 32] must all be multiples of autoencoder.norm_num_groups (7)"),
])
def test_preset_shapes_the_networks_cannot_take(override, says):
    """These were tracebacks from torch or diffusers when the first network was built."""
    from pcgen.errors import ConfigError
    from pcgen.image.config import load_preset

    with pytest.raises(ConfigError, match=re.escape(says)):
        load_preset("tiny", [override])


def test_a_preset_file_without_the_sections(few_photos, tmp_path, capsys):
    preset = tmp_path / "mine.yaml"
    preset.write_text("foo: 1\n")
    rc, _, err = run_cli(capsys, "train", "--images", few_photos, "--out", tmp_path / "t", "--preset", preset)
    assert rc == 2 and "the preset has no data, autoencoder" in one_line_error(err)
    preset.write_text("defaults:\n  - /image/tiny\n  - _self_\ndata:\n  batch_size: 2\n")
    from pcgen.image.config import load_preset

    assert load_preset(str(preset)).data.batch_size == 2  # a file starting from a packaged preset works
    assert not (tmp_path / "t").exists()


def test_train_output_inside_its_config_folder_is_refused(few_photos, tmp_path, capsys):
    (tmp_path / "conf" / "image").mkdir(parents=True)
    (tmp_path / "conf" / "image" / "mine.yaml").write_text("defaults:\n  - /image/tiny\n  - _self_\n")
    rc, _, err = run_cli(capsys, "train", "--images", few_photos, "--out", tmp_path / "conf" / "run",
                         "--config-dir", tmp_path / "conf", "--preset", "mine")
    assert rc == 2 and "output lies inside the input" in one_line_error(err)
    assert sorted(p.name for p in (tmp_path / "conf").iterdir()) == ["image"]


@pytest.mark.parametrize("extra, says", [
    (["--pit-depth", "3", "--no-pit-fill"], "--pit-depth sets the CHM pit filler; --no-pit-fill turns it off"),
    (["--kind", "dsm", "--pit-depth", "3"], "--pit-depth sets the CHM pit filler; a DSM is not pit-filled"),
])
def test_rasterize_options_that_contradict(tmp_path, capsys, extra, says):
    from pcgen import datadir

    rc, _, err = run_cli(capsys, "rasterize", datadir.lidar_file("simple.las"), tmp_path / "r", *extra)
    assert rc == 2 and says in one_line_error(err)
    assert not (tmp_path / "r").exists()
