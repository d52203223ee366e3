"""Lightning data for gap models: cached gap examples of the training sites, augmented on the fly.

Cutting gaps out of millions of points and computing each one's source costs tens of
milliseconds an example, too slow to redo every step on two CPU cores; the examples are cut
once (:func:`pcgen.tasks.gap_examples.cut_examples`, saved by ``save_examples``) and each draw
rotates the whole example about the gap's centre by a multiple of 90° and may mirror it (the
source was computed before, so it stays the source of the rotated gap), may stretch its heights
above ground by one factor (forests differ in height from site to site; the training sites
span fewer heights than users' forests), may thin the whole example to a lower density (most
training gaps come from a 15 points/m² survey, users' scans are often 0.5-5) and thins the
context to a fixed budget.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from pcgen.errors import ConfigError, InputError
from pcgen.models.gap_head import example_batch
from pcgen.tasks.gap_examples import context_subset, load_examples, stretch_heights


def thin_example(ex: dict, rng: np.random.Generator, min_density: float, keep_points: int = 8) -> dict:
    """The example as a sparser scan of the same place: context, source and truth thinned by one
    factor, its density log-uniform between ``min_density`` and its own (points/m²), the density
    descriptor (``cond[1]``, log density / 3) moved to match. Source and truth keep at least
    ``keep_points`` points; an example already at or under ``min_density`` is returned as it is."""
    density = float(np.exp(3.0 * ex["cond"][1]))
    if density <= min_density:
        return ex
    factor = float(np.exp(rng.uniform(np.log(min_density), np.log(density)))) / density
    factor = min(1.0, max(factor, keep_points / len(ex["source"]), keep_points / len(ex["truth"])))
    out = dict(ex)
    ctx = rng.random(len(ex["context"])) < factor
    out["context"], out["context_ground"] = ex["context"][ctx], ex["context_ground"][ctx]
    keep = {key: np.sort(rng.choice(len(ex[key]), max(1, int(round(len(ex[key]) * factor))), replace=False))
            for key in ("source", "truth")}
    out.update(take_source(ex, keep["source"]), truth=ex["truth"][keep["truth"]])
    out["cond"] = ex["cond"].copy()
    out["cond"][1] += np.log(factor) / 3.0
    return out


def take_source(ex: dict, index: np.ndarray) -> dict:
    """The example's source points at ``index``, with their kinds when the example has them."""
    out = {"source": ex["source"][index]}
    if ex.get("source_kind") is not None:
        out["source_kind"] = ex["source_kind"][index]
    return out


def augment_example(ex: dict, rng: np.random.Generator, max_context: int, max_points: int = 512,
                    context_band: float = 0.0, height_scale: Sequence[float] = (1.0, 1.0),
                    thin_share: float = 0.0, thin_min_density: float = 0.5) -> dict:
    """A rotated (k · 90°), maybe mirrored copy of one example with at most ``max_context`` context
    points (chosen by :func:`~pcgen.tasks.gap_examples.context_subset` with ``context_band``, as
    filling does); above ``max_points`` source points the source and the truth are thinned by one
    factor. With ``height_scale=(lo, hi)`` every height above ground (source, context, truth and
    the height descriptors) is multiplied by one factor drawn log-uniformly from [lo, hi]: the
    frame's ground stays where it is and the example stays consistent, a taller or lower forest.
    A share ``thin_share`` of the draws is first thinned by :func:`thin_example`."""
    if thin_share > 0 and rng.random() < thin_share:
        ex = thin_example(ex, rng, thin_min_density)
    out = dict(ex)
    n = len(ex["source"])
    if n > max_points:
        m = max(1, int(round(len(ex["truth"]) * max_points / n)))
        out.update(take_source(ex, rng.choice(n, max_points, replace=False)))
        out["truth"] = ex["truth"][rng.choice(len(ex["truth"]), m, replace=False)]
    if len(ex["context"]) > max_context:
        keep = context_subset(ex["context"], ex["half"], max_context, context_band, rng)
        out["context"], out["context_ground"] = ex["context"][keep], ex["context_ground"][keep]
    k, flip = int(rng.integers(4)), bool(rng.integers(2))

    def turn(p: np.ndarray) -> np.ndarray:
        p = p.copy()
        for _ in range(k):
            p[:, :2] = np.c_[-p[:, 1], p[:, 0]]
        if flip:
            p[:, 0] = -p[:, 0]
        return p

    lo, hi = check_height_scale(height_scale)
    stretch = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo
    for key in ("source", "context", "truth"):
        out[key] = turn(out[key])
    if stretch != 1.0:
        out.update(stretch_heights(out, stretch))
    if k % 2:
        out["half"] = ex["half"][::-1].copy()
    return out


