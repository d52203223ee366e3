"""LightningDataModule over ``pcgen.data.TileDataset``: tile the real LiDAR once, then reuse it.

The data config names source files (by name in the shared sample-data folder, or by path); the
first run tiles them with ``pcgen.data.tile_files`` into a cache folder keyed by the files and the
tiling options, written atomically so a killed run never leaves a half-tiled cache behind.
``conditional=True`` wraps the tiles in ``pcgen.data.holes.GapDataset`` for gap-filling heads.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Subset, default_collate

from pcgen.errors import ConfigError, InputError
from pcgen.train.sampler import PassIndexed, StepSampler


def default_cache_dir() -> Path:
    """``$PCGEN_CACHE`` or ``~/.cache/pcgen``: where tiles made for training are kept."""
    return Path(os.environ.get("PCGEN_CACHE", Path.home() / ".cache" / "pcgen"))


def resolve_sources(files: Sequence[str] | None) -> list[Path]:
    """Turn data-config file entries into absolute LAS/LAZ (or EPT) paths.

    A bare name (``Megaplot.laz``) is looked up in the shared sample-data folder through
    ``pcgen.datadir``; anything with a folder part is a path, expanded like every command's
    inputs (`pcgen.inputs.list_inputs`: a file, a folder, a tile index or an EPT dataset).
    ``None`` / empty means every shared LiDAR file.
    """
    from pcgen import datadir
    from pcgen.inputs import list_inputs

    if not files:
        return datadir.lidar_files()
    if isinstance(files, (str, Path)):  # data.files=a.laz: one file (it was read letter by letter)
        files = [files]
    entries = [os.path.expanduser(str(entry)) for entry in files]
    paths = [Path(e) if os.sep in e else datadir.lidar_file(e) for e in entries]
    return [p.resolve() for p in list_inputs(paths)]


def ensure_tiles(sources: Sequence[Path], cache_dir: str | os.PathLike | None,
                 tile_options: Mapping[str, Any], named: Sequence[str | os.PathLike] = ()) -> Path:
    """Return a folder of tiles for ``sources``, tiling them first unless a matching cache exists.

    The cache key hashes the source paths, sizes, modification times and the tiling options,
    so editing either makes a new cache rather than silently reusing stale tiles. The cache may
    not lie in, or hold, a source or any of ``named`` (the folders and indexes the user gave).
    """
    from pcgen.data.tile_index import INDEX_NAME
    from pcgen.data.tiling import TileOptions, tile_files
    from pcgen.outputs import check_output

    stats = [(str(p), p.stat().st_size, int(p.stat().st_mtime)) for p in sources]
    key_src = {"files": stats, "options": dict(tile_options)}
    key = hashlib.sha1(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir else default_cache_dir() / "tiles"
    out = root / key
    check_output(out, [*sources, *named], folder=True, overwrite=True)
    if (out / INDEX_NAME).is_file():
        return out
    # tile_files writes into a temporary sibling and renames on success, so an existing
    # folder here is always complete; a half-made one never appears under this name.
    tile_files([str(p) for p in sources], out, TileOptions(**dict(tile_options)), overwrite=True,
               overview=False)
    return out


def known_keys(options: Mapping[str, Any] | None, target, prefix: str, data_first: bool = True,
                taken: Sequence[str] = ()) -> dict:
    """``options`` as a dict once every key is a keyword of ``target`` (past its first, data
    argument with ``data_first``; none the module sets itself, ``taken``): a typo
    (``+data.tile_options.bufer=5``) is one line, not a TypeError from deep in the run."""
    import inspect

    params = list(inspect.signature(target).parameters)[1 if data_first else 0:]
    known = [k for k in params if k not in taken]
    options = dict(options or {})
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {prefix}.{unknown[0]} (known: {', '.join(known)})")
    return options


class TileDataModule(L.LightningDataModule):
    """Tiles -> ``TileDataset`` (-> ``GapDataset``) -> step-indexed, DDP-sharded batches.

    Args:
        files: source LAS/LAZ names or paths (see :func:`resolve_sources`); ignored if
            ``tile_dir`` is given.
        tile_dir: an existing folder of tiles (``pcgen tile`` output) to train on directly.
        cache_dir: where tiles made from ``files`` are kept (default ``$PCGEN_CACHE/tiles``).
        tile_options: keyword arguments of ``pcgen.data.tile_files`` (tile size, buffer, ...).
        dataset: keyword arguments of ``TileDataset`` (``num_points``, ``sampling``, ...).
        conditional: wrap in ``GapDataset`` (items: context, points inside the gap, gap_box).
        gap: keyword arguments of ``GapDataset`` (``context_points``, ``target_points``, ...).
        batch_size: per-process batch size.
        num_workers: loader worker processes.
        val_fraction: share of tiles held out for validation (0: no validation).
        seed: seed of the batch order and of the train/val split.
    """

    def __init__(self, files: Sequence[str] | None = None, tile_dir: str | None = None,
                 cache_dir: str | None = None, tile_options: Mapping[str, Any] | None = None,
                 dataset: Mapping[str, Any] | None = None, conditional: bool = False,
                 gap: Mapping[str, Any] | None = None, batch_size: int = 16, num_workers: int = 0,
                 val_fraction: float = 0.0, seed: int = 0):
        super().__init__()
        self.files = ([files] if isinstance(files, (str, Path)) else list(files)) if files else None  # a=one file
        self.tile_dir = tile_dir
        self.cache_dir = cache_dir
        from pcgen.data import TileDataset
        from pcgen.data.holes import GapDataset
        from pcgen.data.tiling import TileOptions

        self.tile_options = known_keys(tile_options, TileOptions, "data.tile_options", data_first=False)
        self.dataset_options = known_keys(dataset, TileDataset, "data.dataset", taken=("seed",))
        augment = self.dataset_options.get("augment")
        if isinstance(augment, Mapping):  # +data.dataset.augment={rotate_z:true,jitter:0.02}
            from pcgen.data.transforms import Augment

            options = {k: v for k, v in augment.items() if k != "_target_"}
            self.dataset_options["augment"] = Augment(**known_keys(options, Augment, "data.dataset.augment",
                                                                   data_first=False))
        self.conditional = conditional
        self.gap_options = known_keys(gap, GapDataset, "data.gap")
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.val_fraction = float(val_fraction)
        self.seed = int(seed)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.tiles: Dataset | None = None
        if self.batch_size <= 0:
            raise ConfigError(f"data.batch_size must be positive, got {batch_size}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")

    # -- preparation ------------------------------------------------------------------------
    def resolve_tile_dir(self) -> Path:
        if self.tile_dir:
            path = Path(os.path.expanduser(self.tile_dir))
            if not path.is_dir():
                raise InputError("tile folder not found", path)
            return path
        named = [os.path.expanduser(str(e)) for e in self.files or () if os.sep in str(e)]
        return ensure_tiles(resolve_sources(self.files), self.cache_dir, self.tile_options, named)

    def prepare_data(self) -> None:
        # Runs on one process per node before setup(): tiling happens once, not per rank.
        self.resolve_tile_dir()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from pcgen.data import TileDataset

        tiles = TileDataset(self.resolve_tile_dir(), seed=self.seed, **self.dataset_options)
        if len(tiles) == 0:
            raise InputError("no tiles to train on", self.resolve_tile_dir())
        self.tiles = tiles
        data: Dataset = tiles
        if self.conditional:
            from pcgen.data.holes import GapDataset

            data = GapDataset(tiles, **self.gap_options)
        n_val = round(len(data) * self.val_fraction)
        if self.val_fraction and not 0 < n_val < len(data):  # it was dropped without a word
            raise ConfigError(f"data.val_fraction={self.val_fraction:g} of {len(data)} tiles leaves "
                              f"{n_val} for validation and {len(data) - n_val} for training: both need one")
        if n_val:
            order = torch.randperm(len(data), generator=torch.Generator().manual_seed(self.seed))
            self.val_set = Subset(data, order[:n_val].tolist())
            self.train_set = Subset(data, order[n_val:].tolist())
        else:
            self.train_set = data

    # -- loaders ----------------------------------------------------------------------------
    def _start_batch(self) -> int:
        trainer = getattr(self, "trainer", None)
        module = trainer.lightning_module if trainer is not None else None
        return int(getattr(module, "batches_seen", 0))

    def train_dataloader(self) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        sampler = StepSampler(len(self.train_set), self.batch_size, seed=self.seed,
                              start_batch=self._start_batch(), rank=rank, world_size=world,
                              encode_pass=True)
        return self._loader(PassIndexed(self.train_set), sampler)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None:
            return []
        return self._loader(self.val_set, None)

    def _loader(self, data: Dataset, sampler: StepSampler | None) -> DataLoader:
        # An own generator keeps the loader from drawing its worker seed from the global
        # torch RNG, which would shift the heads' noise between a resumed and a straight run.
        # torch's default_collate stacks the items' tensors, arrays and numbers field by field
        # and keeps strings (tile names) as lists: all a TileDataset/GapDataset item holds.
        return DataLoader(data, batch_size=self.batch_size, sampler=sampler,
                          num_workers=self.num_workers, collate_fn=default_collate,
                          generator=torch.Generator().manual_seed(self.seed),
                          persistent_workers=self.num_workers > 0, drop_last=False)

