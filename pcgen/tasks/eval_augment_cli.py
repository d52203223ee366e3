"""`pcgen eval-augment`: MMD / COV / 1-NNA of generated tiles vs held-out real tiles, next to two baselines.

Baselines: (c) resampled + jittered training tiles, (d) a Gaussian mixture fitted by EM to the
training tiles' points (K by held-out likelihood). Every set is ``--n`` clouds of ``--points``
points, each normalized like training samples (sphere) before the metrics' own normalization.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pcgen.errors import InputError
from pcgen.options import int_range, seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", nargs="+", required=True, help="held-out real tiles (files, folders, index)")
    parser.add_argument("--train", nargs="+", required=True, help="training tiles, for the baselines")
    parser.add_argument("--out", required=True, help="output folder: eval_augment.json, .md, .png")
    parser.add_argument("--ckpt", default=None, help="checkpoint (default: the shipped one)")
    parser.add_argument("--no-model", action="store_true", help="baselines only")
    parser.add_argument("--n", type=int_range(2, 100_000), default=16, help="generated clouds per method")
    parser.add_argument("--points", type=int_range(16, 10_000_000), default=512, help="points per cloud")
    parser.add_argument("--emd", action="store_true", help="also EMD-based scores (slower)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out (replaces only files pcgen wrote there)")


def normalized_tiles(paths, points: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Real tiles as (points, 3) sphere-normalized clouds (random subsets)."""
    import pcgen.io as pio
    from pcgen.data.transforms import Normalization

    out = []
    for p in paths:
        xyz = pio.read(p).xyz
        if len(xyz) < 16:
            continue
        sub = xyz[rng.choice(len(xyz), points, replace=len(xyz) < points)]
        out.append(Normalization.fit(sub, "sphere").apply(sub).astype(np.float32))
    return out


def model_tiles(ckpt, train_paths, n: int, points: int, seed: int) -> list[np.ndarray]:
    """n generated clouds: samples of an unconditional head, or re-imagined training tiles."""
    import pcgen.io as pio
    from pcgen.data.transforms import Normalization
    from pcgen.tasks import augment as aug
    from pcgen.tasks.generators import DEFAULT_CHECKPOINT, load_generator
    from pcgen.train.checkpoint import load_head

    ckpt = Path(ckpt) if ckpt else DEFAULT_CHECKPOINT
    head, meta = load_head(ckpt)
    rng = np.random.default_rng(seed)
    if not (meta.get("data") or {}).get("conditional"):
        return [s.astype(np.float32) for s in aug.sample_unconditional(head, n, points, seed)]
    generator = load_generator(ckpt)
    out = []
    for i in range(n):
        xyz = aug.reimagine(pio.read(train_paths[i % len(train_paths)]), generator, 0.3, rng).cloud.xyz
        sub = xyz[rng.choice(len(xyz), points, replace=len(xyz) < points)]
        out.append(Normalization.fit(sub, "sphere").apply(sub).astype(np.float32))
    return out


def compare(args, ref_paths, train_paths) -> tuple[str, dict, list, list[str]]:
    """Scores of every method: (markdown table, JSON document, preview clouds, preview labels)."""
    import torch

    from pcgen.metrics import evaluate_sets
    from pcgen.tasks.baselines import JitterResample
    from pcgen.tasks.gmm import GMMBaseline

    rng = np.random.default_rng(args.seed)
    ref = normalized_tiles(ref_paths, args.points, rng)
    train = normalized_tiles(train_paths, args.points, rng)
    if len(ref) < 2 or len(train) < 2:
        raise InputError("need at least 2 reference and 2 training tiles")
    sets = {}
    if not args.no_model:
        sets["pcgen"] = model_tiles(args.ckpt, train_paths, args.n, args.points, args.seed)
    sets["jitter"] = JitterResample(train).sample(args.n, args.points, rng)
    gmm = GMMBaseline(train, seed=args.seed)
    sets[gmm.mixture.name()] = gmm.sample(args.n, args.points, rng)
    metrics = ("chamfer", "emd") if args.emd else ("chamfer",)
    reference = torch.as_tensor(np.stack(ref))
    results = {name: evaluate_sets(torch.as_tensor(np.stack(c)), reference, metrics=metrics)
               for name, c in sets.items()}
    cols = [(m, s) for m in metrics for s in ("mmd", "cov", "1nna")]
    lines = ["| method | " + " | ".join(f"{s.upper()}-{'CD' if m == 'chamfer' else 'EMD'}" for m, s in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{float(r[m][s]):.4f}" for m, s in cols) + " |")
    table = (f"{args.n} generated clouds per method vs {len(ref)} held-out tiles, {args.points} points each. "
             "MMD ↓, COV ↑, 1-NNA → 0.5\n\n" + "\n".join(lines) + "\n")
    doc = {"results": results, "gmm_heldout_loglik": gmm.scores, "n": args.n, "points": args.points,
           "reference_tiles": len(ref), "seed": args.seed}
    return table, doc, [ref[0]] + [c[0] for c in sets.values()], ["real (held out)"] + list(sets)


def run(args: argparse.Namespace) -> int:
    from pcgen.atomic import atomic_dir
    from pcgen.outputs import check_output
    from pcgen.tasks.augment import render_grid
    from pcgen.tasks.eval_fill_cli import tile_paths

    ref_paths, train_paths = tile_paths(args.reference), tile_paths(args.train)
    check_output(args.out, [*args.reference, *args.train, *ref_paths, *train_paths, args.ckpt], folder=True,
                 overwrite=args.overwrite, overwrite_hint="--overwrite")
    # Claim the output (lock + staging) before the long part, so a second run fails at once.
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        table, doc, grid, labels = compare(args, ref_paths, train_paths)
        (tmp / "eval_augment.json").write_text(json.dumps(doc, indent=1, default=float))
        (tmp / "eval_augment.md").write_text(table)
        render_grid(grid, tmp / "eval_augment.png", labels)
    print(table, end="")
    return 0
