"""`pcgen demo OUT_DIR`: the gap-filling job end to end on the real sample data.

1. tile a real LAZ from the sample data (``pcgen.datadir``) into 40 m tiles;
2. load the shipped checkpoint (or ``--ckpt``; with neither, train a small one on the other tiles);
3. cut a 10 m gap out of a held-out tile, write it (``cut.laz``), fill it (``filled.laz``);
4. evaluate pcgen against the mirror and surface baselines on cuts of every held-out tile of that
   file: ``eval/eval_fill.md`` / ``.json`` and the before/after ``eval/eval_fill.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from shapely.geometry import box

from pcgen.errors import InputError
from pcgen.options import positive_float, positive_int, seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (tiles, cut.laz, filled.laz, eval/)")
    parser.add_argument("--file", default="Megaplot.laz", help="sample LiDAR file to demo on")
    parser.add_argument("--ckpt", default=None, help="conditional checkpoint (default: the shipped one)")
    parser.add_argument("--train-steps", type=positive_int, default=300,
                        help="steps of the small model trained when no checkpoint is available")
    parser.add_argument("--gap-size", type=positive_float, default=10.0)
    parser.add_argument("--cuts", type=positive_int, default=3, help="evaluation cuts per held-out tile")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty OUT_DIR (replaces only files pcgen wrote there)")


def _heldout_names(ckpt: Path) -> list[str] | None:
    sidecar = ckpt.with_suffix(".json")
    if sidecar.is_file():
        return json.loads(sidecar.read_text()).get("heldout_tiles")
    return None


def run(args: argparse.Namespace) -> int:
    from pcgen import datadir
    from pcgen.atomic import atomic_dir
    from pcgen.outputs import check_output
    from pcgen.tasks.generators import DEFAULT_CHECKPOINT, ModelGenerator

    t0 = time.time()
    source = datadir.lidar_file(args.file)
    ckpt = Path(args.ckpt) if args.ckpt else DEFAULT_CHECKPOINT
    check_output(args.out, [source, ckpt], folder=True, overwrite=args.overwrite, overwrite_hint="--overwrite")
    # A bad checkpoint fails here, before anything is tiled or written.
    generator = ModelGenerator.from_checkpoint(ckpt) if args.ckpt or ckpt.is_file() else None
    with atomic_dir(args.out, overwrite=args.overwrite) as out:
        res = _demo(args, out, source, ckpt, generator, t0)
    final = Path(args.out)
    print(f"[{time.time() - t0:5.0f} s] wrote {final / 'eval'}/eval_fill.md, .json, .png", file=sys.stderr)
    print(res["table"], end="")
    return 0


def _demo(args, out: Path, source: Path, ckpt: Path, generator, t0: float) -> dict:
    """Every step of the demo, written into the staging folder ``out``."""
    import pcgen.io as pio
    from pcgen.data import tile_files
    from pcgen.data.tiling import TileOptions
    from pcgen.tasks.baselines import HybridFill, MirrorFill, SurfaceFill
    from pcgen.tasks.eval_fill_cli import load_tiles, run_evaluation
    from pcgen.tasks.evaluate import EvalConfig
    from pcgen.tasks.fill import FillConfig, fill_cloud, mask_gaps
    from pcgen.tasks.generators import ModelGenerator

    tiles_dir = out / "tiles"
    tile_files([source], tiles_dir, TileOptions(size=40.0, buffer=0.0, min_points=384), overview=True)
    tiles = sorted(tiles_dir.glob("*.laz"))
    print(f"[{time.time() - t0:5.0f} s] tiled {source.name} into {len(tiles)} tiles", file=sys.stderr)

    if generator is None:
        from pcgen.tasks.train_fill import build_parser, train_fill

        ckpt = out / "model" / "fill.ckpt"
        print(f"[{time.time() - t0:5.0f} s] no shipped checkpoint: training a small one ({args.train_steps} steps)",
              file=sys.stderr)
        train_fill(build_parser().parse_args(["--files", args.file, "--out", str(ckpt), "--work",
                                              str(out / "model"), "--steps", str(args.train_steps)]))
        generator = ModelGenerator.from_checkpoint(ckpt)
    held = _heldout_names(ckpt)
    heldout = [t for t in tiles if held is None or t.name in held]
    if not heldout:
        raise InputError(f"no held-out tile of {source.name} in this checkpoint's split "
                         "(it was trained on every tile of this file); pick another --file")
    print(f"[{time.time() - t0:5.0f} s] model {ckpt} ({len(heldout)} held-out tiles)", file=sys.stderr)

    # the showcase: one gap in the densest held-out tile
    clouds = [pio.read(t) for t in heldout]
    k = int(np.argmax([len(c) for c in clouds]))
    tile, cloud = heldout[k], clouds[k]
    cx, cy = cloud.xyz[:, :2].mean(0)
    half = args.gap_size / 2
    gap = box(cx - half, cy - half, cx + half, cy + half)
    inside = np.all(np.abs(cloud.xyz[:, :2] - [cx, cy]) <= half, axis=1)
    cut = cloud.select(~inside)
    pio.write(cut, out / "cut.laz")
    result = fill_cloud(cut, mask_gaps(cut, [gap]), generator, FillConfig(seed=args.seed))
    pio.write(result.cloud, out / "filled.laz")
    print(f"[{time.time() - t0:5.0f} s] {tile.name}: cut {inside.sum()} points, filled "
          f"{len(result.cloud) - result.n_original} -> filled.laz", file=sys.stderr)

    cfg = EvalConfig(cuts_per_tile=args.cuts, gap_size=args.gap_size, seed=args.seed)
    generators = {"pcgen": generator, "mirror": MirrorFill(), "hybrid": HybridFill(), "surface": SurfaceFill()}
    return run_evaluation(load_tiles(heldout), out / "eval", generators, cfg, FillConfig(seed=args.seed),
                          extra={"checkpoint": str(ckpt), "file": source.name})