def check_height_scale(height_scale: Sequence[float]) -> tuple[float, float]:
    """(lo, hi) of a height stretch range: two finite numbers with 0 < lo <= hi."""
    try:
        values = tuple(float(v) for v in height_scale)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 2 or not all(np.isfinite(values)) or not 0.0 < values[0] <= values[1]:
        raise ConfigError(f"data.height_scale must be two finite numbers 0 < lo <= hi, got {height_scale!r}")
    return values


class GapExamples(Dataset):
    """Cached gap examples; the ``d``-th draw (of item ``i``) is augmented from seed (seed, d, i),
    so a run is repeatable for a seed (loaded in the training process: no workers)."""

    def __init__(self, examples: Sequence[dict], seed: int = 0, max_context: int = 1536, max_points: int = 512,
                 augment: bool = True, context_band: float = 0.0,
                 height_scale: Sequence[float] = (1.0, 1.0), thin_share: float = 0.0,
                 thin_min_density: float = 0.5):
        self.examples = list(examples)
        self.height_scale = check_height_scale(height_scale)
        self.thin_share, self.thin_min_density = check_thinning(thin_share, thin_min_density)
        self.seed, self.max_context, self.max_points, self.augment = seed, max_context, max_points, augment
        self.context_band = float(context_band)
        check_sizes(max_context, max_points, context_band)
        self.draws = 0

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        self.draws += 1
        ex = self.examples[i]
        if not self.augment:
            return ex
        return augment_example(ex, np.random.default_rng([self.seed, self.draws, i]), self.max_context,
                               self.max_points, self.context_band, self.height_scale,
                               self.thin_share, self.thin_min_density)


def check_caches(caches) -> list[Path]:
    """The ``data.caches`` paths, each an existing ``.npz`` (zip) file; one path given alone is
    a list of one (it was read letter by letter).

    Raises:
        ConfigError: no list; InputError: a missing file, or one that is no zip archive.
    """
    if isinstance(caches, (str, Path)):
        caches = [caches]
    if not isinstance(caches, Sequence) or not caches:
        raise ConfigError(f"data.caches must list gap example caches (.npz), got {caches!r}")
    paths = [Path(str(c)) for c in caches]
    for path in paths:
        if not path.is_file():
            raise InputError("gap example cache not found (cut it with datasets/train_default_fill.py)", path)
        if not zipfile.is_zipfile(path):  # a .npz is a zip: a truncated or other file is not
            raise InputError("not a gap example cache (an .npz of datasets/train_default_fill.py)", path)
    return paths


