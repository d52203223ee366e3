"""`pcgen augment --ckpt CKPT --n 100 OUT_DIR`: synthetic tiles (LAZ, optional PLY), a manifest and a preview."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pcgen.errors import CheckpointError, ConfigError, InputError
from pcgen.options import float_range, int_range, seed

GAP_FRACTION = 0.3  # conditional checkpoints: side of the re-imagined box, share of the tile's side
TILE_SIZE = 40.0  # unconditional checkpoints: tile side, metres
# the options only one kind of checkpoint uses, by whether it is conditional
ONLY_FOR = {True: ("gap_fraction",), False: ("points", "tile_size")}
KINDS = {True: ("conditional", "conditional (gap-filling): it re-imagines a box of each --condition tile, "
                               "which keeps its points and size"),
         False: ("unconditional", "unconditional: it samples whole tiles")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (replaced atomically)")
    parser.add_argument("--ckpt", default=None, help="checkpoint (default: the shipped gap-filling one)")
    parser.add_argument("--n", type=int_range(1, 1_000_000), default=16, help="number of tiles")
    parser.add_argument("--condition", nargs="+", default=None, metavar="TILES",
                        help="real tiles (files, folders, index) a conditional model re-imagines part of")
    # defaults None: an option of the other kind of checkpoint, given explicitly, is refused
    parser.add_argument("--gap-fraction", type=float_range(0.0, 1.0, low_open=True, high_open=True), default=None,
                        help=f"conditional: side of the regenerated box as a fraction of the tile ({GAP_FRACTION})")
    parser.add_argument("--points", type=int_range(1, 10_000_000), default=None,
                        help="unconditional: points per tile (default: the checkpoint's num_points)")
    parser.add_argument("--tile-size", type=float_range(1.0, 100_000.0, name="tile side"), default=None,
                        help=f"unconditional: tile side in metres, {TILE_SIZE:g} by default "
                             "(1 m to 100 km: points sit on a 1 cm grid)")
    parser.add_argument("--labels", action="store_true",
                        help="every point must carry an ASPRS class: generated points take the class of the "
                             "real point they were made from (needs a conditional checkpoint and classified "
                             "--condition tiles)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--ply", action="store_true", help="also write PLY files")
    parser.add_argument("--preview", action="store_true", help="render preview.png (a grid of up to 16 tiles)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print nothing but errors (no progress bar, no summary)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty OUT (replaces only files pcgen wrote there)")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from pcgen.atomic import atomic_dir
    from pcgen.inputs import list_inputs
    from pcgen.io import SUFFIXES
    from pcgen.outputs import check_output
    from pcgen.tasks import augment as aug
    from pcgen.tasks.generators import DEFAULT_CHECKPOINT
    from pcgen.train.checkpoint import load_head

    ckpt = Path(args.ckpt) if args.ckpt else DEFAULT_CHECKPOINT
    paths = list_inputs(args.condition or [], suffixes=SUFFIXES)
    check_output(args.out, [*(args.condition or []), *paths, ckpt], folder=True, overwrite=args.overwrite,
                 overwrite_hint="--overwrite")
    head, meta = load_head(ckpt)
    data = meta.get("data") or {}
    conditional = bool(data.get("conditional"))
    progress = not args.quiet and sys.stderr.isatty()
    names = [f"synthetic_{i:05d}" for i in range(args.n)]
    rng = np.random.default_rng(args.seed)
    clouds = []
    for key in ONLY_FOR[not conditional]:
        if getattr(args, key) is not None:
            raise ConfigError(f"--{key.replace('_', '-')} applies to {KINDS[not conditional][0]} checkpoints; "
                              f"this one is {KINDS[conditional][1]}")
    if args.labels and not conditional:
        raise CheckpointError(f"--labels: this {meta.get('kind', 'unknown')} head generates points without a "
                              "class; labelled tiles need a conditional (gap-filling) checkpoint", ckpt)
    if conditional:
        if not args.condition:
            raise ConfigError("this checkpoint is conditional (gap filling): give real tiles with --condition")
        if args.gap_fraction is None:  # set here, so the manifest's command records the value used
            args.gap_fraction = GAP_FRACTION
        import pcgen.io as pio
        from pcgen.tasks.generators import load_generator

        generator = load_generator(ckpt)
        from pcgen.tasks.gaps import MIN_TILE_POINTS

        inputs = {p: pio.read(p) for p in dict.fromkeys(paths[:args.n])}
        for p, cloud in inputs.items():
            if len(cloud) < MIN_TILE_POINTS:
                raise InputError(f"{len(cloud)} points: too few to re-imagine part of "
                                 f"(at least {MIN_TILE_POINTS})", p)
        if args.labels:
            for p, cloud in inputs.items():
                aug.check_classified(cloud, p)
        sources = []
        for i in tqdm(range(args.n), desc="tiles", disable=not progress):
            src = paths[i % len(paths)]
            result = aug.reimagine(inputs[src], generator, args.gap_fraction, rng, source=src)
            clouds.append(result.cloud)
            sources.append(str(src))
    else:
        if args.condition:
            raise ConfigError("--condition needs a conditional (gap-filling) checkpoint")
        points = args.points or int(data.get("num_points") or 2048)
        if args.tile_size is None:
            args.tile_size = TILE_SIZE
        samples = aug.sample_unconditional(head, args.n, points, args.seed)
        clouds = [aug.synthetic_cloud(aug.to_local_frame(s, args.tile_size)) for s in samples]
        sources = [None] * args.n
    stats = []
    for name, cloud, src in zip(names, clouds, sources):
        gen = cloud.attributes["generated"] if "generated" in cloud.attributes else np.ones(len(cloud))
        s = asdict(aug.tile_stats(name + ".laz", aug.stored_xyz(cloud), int(np.sum(gen))))
        if src:
            s["condition"] = src
        if "classification" in cloud.attributes:
            codes, counts = np.unique(np.asarray(cloud.attributes["classification"])[gen == 1], return_counts=True)
            s["generated_classes"] = {int(c): int(k) for c, k in zip(codes, counts)}
        stats.append(s)
    manifest = {"seed": args.seed, "checkpoint": str(ckpt), "checkpoint_sha256": aug.file_sha256(ckpt),
                "head": meta.get("kind"), "conditional": conditional, "data": data,
                "head_config": meta.get("head_config"), "global_step": meta.get("global_step"),
                "command": {k: v for k, v in vars(args).items() if k != "func"}, "tiles": stats}
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        aug.write_tiles(tmp, clouds, names, ply=args.ply)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
        if args.preview:
            aug.render_grid([c.xyz for c in clouds], tmp / "preview.png", names)
    if not args.quiet:
        print(f"wrote {args.n} tiles, manifest.json{', preview.png' if args.preview else ''} to {args.out}",
              file=sys.stderr)
    return 0
