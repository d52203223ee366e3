"""`TileDataset`: fixed-size, normalized samples from a folder of tiles, invertible to the world.

Each item is one tile: ``num_points`` points picked by farthest-point sampling (through
`pcgen.ops.farthest_point_sample`) or uniformly at random, normalized to the unit sphere or
unit cube. ``center``/``scale`` are kept in float64, so ``points * scale + center`` (see
`Normalization.invert`) puts generated points back in real-world coordinates, and
``index`` names the tile point behind every sample point.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

import pcgen.io as pio
from pcgen.data.sampling import resample_index
from pcgen.data.tiling import BUFFER_DIM, has_tile_buffer
from pcgen.data.transforms import Augment, Normalization, NormalizeMode, normalize_mode
from pcgen.errors import ConfigError, InputError

FEATURES = ("intensity", "return_number", "classification", "rgb")
# ASPRS classes worth their own one-hot channel; anything else goes to a final "other" channel.
DEFAULT_CLASSES = (0, 1, 2, 3, 4, 5, 6, 7, 9, 17, 18)
# Before FPS, tiles are randomly pre-thinned to this many times num_points: FPS is O(N * n)
# and a uniform pool that large already covers the tile's shape.
FPS_POOL_FACTOR = 8


def list_tiles(tile_dir: Path) -> list[Path]:
    """Tile files in index order when ``tile_index.geojson`` exists, else sorted by name."""
    from pcgen.data.tile_index import INDEX_NAME

    index = tile_dir / INDEX_NAME
    if index.is_file():
        try:
            names = [f["properties"]["name"] for f in json.loads(index.read_text())["features"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"unreadable tile index ({exc})", index) from None
        return [tile_dir / n for n in names]
    from pcgen.io.las import LAS_SUFFIXES

    return sorted(p for p in tile_dir.iterdir() if p.suffix.lower() in LAS_SUFFIXES)


class TileDataset(Dataset):
    """Samples of ``num_points`` points, one per tile.

    Args:
        tile_dir: folder written by ``pcgen tile`` (or any folder of LAS/LAZ files).
        num_points: N, points per sample. Tiles with fewer points are padded by repeating
            randomly chosen points (their ``index`` repeats too).
        sampling: ``"fps"`` (farthest-point, even coverage) or ``"random"`` (uniform).
        normalize: ``"sphere"`` (centroid at 0, radius 1) or ``"unit_cube"`` (bounding box
            centred, largest side 1: in [-0.5, 0.5]^3); ``"cube"`` is accepted as its older name.
        features: any of ``"intensity"`` (log-scaled to [0, 1]), ``"return_number"``
            (return / number of returns, so 1 is a last return), ``"classification"``
            (one-hot over ``classes`` plus an "other" channel), ``"rgb"`` (/ 65535).
        augment: an `Augment` (rotation about z, scaling, jitter) applied after
            normalization; ``center``/``scale`` then describe the normalization only.
        seed: base seed; item ``i`` in epoch ``e`` draws from ``(seed, i, e)``, so runs repeat.
        core_only: drop the buffer points of ``pcgen tile``'s buffered tiles (``buffer == 1``:
            copies of a neighbouring tile's core) before sampling; on by default, so no
            point is trained on twice.
        classes: classes with their own one-hot channel.
    Items:
        ``points`` float32 (N, 3), ``features`` float32 (N, F), ``center`` float64 (3,),
        ``scale`` float64 scalar, ``index`` int64 (N,) into the tile's points, ``tile`` str.
    """

    def __init__(self, tile_dir, num_points: int = 2048,
                 sampling: Literal["fps", "random"] = "fps",
                 normalize: NormalizeMode = "sphere", features: Sequence[str] = (),
                 augment: Augment | None = None, seed: int = 0, core_only: bool = True,
                 classes: Sequence[int] = DEFAULT_CLASSES):
        self.tile_dir = Path(tile_dir)
        if not self.tile_dir.is_dir():
            raise InputError("tile folder not found", self.tile_dir)
        from pcgen.options import MAX_SEED
        from pcgen.options import check_range

        check_range("num_points", num_points, 1, 10 ** 8, integer=True)
        check_range("seed", seed, 0, MAX_SEED, integer=True)
        for key, value in (("classes", classes), ("features", features)):  # a string reads letter by letter
            if isinstance(value, (str, bytes)):
                raise ConfigError(f"{key} must be a list, e.g. {key}=[{value!r}], got {value!r}")
        bad = [c for c in classes if isinstance(c, bool) or not isinstance(c, numbers.Integral) or not 0 <= c <= 255]
        if bad:
            raise ConfigError(f"classes must be ASPRS codes 0..255, got {bad[0]!r}")
        twice = sorted({int(c) for c in classes if list(classes).count(c) > 1})
        if twice:  # a second one-hot channel for a code would always read 0
            raise ConfigError(f"classes repeats {twice}: give each code once")
        if augment is not None and not callable(augment):
            raise ConfigError(f"augment must be callable (points, rng) -> points, e.g. an Augment, got {augment!r}")
        if sampling not in ("fps", "random"):
            raise ConfigError(f"sampling must be 'fps' or 'random', got {sampling!r}")
        try:
            normalize = normalize_mode(normalize)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        unknown = [f for f in features if f not in FEATURES]
        if unknown:
            raise ConfigError(f"unknown features {unknown}; choose from {list(FEATURES)}")
        self.files = list_tiles(self.tile_dir)
        self.num_points, self.sampling, self.normalize = int(num_points), sampling, normalize
        self.features, self.augment, self.seed = tuple(features), augment, int(seed)
        self.core_only, self.classes = core_only, tuple(int(c) for c in classes)
        self.epoch = 0

    @property
    def feature_dim(self) -> int:
        """F, the width of ``features``."""
        width = {"intensity": 1, "return_number": 1, "classification": len(self.classes) + 1,
                 "rgb": 3}
        return sum(width[f] for f in self.features)

    def set_epoch(self, epoch: int) -> None:
        """New random draws (sampling, augmentation) per epoch, still reproducible."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.files)

    def read_tile(self, index: int) -> pio.PointCloud:
        """The tile's points (buffer dropped when ``core_only``)."""
        path = self.files[index]
        cloud = pio.read(path)
        if self.core_only and cloud.header is not None and has_tile_buffer(cloud.header):
            cloud = cloud.select(cloud.attributes[BUFFER_DIM] == 0)
        if len(cloud) == 0:
            raise InputError("tile has no points", path)
        return cloud

    def sample_indices(self, xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n,) indices of ``num_points`` points of ``xyz`` (N, 3), by the configured sampler."""
        n, want = len(xyz), self.num_points
        if n <= want or self.sampling == "random":  # FPS has nothing to choose when n <= want
            return resample_index(n, want, rng)
        from pcgen.ops import farthest_point_sample

        pool = np.arange(n)
        if n > FPS_POOL_FACTOR * want:
            pool = np.sort(rng.choice(n, FPS_POOL_FACTOR * want, replace=False))
        # FPS in a local float64 frame: UTM-sized coordinates would lose float32 precision
        local = xyz[pool] - xyz[pool].mean(axis=0)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 62)))
        idx = farthest_point_sample(torch.from_numpy(local)[None], want, random_start=True,
                                    generator=gen)[0].numpy()
        return pool[idx]

    def __getitem__(self, index: int) -> dict:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):  # 0.7 read tile 0
            raise TypeError(f"tile index must be an integer, got {index!r}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"tile {index} of a dataset of {len(self)}")
        index = int(index) % len(self)  # d[-1] is the last tile, as for a list
        rng = np.random.default_rng([self.seed, int(index), self.epoch])
        cloud = self.read_tile(index)
        idx = self.sample_indices(cloud.xyz, rng)
        xyz = cloud.xyz[idx]
        norm = Normalization.fit(xyz, self.normalize)
        points = norm.apply(xyz)
        if self.augment is not None:
            points = self.augment(points, rng)
        return {
            "points": torch.from_numpy(points.astype(np.float32)),
            "features": torch.from_numpy(self._features(cloud, idx, self.files[index])),
            "center": torch.from_numpy(norm.center.astype(np.float64)),
            "scale": torch.tensor(norm.scale, dtype=torch.float64),
            "index": torch.from_numpy(idx.astype(np.int64)),
            "tile": self.files[index].name,
        }

    def _features(self, cloud: pio.PointCloud, idx: np.ndarray, path: Path) -> np.ndarray:
        cols = []

        def attr(name: str, feature: str) -> np.ndarray:
            if name not in cloud.attributes:
                raise InputError(f"tile has no {name!r} dimension for feature {feature!r}", path)
            return np.asarray(cloud.attributes[name])[idx].astype(np.float64)

        for name in self.features:
            if name == "intensity":
                cols.append(np.log1p(attr("intensity", name)) / np.log1p(65535.0))
            elif name == "return_number":
                r = attr("return_number", name)
                nr = attr("number_of_returns", name)
                cols.append(r / np.maximum(nr, 1))
            elif name == "classification":
                cls = attr("classification", name).astype(np.int64)
                lut = np.full(256, len(self.classes), dtype=np.int64)
                lut[list(self.classes)] = np.arange(len(self.classes))
                onehot = np.zeros((len(idx), len(self.classes) + 1))
                onehot[np.arange(len(idx)), lut[np.clip(cls, 0, 255)]] = 1.0
                cols.append(onehot)
            elif name == "rgb":
                cols.append(np.stack([attr(c, name) / 65535.0
                                      for c in ("red", "green", "blue")], axis=1))
        if not cols:
            return np.zeros((len(idx), 0), dtype=np.float32)
        return np.column_stack([c.reshape(len(idx), -1) for c in cols]).astype(np.float32)
