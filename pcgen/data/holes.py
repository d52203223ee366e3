"""Gap-filling training data: cut an xy box out of a normalized sample, keep both sides.

A gap is a vertical column (an xy box, all z) because that is how LiDAR coverage fails in
practice: occlusion shadows, dropped swaths, masked-out objects. The points inside become the
generation target, the rest the context, both in the sample's normalized frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pcgen.data.sampling import resample_index
from pcgen.errors import ConfigError, InputError, ShapeError


@dataclass
class Cut:
    """One cut of a normalized sample (not :class:`pcgen.tasks.gaps.Gap`, a gap found in a file).

    Attributes:
        context: (N - K, 3) points outside the box.
        target: (K, 3) points inside the box.
        box: (4,) float32 (xmin, ymin, xmax, ymax).
    """

    context: np.ndarray
    target: np.ndarray
    box: np.ndarray


def _check_size(size: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(size[0]), float(size[1])
    if not 0 < lo <= hi < 1:
        raise ConfigError(f"gap size must be fractions 0 < low <= high < 1 of the xy extent, got {size}")
    return lo, hi


def cut_gap(points: np.ndarray | torch.Tensor, rng: np.random.Generator,
            size: tuple[float, float] = (0.15, 0.35), min_points: int = 16, max_tries: int = 50) -> Cut:
    """Remove a random xy box from a sample.

    The box's side lengths are uniform fractions ``size`` of the sample's xy extent (drawn per
    axis); it is centred on a random existing point (so it is never empty) and shifted to lie
    within the extent. Boxes holding fewer than ``min_points`` points, or leaving fewer than
    ``min_points`` outside, are redrawn.

    Args:
        points: (N, 3) normalized xyz.
        rng: numpy Generator, the only source of randomness.
        size: (low, high) side length as a fraction of the xy extent.
        min_points: least number of points on each side of the cut.
        max_tries: redraws before giving up.

    Returns:
        :class:`Cut`.

    Raises:
        InputError: the sample is too small or too degenerate to cut such a gap.
    """
    xyz = points.detach().cpu().numpy() if isinstance(points, torch.Tensor) else np.asarray(points)
    if xyz.ndim != 2 or xyz.shape[1] < 3:
        raise ShapeError(f"points must be (N, 3), got {xyz.shape}")
    xyz = xyz[:, :3].astype(np.float32, copy=False)
    lo_frac, hi_frac = _check_size(size)
    if len(xyz) < 2 * min_points:
        raise InputError(f"a sample of {len(xyz)} points cannot give {min_points} points on both sides of a gap")
    lo, hi = xyz[:, :2].min(axis=0), xyz[:, :2].max(axis=0)
    extent = hi - lo
    if not np.all(extent > 0):
        raise InputError("sample has zero xy extent; cannot cut a gap")
    for _ in range(max_tries):
        half = 0.5 * rng.uniform(lo_frac, hi_frac, size=2) * extent
        center = xyz[rng.integers(len(xyz)), :2]
        center = np.clip(center, lo + half, hi - half)
        box = np.concatenate([center - half, center + half]).astype(np.float32)
        inside = np.all((xyz[:, :2] >= box[:2]) & (xyz[:, :2] <= box[2:]), axis=1)
        k = int(inside.sum())
        if min_points <= k <= len(xyz) - min_points:
            return Cut(context=xyz[~inside], target=xyz[inside], box=box)
    raise InputError(f"no gap with at least {min_points} points on both sides after {max_tries} tries")


class GapDataset(torch.utils.data.Dataset):
    """Wrap a dataset of normalized samples (e.g. ``TileDataset``) into gap-filling examples.

    Item ``i`` is a deterministic function of (``seed``, epoch, ``i``) and the wrapped item;
    call :meth:`set_epoch` to draw fresh gaps each epoch.

    Args:
        tile_dataset: items are dicts with "points" (N, 3) in a normalized frame.
        context_points: M context points per example.
        target_points: K gap points per example.
        seed: base seed.
        gap_size: box side as fractions (low, high) of the sample's xy extent.
        min_gap_points: least number of true points inside the gap (and outside).

    Items:
        {"context": float32 (M, 3), "points": float32 (K, 3), "gap_box": float32 (4,)} plus the
        wrapped item's "center", "scale", "tile" when present (to map results back to the world).
    """

    PASSTHROUGH = ("center", "scale", "tile")

    def __init__(self, tile_dataset, context_points: int = 1024, target_points: int = 256, seed: int = 0,
                 gap_size: Sequence[float] = (0.15, 0.35), min_gap_points: int = 16):
        if context_points < 1 or target_points < 1:
            raise ConfigError(f"context_points and target_points must be >= 1, got {context_points}, {target_points}")
        self.tile_dataset = tile_dataset
        self.context_points, self.target_points = int(context_points), int(target_points)
        self.seed, self.epoch = int(seed), 0
        self.gap_size = _check_size(tuple(gap_size))
        self.min_gap_points = int(min_gap_points)

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (still deterministic) gap per item from now on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.tile_dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.tile_dataset[index]
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        try:
            gap = cut_gap(item["points"], rng, self.gap_size, self.min_gap_points)
        except InputError as exc:  # name the settings a training run can change
            name = getattr(self.tile_dataset, "files", None)
            where = f"tile {Path(name[index]).name}: " if name is not None else ""
            raise InputError(f"{where}{exc} (samples of {len(item['points'])} points; raise "
                             "data.dataset.num_points or lower data.gap.min_gap_points)") from None
        context = gap.context[resample_index(len(gap.context), self.context_points, rng)]
        target = gap.target[resample_index(len(gap.target), self.target_points, rng)]
        out = {  # fancy indexing copies, so both are contiguous
            "context": torch.from_numpy(context),
            "points": torch.from_numpy(target),
            "gap_box": torch.from_numpy(gap.box),
        }
        out.update({k: item[k] for k in self.PASSTHROUGH if k in item})
        return out


__all__ = ["Cut", "cut_gap", "GapDataset"]