class GapDataModule(L.LightningDataModule):
    """Gap examples from ``.npz`` caches, shuffled with a fixed seed.

    Args:
        caches: ``save_examples`` files (one per training site).
        batch_size: gaps per batch.
        max_context: context points kept per gap (random subset).
        max_points: source points kept per gap (the truth thinned by the same factor).
        seed: shuffling and augmentation seed.
        num_workers: DataLoader workers (0 on a 2-core machine: the model needs both cores).
        conditional: always true (recorded in checkpoints: gap models fill gaps).
        context_band: near-gap band of :func:`~pcgen.tasks.gap_examples.context_subset` (0: uniform).
        height_scale: (lo, hi) range of the heights' stretch per draw ((1, 1): none).
        site_balance: b in [0, 1]; a site (cache) of n examples gets a share of the draws
            proportional to n^(1 - b) (0: every example alike, shuffled; 1: every site alike),
            so one large site does not decide alone what the model learns.
        thin_share: share of the draws thinned to a lower density (:func:`thin_example`; 0: none).
        thin_min_density: the lowest density (points/m²) a thinned draw gets.
    """

    def __init__(self, caches: Sequence[str], batch_size: int = 8, max_context: int = 1536, max_points: int = 512,
                 seed: int = 0, num_workers: int = 0, conditional: bool = True, context_band: float = 0.0,
                 height_scale: Sequence[float] = (1.0, 1.0), site_balance: float = 0.0,
                 thin_share: float = 0.0, thin_min_density: float = 0.5):
        super().__init__()
        self.thin_share, self.thin_min_density = check_thinning(thin_share, thin_min_density)
        self.context_band = float(check_sizes(max_context, max_points, context_band))
        self.height_scale = check_height_scale(height_scale)
        self.site_balance = check_site_balance(site_balance)
        self.caches = [Path(str(c)) for c in ([caches] if isinstance(caches, (str, Path)) else caches)]
        self.batch_size, self.max_context, self.max_points = batch_size, max_context, max_points
        self.seed, self.num_workers = seed, num_workers
        self.train_set: GapExamples | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        examples, self.site_sizes = [], []
        for path in check_caches(self.caches):
            try:
                site = load_examples(path)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                raise InputError(f"not a gap example cache ({str(exc).splitlines()[0][:120]})", path) from None
            examples += site
            self.site_sizes.append(len(site))
        if not examples:
            raise InputError("the gap example caches hold no examples")
        if len(examples) < self.batch_size:  # with whole batches only, no step would run
            raise InputError(f"{len(examples)} gap examples, fewer than data.batch_size ({self.batch_size}): "
                             "lower data.batch_size")
        self.train_set = GapExamples(examples, self.seed, self.max_context, self.max_points,
                                     context_band=self.context_band, height_scale=self.height_scale,
                                     thin_share=self.thin_share, thin_min_density=self.thin_min_density)

    def train_dataloader(self) -> DataLoader:
        gen = torch.Generator().manual_seed(self.seed)
        if not self.site_balance:
            return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=gen,
                              collate_fn=example_batch, num_workers=self.num_workers, drop_last=True)
        sampler = WeightedRandomSampler(site_weights(self.site_sizes, self.site_balance),
                                        num_samples=len(self.train_set), replacement=True, generator=gen)
        return DataLoader(self.train_set, batch_size=self.batch_size, sampler=sampler,
                          collate_fn=example_batch, num_workers=self.num_workers, drop_last=True)


def check_thinning(share: float, min_density: float) -> tuple[float, float]:
    """(share, min_density): a share in [0, 1] and a finite density > 0."""
    try:
        values = float(share), float(min_density)
    except (TypeError, ValueError):
        values = (float("nan"), float("nan"))
    if not 0.0 <= values[0] <= 1.0:  # NaN fails too
        raise ConfigError(f"data.thin_share must be a number in [0, 1], got {share!r}")
    if not (np.isfinite(values[1]) and values[1] > 0):
        raise ConfigError(f"data.thin_min_density must be a finite number > 0, got {min_density!r}")
    return values


def check_sizes(max_context, max_points, context_band) -> float:
    """The context and point budgets (whole numbers >= 1) and the band (>= 0); returns the band."""
    from pcgen.options import MAX_COUNT, check_range

    check_range("data.max_context", max_context, 1, MAX_COUNT, integer=True)
    check_range("data.max_points", max_points, 1, MAX_COUNT, integer=True)
    return check_range("data.context_band", context_band, 0, 1e6)


def check_site_balance(balance: float) -> float:
    """The site balance: a number in [0, 1]."""
    try:
        value = float(balance)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ConfigError(f"data.site_balance must be a number in [0, 1], got {balance!r}")
    return value


def site_weights(sizes: Sequence[int], balance: float) -> torch.Tensor:
    """Per-example draw weights: a site of n examples gets a share proportional to n^(1 - balance)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    share = np.where(sizes > 0, sizes ** (1.0 - balance), 0.0)
    share = share / share.sum()
    return torch.as_tensor(np.repeat(share / np.maximum(sizes, 1), sizes.astype(np.int64)), dtype=torch.float64)
