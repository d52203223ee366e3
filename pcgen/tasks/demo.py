"""`pcgen demo OUT_DIR`: the gap-filling job end to end on the real sample data.

1. tile a real LAZ from the sample data (``pcgen.datadir``) into 40 m tiles;
2. load the shipped checkpoint (or ``--ckpt``), whose sidecar names the sites it never saw; the
   file must be one of them (Megaplot.laz is);
3. cut a 10 m gap out of its densest tile, write it (``cut.laz``), fill it (``filled.laz``) and
   draw the fill as ``pcgen fill --png`` does (``filled.png``: from above and from the side);
4. evaluate pcgen against the fill baselines (mirror, hybrid, canopy, surface) on cuts of every tile:
   ``eval/eval_fill.md`` / ``.json`` and the before/after ``eval/eval_fill.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from shapely.geometry import box

from pcgen.errors import ConfigError, InputError
from pcgen.options import MAX_EXTENT, cut_count, float_range, seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", help="output folder (tiles, cut.laz, filled.laz, filled.png, eval/)")
    parser.add_argument("--file", default="Megaplot.laz",
                        help="LiDAR file to demo on: a path, or the name of a sample file")
    parser.add_argument("--ckpt", default=None, help="conditional checkpoint (default: the shipped one)")
    parser.add_argument("--gap-size", type=float_range(DEMO_MIN_GAP, MAX_EXTENT, name="gap side"), default=10.0,
                        help=f"side of the square cuts, m (at least {DEMO_MIN_GAP:g})")
    parser.add_argument("--cuts", type=cut_count, default=3, help="evaluation cuts per held-out tile")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty OUT_DIR (replaces only files pcgen wrote there)")


def check_heldout(ckpt: Path, source: Path) -> None:
    """Refuse a file the checkpoint was trained on (its sidecar lists the training sites)."""
    sidecar = ckpt.with_suffix(".json")
    if not sidecar.is_file():
        return
    from pcgen.inputs import site_name

    split = json.loads(sidecar.read_text())
    trained = {site_name(s) for s in split.get("train_sites", [])}
    if site_name(source) in trained:  # hawaii_ept/ept.json is the site hawaii_ept
        held = ", ".join(site_name(s) for s in split.get("heldout_sites", []))
        raise InputError(f"the checkpoint was trained on {site_name(source)}; demo a held-out site ({held})")


DEMO_TILE = 40.0  # m: the tiles the demo cuts its gaps from
DEMO_MIN_GAP = 1.0  # m: a smaller cut of these airborne scans holds too few points to score
DEMO_MIN_POINTS = 384  # a tile with fewer core points is dropped


def run(args: argparse.Namespace) -> int:
    from pcgen import datadir
    from pcgen.atomic import atomic_dir
    from pcgen.outputs import check_output
    from pcgen.tasks.generators import DEFAULT_CHECKPOINT, load_generator

    t0 = time.time()
    from pcgen.tasks.eval_fill import EvalConfig

    room = DEMO_TILE - 2 * EvalConfig().edge_margin  # cuts stay this far inside a tile
    if args.gap_size >= room:
        raise ConfigError(f"--gap-size must be under {room:g} m (gaps are cut inside the demo's "
                          f"{DEMO_TILE:g} m tiles), got {args.gap_size:g}")
    if Path(args.file).is_dir():
        raise InputError("--file takes one LiDAR file, not a folder", args.file)
    source = Path(args.file) if Path(args.file).is_file() else datadir.lidar_file(args.file)
    ckpt = Path(args.ckpt) if args.ckpt else DEFAULT_CHECKPOINT
    check_output(args.out, [source, ckpt], folder=True, overwrite=args.overwrite, overwrite_hint="--overwrite")
    # A bad checkpoint or a file it was trained on fails here, before anything is tiled or written.
    generator = load_generator(ckpt)
    check_heldout(ckpt, source)
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
    from pcgen.data.tiling import NoTilesKept, TileOptions
    from pcgen.tasks.baselines import FILL_BASELINES
    from pcgen.tasks.eval_fill import EvalConfig, load_tiles, run_evaluation
    from pcgen.io.crs import unit_symbol
    from pcgen.tasks.fill import fill_cloud, load_fill_config, mask_gaps
    from pcgen.tasks.fill_render import render_fill

    tiles_dir = out / "tiles"
    try:
        tile_files([source], tiles_dir, TileOptions(size=DEMO_TILE, buffer=0.0, min_points=DEMO_MIN_POINTS),
                   overview=True)
    except NoTilesKept:
        raise InputError(f"no {DEMO_TILE:g} m tile of it holds {DEMO_MIN_POINTS} points; the demo needs "
                         "a denser or larger survey", source) from None
    tiles = sorted(tiles_dir.glob("*.laz"))
    print(f"[{time.time() - t0:5.0f} s] tiled {source.name} into {len(tiles)} tiles", file=sys.stderr)

    heldout = tiles
    print(f"[{time.time() - t0:5.0f} s] model {ckpt} ({len(heldout)} tiles of a held-out site)", file=sys.stderr)

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
    fill_cfg = load_fill_config(overrides=[f"seed={args.seed}"])  # what pcgen fill does by default
    result = fill_cloud(cut, mask_gaps(cut, [gap]), generator, fill_cfg)
    pio.write(result.cloud, out / "filled.laz")
    render_fill(result.cloud.xyz, result.n_original, [gap], out / "filled.png", f"{tile.name}, filled",
                unit=unit_symbol(cut.crs) if cut.crs is not None else "units")
    print(f"[{time.time() - t0:5.0f} s] {tile.name}: cut {inside.sum()} points, filled "
          f"{len(result.cloud) - result.n_original} -> filled.laz", file=sys.stderr)

    scored, unit = load_tiles(heldout)
    cfg = EvalConfig(cuts_per_tile=args.cuts, gap_size=args.gap_size, seed=args.seed, samples=fill_cfg.samples,
                     unit=unit)
    generators = {"pcgen": generator, **{name: make() for name, make in FILL_BASELINES.items()}}
    return run_evaluation(scored, out / "eval", generators, cfg, fill_cfg,
                          extra={"checkpoint": str(ckpt), "file": source.name})
