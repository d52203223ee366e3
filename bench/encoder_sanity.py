"""Sanity run on the real shared LiDAR: do the encoders learn ground / vegetation / building patches?

From every shared file with ASPRS classes, cut square patches (default 10 m), label each by its
dominant class — ground (2), vegetation (3, 4, 5), building (6) — and drop patches dominated by
anything else. Class 1 ("unclassified") counts as vegetation only in the two lidR forest plots
(Megaplot, MixedConifer): there the only classes are ground and non-ground, heights are
normalized stands of trees, so every non-ground point is a tree return. Elsewhere class 1 mixes
buildings, trees and cars, so patches it dominates are dropped.

Held-out patches are whole spatial blocks (2 x 2 patches) of each file, not random points or
patches, so neighbouring ground cannot leak across the split. Each encoder (its pcgen/conf/encoder
config, with PointNet++ centroid counts scaled to the patch size) trains for a few minutes on
CPU as a classifier over its global feature; the script prints held-out accuracy against the
majority-class rate (the training set's most common label, measured on the held-out patches).
BatchNorm statistics are re-estimated with the final weights before the held-out pass (the
accuracy before that is printed too): after so few steps the running averages still lag.

    python bench/encoder_sanity.py --minutes 3
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import pcgen.io
from pcgen import datadir

LABELS = ("ground", "vegetation", "building")
ASPRS_TO_LABEL = {2: 0, 3: 1, 4: 1, 5: 1, 6: 2}
CLASS1_IS_VEGETATION = {"Megaplot.laz", "MixedConifer.laz"}
FEET = {"foot", "us survey foot", "foot_us", "us foot"}


@dataclass
class Patch:
    points: np.ndarray  # (n, 3) metres, centred, divided by the half side
    label: int
    file: str
    block: tuple[int, int]  # which 2 x 2-patch block of its file it lies in
    test: bool = False


def metres_per_unit(cloud) -> float:
    """Horizontal unit of the file's CRS in metres (1.0 without a usable CRS)."""
    try:
        unit = cloud.crs.axis_info[0].unit_name.lower()
    except Exception:  # no CRS, or one pyproj cannot describe: assume metres
        return 1.0
    return 0.3048006096 if "survey" in unit else 0.3048 if unit in FEET else 1.0


