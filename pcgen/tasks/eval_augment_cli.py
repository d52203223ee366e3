"""`pcgen eval-augment`: MMD / COV / 1-NNA of generated tiles vs held-out real tiles, next to two baselines.

Baselines: (c) resampled + jittered training tiles, (d) a Gaussian mixture fitted by EM to the
training tiles' points (K by held-out likelihood). Every input file is cut into whole
``--tile-size`` squares and every set is clouds of ``--points`` points in the metric frame
(:class:`pcgen.metrics.frame.MetricFrame`: metres, x, y from the tile centre, z above the
tile's ground), compared without rescaling. ``--frame unit`` scores the same tiles after the old
per-cloud normalization into [-1, 1]^3, which erases scale and height (see ``docs/metrics.md``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pcgen.errors import ConfigError, InputError
from pcgen.options import float_range, int_range, seed

JITTER_SIGMA = 0.25  # m; about the old 0.01 of a unit sphere around a 40 m tile
# The distance comparison's own options: their default and what --downstream, which would ignore
# them, has instead (a --set key where one plays their part). They default to None so that one given
# with --downstream can be refused.
COMPARE_OPTIONS = {"n": (16, "its synthetic tiles per real one are --set synthetic_per_tile=K"),
                   "points": (2048, "use --set points=N"), "tile_size": (40.0, "use --set tile_size=M"),
                   "frame": ("metres", "its tiles are always in metres"),
                   "emd": (False, "it scores no EMD"), "seed": (0, "use --set seeds=[S,...]")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", nargs="+", required=True, help="held-out real tiles (files, folders, index)")
    parser.add_argument("--train", nargs="+", required=True, help="training tiles, for the baselines")
    parser.add_argument("--out", required=True, help="output folder: eval_augment.json, .md, .png")
    parser.add_argument("--ckpt", default=None, help="checkpoint (default: the shipped one)")
    parser.add_argument("--no-model", action="store_true", help="baselines only")
    parser.add_argument("--n", type=int_range(2, 100_000), default=None, help="generated clouds per method (16)")
    parser.add_argument("--points", type=int_range(16, 10_000_000), default=None, help="points per tile (2048)")
    parser.add_argument("--tile-size", type=float_range(1.0, 10_000.0, name="tile size"), default=None,
                        help="side of the square tiles the inputs are cut into, metres (40)")
    parser.add_argument("--frame", choices=("metres", "unit"), default=None,
                        help="metres: heights above ground, not rescaled (default); unit: each tile "
                             "normalized into [-1, 1]^3 (scale-blind, for comparison with older reports)")
    parser.add_argument("--emd", action="store_true", help="also EMD-based scores (slower)")
    parser.add_argument("--seed", type=seed, default=None, help="random seed (0)")
    parser.add_argument("--downstream", action="store_true",
                        help="instead: train a per-point classifier on scarce labelled --train tiles with each "
                             "augmentation arm and score it on the labelled --reference (held-out) sites "
                             "(settings: pcgen/conf/downstream/config.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="--downstream: a setting override, e.g. --set seeds=[0,1] (repeatable)")
    parser.add_argument("--config-dir", default=None, metavar="DIR",
                        help="--downstream: a folder with your own config.yaml or experiment/*.yaml")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out (replaces only files pcgen wrote there)")


def frame_tiles(paths, frame, rng: np.random.Generator, above_ground: bool = True) -> list[np.ndarray]:
    """Every whole square of every file, as (points, 3) clouds in the metric frame."""
    import pcgen.io as pio
    from pcgen.tasks.augment import metric_tiles

    out = []
    for p in paths:
        cloud = pio.read(p)
        out += metric_tiles(cloud.xyz, frame, rng, cloud.attributes.get("classification"), above_ground)
    return out


def model_tiles(ckpt, train_paths, n: int, frame, seed: int, above_ground: bool = True) -> list[np.ndarray]:
    """n generated clouds in the frame: samples of an unconditional head placed as ``tile_size``
    tiles, or the square around the re-imagined box of training files."""
    import pcgen.io as pio
    from pcgen.tasks import augment as aug
    from pcgen.tasks.generators import DEFAULT_CHECKPOINT, load_generator
    from pcgen.train.checkpoint import load_head

    ckpt = Path(ckpt) if ckpt else DEFAULT_CHECKPOINT
    head, meta = load_head(ckpt)
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    if not (meta.get("data") or {}).get("conditional"):
        for s in aug.sample_unconditional(head, n, frame.points, seed):
            out += aug.metric_tiles(aug.to_local_frame(s, frame.tile_size), frame, rng, None, above_ground)[:1]
        if len(out) < 2:
            raise InputError(f"the checkpoint's {n} samples, placed as {frame.tile_size:g} m tiles, give "
                             f"{len(out)} whole tiles; need at least 2", ckpt)
        return out
    generator = load_generator(ckpt)
    for i in range(n):
        res = aug.reimagine(pio.read(train_paths[i % len(train_paths)]), generator, 0.3, rng)
        xyz, cls = res.cloud.xyz, res.cloud.attributes.get("classification")
        # the square around the regenerated points, kept inside the file
        lo, hi = xyz[:, :2].min(0), xyz[:, :2].max(0)
        half = frame.tile_size / 2
        c = np.clip(xyz[res.n_original:, :2].mean(0), lo + half, np.maximum(hi - half, lo + half))
        keep = np.all(np.abs(xyz[:, :2] - c) <= half, axis=1)
        out += aug.metric_tiles(xyz[keep], frame, rng, None if cls is None else np.asarray(cls)[keep],
                                above_ground)[:1]
    if len(out) < 2:
        raise InputError(f"the re-imagined training files give {len(out)} whole {frame.tile_size:g} m tiles; "
                         "need at least 2")
    return out


def compare(args, ref_paths, train_paths) -> tuple[str, dict, list, list[str]]:
    """Scores of every method: (markdown table, JSON document, preview clouds, preview labels)."""
    import torch

    from pcgen.metrics import MetricFrame, evaluate_sets
    from pcgen.tasks.baselines import JitterResample
    from pcgen.tasks.gmm import GMMBaseline

    rng = np.random.default_rng(args.seed)
    frame = MetricFrame(tile_size=args.tile_size, points=args.points)
    metres = args.frame == "metres"
    ref = frame_tiles(ref_paths, frame, rng, metres)
    train = frame_tiles(train_paths, frame, rng, metres)
    if len(ref) < 2 or len(train) < 2:
        raise InputError(f"need at least 2 reference and 2 training tiles of {args.tile_size:g} m "
                         f"(got {len(ref)} and {len(train)}); give larger files or a smaller --tile-size")
    sets = {}
    if not args.no_model:
        sets["pcgen"] = model_tiles(args.ckpt, train_paths, args.n, frame, args.seed, metres)
    sets["jitter"] = JitterResample(train, sigma=JITTER_SIGMA).sample(args.n, args.points, rng)
    gmm = GMMBaseline(train, seed=args.seed)
    sets[gmm.mixture.name()] = gmm.sample(args.n, args.points, rng)
    metrics = ("chamfer", "emd") if args.emd else ("chamfer",)
    reference = torch.as_tensor(np.stack(ref))
    score = {"normalize": "none", "jsd_bounds": frame.bounds()} if metres else {"normalize": "box"}
    results = {name: evaluate_sets(torch.as_tensor(np.stack(c)), reference, metrics=metrics, **score)
               for name, c in sets.items()}
    cols = [(m, s) for m in metrics for s in ("mmd", "cov", "1nna")]
    lines = ["| method | " + " | ".join(f"{s.upper()}-{'CD' if m == 'chamfer' else 'EMD'}" for m, s in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{float(r[m][s]):.4f}" for m, s in cols) + " |")
    where = ("in metres, heights above ground (MMD-CD in m²)" if metres
             else "each tile normalized into [-1, 1]^3 (scale-blind)")
    table = (f"{args.n} generated tiles per method vs {len(ref)} held-out tiles: {args.tile_size:g} m squares, "
             f"{args.points} points each, {where}. MMD ↓, COV ↑, 1-NNA → 0.5\n\n" + "\n".join(lines) + "\n")
    protocol = frame.describe() if metres else {**frame.describe(), "frame": "unit: each tile into [-1, 1]^3"}
    doc = {"results": results, "gmm_heldout_loglik": gmm.scores, "n": args.n, "points": args.points,
           "tile_size": args.tile_size, "protocol": protocol, "jitter_sigma_m": JITTER_SIGMA,
           "reference_tiles": len(ref), "training_tiles": len(train), "seed": args.seed}
    return table, doc, [ref[0]] + [c[0] for c in sets.values()], ["real (held out)"] + list(sets)


def run(args: argparse.Namespace) -> int:
    from pcgen.atomic import atomic_dir
    from pcgen.inputs import list_inputs
    from pcgen.io import SUFFIXES
    from pcgen.outputs import check_output
    from pcgen.tasks.augment import render_grid

    if args.no_model and args.ckpt:
        raise ConfigError("--ckpt sets up the model; --no-model scores the baselines only")
    if args.downstream:
        check_downstream_options(args)
    elif args.set or args.config_dir:
        raise ConfigError("--set and --config-dir configure --downstream only")
    else:
        for key, (default, _) in COMPARE_OPTIONS.items():
            if getattr(args, key) is None:
                setattr(args, key, default)
    ref_paths, train_paths = (list_inputs(args.reference, suffixes=SUFFIXES),
                              list_inputs(args.train, suffixes=SUFFIXES))
    # the downstream settings name inputs too: their checkpoint (--set ckpt=) and config folder
    cfg = downstream_settings(args) if args.downstream else {}
    check_output(args.out, [*args.reference, *args.train, *ref_paths, *train_paths, args.ckpt,
                            cfg.get("ckpt"), args.config_dir],
                 folder=True, overwrite=args.overwrite, overwrite_hint="--overwrite")
    if args.downstream:
        return run_downstream(args, cfg, ref_paths, train_paths)
    # Claim the output (lock + staging) before the long part, so a second run fails at once.
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        table, doc, grid, labels = compare(args, ref_paths, train_paths)
        (tmp / "eval_augment.json").write_text(json.dumps(doc, indent=1, default=float))
        (tmp / "eval_augment.md").write_text(table)
        render_grid(grid, tmp / "eval_augment.png", labels)
    print(table, end="")
    return 0


def check_downstream_options(args: argparse.Namespace) -> None:
    """Refuse an option of the distance comparison given with ``--downstream``, which would ignore it.

    Raises:
        ConfigError: naming the option and the ``--set`` key that plays its part, if any.
    """
    for key, (_, instead) in COMPARE_OPTIONS.items():
        if getattr(args, key) not in (None, False):
            raise ConfigError(f"--{key.replace('_', '-')} sets up the distance comparison; "
                              f"--downstream ignores it: {instead}")


def downstream_settings(args: argparse.Namespace) -> dict:
    """The checked downstream settings of ``--set``/``--config-dir``, with ``--ckpt`` and ``--no-model``.

    Raises:
        ConfigError: a bad setting, or no arm left once ``--no-model`` drops those of the model.
    """
    from pcgen.tasks import downstream

    cfg = downstream.load_settings(args.set, config_dir=args.config_dir)
    if args.ckpt:  # set after composing: a path is no override grammar (quotes, brackets, '=')
        if not any(downstream.arm_parts(a)[0] == "pcgen" for a in cfg["arms"]):
            raise ConfigError(f"--ckpt sets up the pcgen arms; arms={cfg['arms']} has none")
        cfg["ckpt"] = args.ckpt
    if args.no_model:
        kept = [a for a in cfg["arms"] if downstream.arm_parts(a)[0] != "pcgen"]
        if not kept:
            raise ConfigError(f"no arm left: --no-model drops every pcgen arm of arms={cfg['arms']}; "
                              "add one that needs no model (e.g. --set arms=[real,classic])")
        cfg["arms"] = kept
    return cfg


def run_downstream(args: argparse.Namespace, cfg: dict, ref_paths, train_paths) -> int:
    """The downstream benchmark (:mod:`pcgen.tasks.downstream`) of the checked settings ``cfg``:
    JSON, Markdown and a bar chart."""
    import sys

    from pcgen.atomic import atomic_dir
    from pcgen.tasks import downstream, downstream_report

    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        doc = downstream.run_benchmark(cfg, train_paths, ref_paths, progress=sys.stderr.isatty())
        doc["summary"] = downstream_report.summarize(doc)
        doc["ceilings"] = downstream_report.ceilings(doc)
        table = downstream_report.markdown(doc, doc["summary"])
        (tmp / "downstream.json").write_text(json.dumps(doc, indent=1, default=float))
        (tmp / "downstream.md").write_text(table)
        downstream_report.render_chart(doc["summary"], tmp / "downstream.png", doc["ceilings"])
    print(table, end="")
    return 0
