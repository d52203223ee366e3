"""A per-point classifier of metric-frame tiles: the downstream model that judges augmentation.

The same architecture, budget and seed go into every arm of ``pcgen eval-augment
--downstream``; only the training tiles differ. The loop is Lightning's (a fixed number of
steps over a :class:`pcgen.train.sampler.StepSampler`, so a seed fixes every batch); the
classic augmentation (rotation about z, scaling, jitter, random drop) is drawn per pass and
index, so it is reproducible too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from pcgen.train.sampler import StepSampler

IGNORE = -1


@dataclass(frozen=True)
class ClassicAugment:
    """The augmentation every point-cloud segmentation recipe uses.

    Args:
        rotate: random rotation about z (a tile has no preferred heading).
        scale: (low, high) of a uniform scale of all three axes.
        jitter: standard deviation of Gaussian noise per coordinate, metres.
        drop: at most this fraction of points is dropped (replaced by copies of kept ones, so
            the tile keeps its size).
    """

    rotate: bool = True
    scale: tuple[float, float] = (0.9, 1.1)
    jitter: float = 0.05
    drop: float = 0.2

    def __call__(self, points: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        pts = points.astype(np.float32, copy=True)
        if self.rotate:
            a = rng.uniform(0, 2 * np.pi)
            c, s = np.cos(a), np.sin(a)
            pts[:, :2] = pts[:, :2] @ np.array([[c, s], [-s, c]], np.float32)
        pts *= np.float32(rng.uniform(*self.scale))
        pts += rng.normal(0, self.jitter, pts.shape).astype(np.float32)
        if self.drop > 0:
            n = len(pts)
            dropped = rng.random(n) < rng.uniform(0, self.drop)
            if dropped.all():
                dropped[0] = False
            kept = np.nonzero(~dropped)[0]
            idx = np.where(dropped, rng.choice(kept, n), np.arange(n))
            pts, labels = pts[idx], labels[idx]
        return pts, labels


class TileSet(Dataset):
    """Tiles as ``{"points": (P, 3), "labels": (P,)}``, augmented per pass when ``augment`` is set.

    Indices from a ``StepSampler(encode_pass=True)`` are ``pass * len + i``: the pass seeds
    the augmentation of tile ``i``.
    """

    def __init__(self, points: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                 augment: ClassicAugment | None = None, seed: int = 0):
        if len(points) != len(labels) or not len(points):
            raise ValueError("TileSet needs as many label arrays as tiles, and at least one tile")
        self.points = [np.asarray(p, np.float32) for p in points]
        self.labels = [np.asarray(lab, np.int64) for lab in labels]
        self.augment = augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        i = index % len(self.points)
        pts, lab = self.points[i], self.labels[i]
        if self.augment is not None:
            pts, lab = self.augment(pts, lab, np.random.default_rng([self.seed, index]))
        return {"points": torch.from_numpy(np.ascontiguousarray(pts)), "labels": torch.from_numpy(lab)}


def tile_loader(tiles: TileSet, batch_size: int, seed: int, train: bool = True) -> DataLoader:
    """Endless seeded batches for training, or every tile once, in order, for testing."""
    if train:
        sampler = StepSampler(len(tiles), batch_size, seed=seed, encode_pass=tiles.augment is not None)
        return DataLoader(tiles, batch_size=batch_size, sampler=sampler, num_workers=0)
    return DataLoader(tiles, batch_size=batch_size, shuffle=False, num_workers=0)


class TileSegmenter(L.LightningModule):
    """An encoder's per-point features and a linear layer: logits per point.

    Args:
        encoder: a pcgen encoder (``point_features`` are used), taking xyz in ``scale`` units.
        num_classes: C.
        scale: (3,) divisors of x, y, z, so metres enter the network near unit range.
        lr, weight_decay: AdamW settings.
        class_weights: (C,) weights of the per-point cross-entropy (None: all 1); see
            :func:`balanced_weights`.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, scale: Sequence[float] = (20.0, 20.0, 10.0),
                 lr: float = 2e-3, weight_decay: float = 1e-4, class_weights: Sequence[float] | None = None):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.encoder = encoder
        self.classify = nn.Linear(encoder.point_dim, num_classes)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        weights = torch.ones(num_classes) if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        if weights.shape != (num_classes,) or not torch.all(torch.isfinite(weights) & (weights >= 0)):
            raise ValueError(f"class_weights must be {num_classes} finite values >= 0, got {class_weights}")
        self.register_buffer("class_weights", weights)
        self.lr, self.weight_decay = lr, weight_decay
        self.num_classes = num_classes

    def forward(self, points: Tensor) -> Tensor:
        """(B, N, 3) frame points -> (B, N, C) logits."""
        return self.classify(self.encoder(points / self.scale).point_features)

    def training_step(self, batch, batch_idx):
        logits = self(batch["points"])
        loss = nn.functional.cross_entropy(logits.reshape(-1, self.num_classes), batch["labels"].reshape(-1),
                                           weight=self.class_weights, ignore_index=IGNORE)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    @torch.no_grad()
    def confusion(self, loader: DataLoader) -> np.ndarray:
        """(C, C) counts of (true, predicted) over every labelled point of the loader's tiles."""
        self.eval()
        c = self.num_classes
        out = torch.zeros(c * c, dtype=torch.int64)
        for batch in loader:
            pred = self(batch["points"]).argmax(-1).reshape(-1)
            true = batch["labels"].reshape(-1)
            keep = true != IGNORE
            out += torch.bincount(true[keep] * c + pred[keep], minlength=c * c)
        return out.view(c, c).numpy()