def cut_patches(path: Path, side: float, min_points: int, test_fraction: float, rng) -> list[Patch]:
    """Square patches of one file, labelled by dominant class, split by 2 x 2-patch blocks."""
    cloud = pcgen.io.read(path)
    if "classification" not in cloud.attributes:
        return []
    cls = np.asarray(cloud.attributes["classification"]).astype(np.int64)
    mapping = dict(ASPRS_TO_LABEL)
    if path.name in CLASS1_IS_VEGETATION:
        mapping[1] = 1
    if not any(c in mapping for c in np.unique(cls)):
        return []
    xyz = cloud.xyz * metres_per_unit(cloud)
    origin = xyz[:, :2].min(0)
    cell = np.floor((xyz[:, :2] - origin) / side).astype(np.int64)
    keys = cell[:, 0] * 1_000_003 + cell[:, 1]
    order = np.argsort(keys, kind="stable")
    uniq, starts = np.unique(keys[order], return_index=True)
    patches = []
    for key, members in zip(uniq, np.split(order, starts[1:])):
        if len(members) < min_points:
            continue
        values, counts = np.unique(cls[members], return_counts=True)
        dominant = int(values[counts.argmax()])
        if dominant not in mapping:
            continue
        ij = cell[members[0]]
        centre = origin + (ij + 0.5) * side
        p = xyz[members].copy()
        p[:, :2] -= centre
        p[:, 2] -= np.percentile(p[:, 2], 2)  # heights above the patch's low points, in patch units
        patches.append(Patch(p / (side / 2), mapping[dominant], path.name, (int(ij[0]) // 2, int(ij[1]) // 2)))
    # hold out whole blocks until test_fraction of this file's patches is reached
    blocks = sorted({p.block for p in patches})
    rng.shuffle(blocks)
    held, target = set(), test_fraction * len(patches)
    count = {b: sum(p.block == b for p in patches) for b in blocks}
    for b in blocks:
        if sum(count[h] for h in held) >= target or len(held) == len(blocks) - 1:
            break
        held.add(b)
    for p in patches:
        p.test = p.block in held
    return patches


def to_batch(patches: list[Patch], num_points: int, rng, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample num_points per patch (with replacement only when short); rotate/flip about z if augment."""
    out = np.empty((len(patches), num_points, 3), dtype=np.float32)
    for i, p in enumerate(patches):
        idx = rng.choice(len(p.points), num_points, replace=len(p.points) < num_points)
        pts = p.points[idx]
        if augment:
            a = rng.uniform(0, 2 * np.pi)
            rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            pts = pts.copy()
            pts[:, :2] = pts[:, :2] @ rot.T * (1 if rng.random() < 0.5 else np.array([-1, 1]))
        out[i] = pts
    return torch.from_numpy(out), torch.tensor([p.label for p in patches])


def build_encoder(name: str, num_points: int):
    from hydra import compose, initialize_config_module
    from hydra.utils import instantiate

    overrides = [f"+encoder={name}"]
    if name == "pointnet2":  # the default 512/128 centroids are for 2048-point tiles
        overrides += [f"encoder.sa_levels.0.num_centroids={num_points // 4}",
                      f"encoder.sa_levels.1.num_centroids={num_points // 16}"]
    with initialize_config_module("pcgen.conf", version_base="1.3"):
        cfg = compose(overrides=overrides)
    return instantiate(cfg.encoder)


class Classifier(torch.nn.Module):
    def __init__(self, encoder, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Sequential(torch.nn.Linear(encoder.global_dim, 128), torch.nn.ReLU(),
                                        torch.nn.Dropout(0.3), torch.nn.Linear(128, num_classes))

    def forward(self, x):
        return self.head(self.encoder(x).global_feature)


def train_and_eval(name, train, test, args) -> tuple[float, float, np.ndarray, int, float]:
    """Train for ``args.minutes``; return held-out accuracy (after and before BatchNorm
    recalibration), per-class recall, steps taken and the last training loss."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = Classifier(build_encoder(name, args.points), len(LABELS))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=1e-4)
    counts = np.bincount([p.label for p in train], minlength=len(LABELS))
    weight = torch.tensor(len(train) / (len(LABELS) * np.maximum(counts, 1)), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)  # building patches are rare: weight classes
    deadline = time.monotonic() + 60 * args.minutes
    steps = 0
    while time.monotonic() < deadline:
        model.train()
        order = rng.permutation(len(train))
        for start in range(0, len(train), args.batch):
            chunk = [train[i] for i in order[start:start + args.batch]]
            if len(chunk) < 2:
                continue
            x, y = to_batch(chunk, args.points, rng, augment=True)
            loss = loss_fn(model(x), y) + 1e-3 * model.encoder.regularization()
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            if time.monotonic() >= deadline:
                break
    truth = np.array([p.label for p in test])
    raw_acc = float((predict(model, test, args) == truth).mean())
    recalibrate_batch_norm(model, train, args, rng)
    pred = predict(model, test, args)
    recall = np.array([(pred[truth == c] == c).mean() if (truth == c).any() else np.nan
                       for c in range(len(LABELS))])
    return float((pred == truth).mean()), raw_acc, recall, steps, float(loss.detach())


@torch.no_grad()
def predict(model, patches, args) -> np.ndarray:
    model.eval()
    preds = []
    for start in range(0, len(patches), args.batch):
        x, _ = to_batch(patches[start:start + args.batch], args.points, np.random.default_rng(0), augment=False)
        preds.append(model(x).argmax(-1))
    return torch.cat(preds).numpy()


@torch.no_grad()
def recalibrate_batch_norm(model, train, args, rng, batches: int = 10) -> None:
    """Re-estimate BatchNorm statistics with the final weights ("precise BN").

    After only tens of steps the running averages (momentum 0.1) still mix statistics of
    earlier weights; that lag, not the encoder, is what an eval-mode score would then measure.
    Averages the batch statistics of a few training batches (no augmentation) instead.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for _ in range(batches):
        idx = rng.choice(len(train), min(args.batch, len(train)), replace=False)
        x, _ = to_batch([train[i] for i in idx], args.points, rng, augment=False)
        model(x)
    for m in norms:
        m.momentum = 0.1
    model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description="encoder classification sanity run on the shared LiDAR")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time per encoder")
    parser.add_argument("--side", type=float, default=10.0, help="patch side in metres")
    parser.add_argument("--points", type=int, default=256, help="points sampled per patch")
    parser.add_argument("--min-points", type=int, default=64)
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", choices=("pointnet", "pointnet2", "dgcnn"))
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    patches = []
    for path in datadir.lidar_files():
        mine = cut_patches(path, args.side, args.min_points, args.test_fraction, rng)
        if mine:
            per = [(sum(p.label == c and not p.test for p in mine), sum(p.label == c and p.test for p in mine))
                   for c in range(len(LABELS))]
            print(f"{path.name:38s} " + "  ".join(f"{LABELS[c]} {tr}/{te}" for c, (tr, te) in enumerate(per))
                  + "  (train/held-out)")
        patches += mine
    train = [p for p in patches if not p.test]
    test = [p for p in patches if p.test]
    train_counts = np.bincount([p.label for p in train], minlength=len(LABELS))
    test_counts = np.bincount([p.label for p in test], minlength=len(LABELS))
    majority = int(train_counts.argmax())
    majority_rate = test_counts[majority] / len(test)
    print(f"patches: train {len(train)} {dict(zip(LABELS, train_counts.tolist()))}, "
          f"held-out {len(test)} {dict(zip(LABELS, test_counts.tolist()))}")
    print(f"majority class '{LABELS[majority]}' rate on held-out patches: {majority_rate:.3f}")
    for name in args.only or ("pointnet", "pointnet2", "dgcnn"):
        t0 = time.monotonic()
        acc, raw_acc, recall, steps, loss = train_and_eval(name, train, test, args)
        rec = " ".join(f"{LABELS[c]}={r:.2f}" for c, r in enumerate(recall))
        print(f"{name:10s} held-out accuracy {acc:.3f} vs majority {majority_rate:.3f} "
              f"(before BN recalibration {raw_acc:.3f}; recall {rec}; {steps} steps, last loss {loss:.3f}, "
              f"{time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
