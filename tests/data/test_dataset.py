"""TileDataset: exact inverse mapping to real-world coordinates, sampling, features, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import pcgen.io as io
from pcgen import datadir
from pcgen.data import Augment, Normalization, TileDataset
from pcgen.data.tiling import TileOptions, tile_files
from pcgen.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def tile_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "tiles"
    tile_files([datadir.lidar_file("MixedConifer.laz")], out, TileOptions(size=45, buffer=5),
               overview=False)
    return out


@pytest.mark.parametrize("normalize", ["sphere", "unit_cube"])
@pytest.mark.parametrize("sampling", ["fps", "random"])
def test_points_map_back_to_real_world(tile_dir, normalize, sampling):
    ds = TileDataset(tile_dir, num_points=1024, sampling=sampling, normalize=normalize)
    item = ds[1]
    tile = io.read(tile_dir / item["tile"])
    xyz = tile.xyz[item["index"].numpy()]
    norm = Normalization(item["center"].numpy(), float(item["scale"]))
    assert item["center"].dtype == torch.float64 and item["scale"].dtype == torch.float64
    assert np.abs(norm.invert(norm.apply(xyz)) - xyz).max() <= 1e-9  # float64 round trip
    pts = item["points"].numpy()
    assert pts.shape == (1024, 3) and pts.dtype == np.float32
    np.testing.assert_allclose(pts, norm.apply(xyz), atol=1e-6)
    assert np.abs(norm.invert(item["points"]) - xyz).max() < 1e-6 * norm.scale * 4
    assert len(np.unique(item["index"].numpy())) == 1024
    if normalize == "sphere":
        assert np.linalg.norm(pts, axis=1).max() == pytest.approx(1.0, abs=1e-6)
    else:
        assert (pts.max(0) - pts.min(0)).max() == pytest.approx(1.0, abs=1e-6)


def test_fps_spreads_points_wider_than_random(tile_dir):
    def min_spacing(sampling):
        pts = TileDataset(tile_dir, num_points=512, sampling=sampling)[0]["points"]
        d = torch.cdist(pts, pts) + torch.eye(len(pts)) * 10
        return d.min().item()

    assert min_spacing("fps") > 3 * min_spacing("random")


def test_seeded_and_epoch_dependent(tile_dir):
    a = TileDataset(tile_dir, num_points=256, sampling="random", seed=7)
    b = TileDataset(tile_dir, num_points=256, sampling="random", seed=7)
    assert torch.equal(a[2]["points"], b[2]["points"])
    assert not torch.equal(a[2]["points"], TileDataset(tile_dir, num_points=256,
                                                       sampling="random", seed=8)[2]["points"])
    before = a[2]["index"].clone()
    a.set_epoch(1)
    assert not torch.equal(a[2]["index"], before)
    fps = TileDataset(tile_dir, num_points=256, seed=3)
    assert torch.equal(fps[0]["index"], TileDataset(tile_dir, num_points=256, seed=3)[0]["index"])


def test_features(tile_dir):
    ds = TileDataset(tile_dir, num_points=512, features=("intensity", "return_number",
                                                         "classification"))
    item = ds[0]
    feats = item["features"].numpy()
    assert feats.shape == (512, ds.feature_dim) == (512, 2 + len(ds.classes) + 1)
    tile = io.read(tile_dir / item["tile"])
    idx = item["index"].numpy()
    np.testing.assert_allclose(feats[:, 0], np.log1p(tile.attributes["intensity"][idx])
                               / np.log1p(65535), rtol=1e-6)
    assert ((feats[:, 1] > 0) & (feats[:, 1] <= 1)).all()
    onehot = feats[:, 2:]
    np.testing.assert_array_equal(onehot.sum(1), 1.0)
    cls = tile.attributes["classification"][idx]
    np.testing.assert_array_equal(np.array(ds.classes)[onehot[:, :-1].argmax(1)][cls != 11],
                                  cls[cls != 11])
    assert (onehot[cls == 11, -1] == 1).all()  # class 11 has no own channel: "other"


def test_small_tiles_are_padded_and_core_only(tile_dir):
    ds = TileDataset(tile_dir, num_points=200_000, sampling="random")  # core only by default
    item = ds[0]
    tile = io.read(tile_dir / item["tile"])
    idx = item["index"].numpy()
    core = np.flatnonzero(tile.attributes["buffer"] == 0)
    assert len(idx) == 200_000
    assert set(np.unique(idx)) == set(range(len(core)))  # every core point, some repeated
    assert (core == np.arange(len(core))).all()  # cores come first: index is into the tile too
    with_buffer = TileDataset(tile_dir, num_points=200_000, sampling="random", core_only=False)
    assert int(with_buffer[0]["index"].max()) == len(tile) - 1


def test_augmentation_rotates_about_z(tile_dir):
    plain = TileDataset(tile_dir, num_points=256, sampling="random", seed=1)[0]["points"]
    aug = TileDataset(tile_dir, num_points=256, sampling="random", seed=1,
                      augment=Augment(rotate_z=True, scale=None, jitter=0.0))[0]["points"]
    torch.testing.assert_close(aug[:, 2], plain[:, 2])
    torch.testing.assert_close(aug[:, :2].norm(dim=1), plain[:, :2].norm(dim=1))
    assert not torch.allclose(aug, plain)


def test_collates_with_default_loader(tile_dir):
    loader = torch.utils.data.DataLoader(TileDataset(tile_dir, num_points=128), batch_size=2)
    batch = next(iter(loader))
    assert batch["points"].shape == (2, 128, 3) and batch["center"].shape == (2, 3)
    assert batch["scale"].dtype == torch.float64 and len(batch["tile"]) == 2


def test_bad_arguments(tmp_path, tile_dir):
    with pytest.raises(InputError, match="tile folder not found"):
        TileDataset(tmp_path / "nope")
    with pytest.raises(ConfigError, match="unknown features"):
        TileDataset(tile_dir, features=("height",))
    with pytest.raises(ConfigError):
        TileDataset(tile_dir, sampling="grid")
    with pytest.raises(ConfigError, match="normalize must be 'sphere' or 'unit_cube', got 'box'"):
        TileDataset(tile_dir, normalize="box")
    assert TileDataset(tile_dir, normalize="cube").normalize == "unit_cube"  # older configs still load
    with pytest.raises(InputError, match="rgb"):
        TileDataset(tile_dir, num_points=16, features=("rgb",))[0]


@pytest.mark.parametrize("kwargs, says", [
    ({"num_points": float("nan")}, "num_points must be an integer, got nan"),
    ({"num_points": 2.5}, "num_points must be an integer, got 2.5"),
    ({"num_points": "8"}, "num_points must be an integer, got '8'"),
    ({"seed": -1}, "seed must be >= 0 and <= 4294967295, got -1"),
    ({"classes": (2, 300)}, "classes must be ASPRS codes 0..255, got 300"),
    ({"classes": (-1,)}, "classes must be ASPRS codes 0..255, got -1"),
    ({"classes": (2, 2)}, "classes repeats [2]: give each code once"),
    ({"features": "intensity"}, "features must be a list, e.g. features=['intensity'], got 'intensity'"),
    ({"augment": "yes"}, "augment must be callable (points, rng) -> points"),
])
def test_dataset_settings_are_checked_where_they_enter(tile_dir, kwargs, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")
                       .replace("[", r"\[").replace("]", r"\]")):
        TileDataset(tile_dir, **kwargs)


def test_numpy_numbers_are_numbers_and_an_index_is_whole(tile_dir):
    ds = TileDataset(tile_dir, num_points=np.int64(16), classes=np.array([2, 5]), features=("classification",))
    assert ds[0]["points"].shape == (16, 3) and ds.feature_dim == 3
    with pytest.raises(TypeError, match="tile index must be an integer, got 0.7"):
        ds[0.7]


@pytest.mark.parametrize("kwargs, says", [
    ({"jitter": float("nan")}, "jitter must be >= 0"),
    ({"jitter": -1}, "jitter must be >= 0"),
    ({"scale": (0, 0)}, "scale[0] must be > 0"),
    ({"scale": (1.2, 1.0)}, "scale[1] must be >= 1.2"),
])
def test_augment_settings_are_checked(kwargs, says):
    with pytest.raises(ConfigError, match=says.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        Augment(**kwargs)


def test_tile_files_takes_one_path_and_refuses_bad_counts(tmp_path):
    index = tile_files(datadir.lidar_file("MixedConifer.laz"), tmp_path / "t", TileOptions(size=50, buffer=0),
                       overview=False)
    assert sum(f["properties"]["core_points"] for f in index["features"]) == 37_657
    with pytest.raises(ConfigError, match="workers must be a whole number >= 1, got nan"):
        tile_files([datadir.lidar_file("MixedConifer.laz")], tmp_path / "u", workers=float("nan"))
    with pytest.raises(ConfigError, match="min-points must be a whole number >= 0, got 2.5"):
        tile_files([datadir.lidar_file("MixedConifer.laz")], tmp_path / "u", TileOptions(min_points=2.5))
    # 0.5 passed and was read as "truncated: header says 1065 points, file holds 0", blaming the file
    with pytest.raises(ConfigError, match="chunk-size must be a whole number >= 1, got 0.5"):
        tile_files([datadir.lidar_file("MixedConifer.laz")], tmp_path / "u", TileOptions(chunk_size=0.5))
    with pytest.raises(ConfigError, match="size must be a number, got '50'"):
        tile_files([datadir.lidar_file("MixedConifer.laz")], tmp_path / "u", TileOptions(size="50"))
    with pytest.raises(ConfigError, match="max-memory must be a whole number >= 0, got -1"):
        tile_files([datadir.lidar_file("MixedConifer.laz")], tmp_path / "u", TileOptions(max_memory=-1))
    assert not (tmp_path / "u").exists()
    for bad in (0, 0.5, True, "400"):
        with pytest.raises(ConfigError, match=f"chunk_size must be a whole number >= 1, got {bad!r}"):
            with io.open_chunks(datadir.lidar_file("simple.las"), bad):
                pass


def test_a_negative_index_is_a_tile_from_the_end(tmp_path):
    tile_files([datadir.lidar_file("MixedConifer.laz")], tmp_path / "t", TileOptions(size=50, buffer=0),
               overview=False)
    ds = TileDataset(tmp_path / "t", num_points=256)
    last = ds[len(ds) - 1]
    torch.testing.assert_close(ds[-1]["points"], last["points"])  # was numpy's "expected non-negative integer"
    with pytest.raises(IndexError, match=f"tile {len(ds)} of a dataset of {len(ds)}"):
        ds[len(ds)]
    with pytest.raises(ConfigError, match=r"scale must be \(low, high\), got 1.0"):
        Augment(scale=1.0)  # was "object of type 'float' has no len()"