def balanced_weights(labels: Sequence[np.ndarray], num_classes: int, power: float) -> np.ndarray:
    """(C,) cross-entropy weights ``frequency ** -power``, mean 1 over the classes present.

    Scarce labelled sets are lopsided (farmland tiles are mostly ground) while the sites a model
    is used on may not be; ``power`` 0 keeps plain cross-entropy, 0.5 the inverse square root, 1
    the inverse frequency. A class absent from ``labels`` gets 1 (it contributes no loss anyway).
    """
    counts = np.zeros(num_classes, np.float64)
    for lab in labels:
        lab = np.asarray(lab)
        counts += np.bincount(lab[lab != IGNORE], minlength=num_classes)[:num_classes]
    weights = np.ones(num_classes)
    present = counts > 0
    if present.any():
        w = (counts[present] / counts[present].sum()) ** -power
        weights[present] = w / w.mean()
    return weights


def iou(confusion: np.ndarray) -> np.ndarray:
    """(C,) intersection over union per class; NaN where the class is absent from truth and prediction."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def iou_ceiling(test_counts: Sequence[int], trained: Sequence[int]) -> float:
    """The highest mIoU over the classes present in the test set that a classifier which never
    predicts a class it was not trained on can reach.

    A class missing from the training labels is never predicted, so its IoU is 0 and its test
    points count against the class they are called. The ceiling gets every trained class right
    and calls each untrained class, as a whole, the trained class where it costs least (mIoU is
    convex in how the points are split, so one class each is best). It tells how far an arm can
    go at a budget whose labelled tiles lack a class the held-out sites have.

    Args:
        test_counts: (C,) test points per class.
        trained: class indices present in the training labels.
    """
    from itertools import product

    counts = np.asarray(test_counts, dtype=np.float64)
    scored = np.flatnonzero(counts > 0)
    hit = [c for c in scored if c in set(int(t) for t in trained)]
    missed = [c for c in scored if c not in hit]
    if not hit:
        return 0.0
    best = 0.0
    for called in product(hit, repeat=len(missed)):
        extra = dict.fromkeys(hit, 0.0)
        for m, c in zip(missed, called):
            extra[c] += counts[m]
        best = max(best, sum(counts[c] / (counts[c] + extra[c]) for c in hit) / len(scored))
    return float(best)
