"""`pcgen eval-fill TILES... --out DIR`: cut known boxes from held-out tiles, fill with pcgen and baselines, compare."""

from __future__ import annotations

import argparse
import os
import sys

from pcgen.errors import ConfigError
from pcgen.options import (check_scale_out, cut_count, dask_address, int_range, non_negative_int, positive_float,
                            seed, workers)
from pcgen.tasks.generators import AUTO_COPY, SOURCE_COPIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tiles", nargs="+", help="held-out LAS/LAZ tiles, folders of them, or a tile index")
    parser.add_argument("--out", required=True, help="output folder: eval_fill.json, eval_fill.md, eval_fill.png")
    parser.add_argument("--ckpt", default=None, help="conditional checkpoint (default: the shipped one)")
    parser.add_argument("--no-model", action="store_true", help="evaluate the baselines only")
    parser.add_argument("--source-copy", choices=(AUTO_COPY, *SOURCE_COPIES), default=None,
                        help="the copy the model starts from in every gap (default auto: canopy in "
                             "gaps up to 7.5 m wide, else the trained one)")
    parser.add_argument("--cuts", type=cut_count, default=None, help="cuts per tile (default from config)")
    parser.add_argument("--gap-size", type=positive_float, default=None, help="side of the square cuts, CRS units")
    parser.add_argument("--tau", default=None, help="comma-separated F-score thresholds, CRS units")
    parser.add_argument("--max-tiles", type=non_negative_int, default=None,
                        help="use at most this many tiles (0: all)")
    parser.add_argument("--seed", type=seed, default=None)
    parser.add_argument("--samples", type=int_range(1, 1_000), default=None,
                        help="K draws per cut (default: what pcgen fill draws, the config's samples); "
                             "K > 1 also scores each method's uncertainty against its error")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a fill config value (context.*)")
    parser.add_argument("--workers", "-j", type=workers, default=1,
                        help="processes the cuts are spread over (the same table for any number)")
    parser.add_argument("--dask", type=dask_address, default=None, metavar="ADDRESS",
                        help="run the cuts on a Dask scheduler (tcp://host:8786); its workers get the points, "
                             "and need pcgen and the --ckpt path")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out (replaces only files pcgen wrote there)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress bar (the table is still printed; it is also in --out)")


def eval_config(args, fill_samples: int):
    """The evaluation settings; K draws per cut defaults to the fill config's ``samples``."""
    from pcgen.tasks.eval_fill import EvalConfig

    cfg = EvalConfig()
    if args.cuts is not None:
        if args.cuts <= 0:
            raise ConfigError(f"--cuts must be positive, got {args.cuts}")
        cfg.cuts_per_tile = args.cuts
    if args.gap_size is not None:
        if not args.gap_size > 0:
            raise ConfigError(f"--gap-size must be > 0, got {args.gap_size}")
        cfg.gap_size = args.gap_size
    if args.tau:
        try:
            cfg.tau = sorted({positive_float(t) for t in args.tau.split(",")})  # 1,1: one F@1m column
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"--tau wants comma-separated numbers > 0: {exc}") from None
    if args.seed is not None:
        cfg.seed = args.seed
    cfg.samples = fill_samples if args.samples is None else args.samples
    return cfg


def run(args: argparse.Namespace) -> int:
    from pcgen.inputs import list_inputs
    from pcgen.io import SUFFIXES
    from pcgen.outputs import check_output
    from pcgen.tasks.baselines import FILL_BASELINES
    from pcgen.tasks.config_checks import check_fill_config
    from pcgen.tasks.eval_fill import load_tiles, run_evaluation
    from pcgen.tasks.fill import load_fill_config

    check_scale_out(args.workers, args.dask)
    if args.no_model and (args.ckpt or args.source_copy):
        raise ConfigError(f"{'--ckpt' if args.ckpt else '--source-copy'} sets up the model; "
                          "--no-model scores the baselines only")
    paths = list_inputs(args.tiles, suffixes=SUFFIXES)
    check_output(args.out, [*args.tiles, *paths, args.ckpt], folder=True, overwrite=args.overwrite,
                 overwrite_hint="--overwrite")
    for item in args.set:  # fill settings an evaluation never reads: accepted, they changed nothing
        key = item.split("=", 1)[0].lstrip("+~")
        if key == "seed" or (key.startswith("output.") and key != "output.attributes"):  # it scores the class
            raise ConfigError(f"--set {item}: eval-fill does not use {key}"
                              + (" (its cuts and draws follow --seed)" if key == "seed" else
                                 " (it writes no filled file)"))
    fill_cfg = check_fill_config(load_fill_config(overrides=args.set))
    for item in args.set:  # checked like fill's, then refused: the detector never runs here
        key = item.split("=", 1)[0].lstrip("+~")
        if key.startswith("gaps.") and key != "gaps.footprint_concavity":
            raise ConfigError(f"--set {item}: eval-fill does not use {key} (it cuts its gaps; "
                              "pcgen fill --gaps-only tests the detector)")
    cfg = eval_config(args, fill_cfg.samples)
    from pcgen.tasks.generators import make_generator

    # specs, so that workers build their own; built here first, so a bad checkpoint stops the run now
    ckpt = None if args.ckpt is None else os.path.abspath(args.ckpt)  # a worker's folder may differ
    generators = {} if args.no_model else {"pcgen": ("model", ckpt, args.source_copy)}
    generators.update({name: (name,) for name in FILL_BASELINES})
    for spec in generators.values():
        make_generator(spec)
    if args.max_tiles:
        paths = paths[: args.max_tiles]
    tiles, cfg.unit = load_tiles(paths)
    result = run_evaluation(tiles, args.out, generators, cfg, fill_cfg, workers=args.workers,
                            dask_address=args.dask, progress=not args.quiet and sys.stderr.isatty(),
                            overwrite=args.overwrite)
    print(result["table"], end="")
    return 0
