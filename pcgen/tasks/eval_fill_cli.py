"""`pcgen eval-fill TILES... --out DIR`: cut known boxes from held-out tiles, fill with pcgen and baselines, compare."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pcgen.errors import ConfigError
from pcgen.options import non_negative_int, positive_float, positive_int, seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tiles", nargs="+", help="held-out LAS/LAZ tiles, folders of them, or a tile index")
    parser.add_argument("--out", required=True, help="output folder: eval_fill.json, eval_fill.md, eval_fill.png")
    parser.add_argument("--ckpt", default=None, help="conditional checkpoint (default: the shipped one)")
    parser.add_argument("--no-model", action="store_true", help="evaluate the baselines only")
    parser.add_argument("--cuts", type=positive_int, default=None, help="cuts per tile (default from config)")
    parser.add_argument("--gap-size", type=positive_float, default=None, help="side of the square cuts, CRS units")
    parser.add_argument("--tau", default=None, help="comma-separated F-score thresholds, CRS units")
    parser.add_argument("--max-tiles", type=non_negative_int, default=None,
                        help="use at most this many tiles (0: all)")
    parser.add_argument("--seed", type=seed, default=None)
    parser.add_argument("--samples", type=positive_int, default=1,
                        help="K draws per cut; K > 1 also scores each method's uncertainty against its error")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a fill config value (context.*)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out (replaces only files pcgen wrote there)")
    parser.add_argument("--quiet", "-q", action="store_true")


def eval_config(args):
    from pcgen.tasks.evaluate import EvalConfig

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
            cfg.tau = [positive_float(t) for t in args.tau.split(",")]
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"--tau wants comma-separated numbers > 0: {exc}") from None
    if args.seed is not None:
        cfg.seed = args.seed
    cfg.samples = args.samples
    return cfg


def load_tiles(paths):
    import pcgen.io as pio

    tiles = []
    for p in paths:
        cloud = pio.read(p)
        attrs = {k: cloud.attributes[k] for k in ("classification", "return_number", "number_of_returns")
                 if k in cloud.attributes}
        tiles.append((Path(p).name, cloud.xyz, attrs))
    return tiles


def run_evaluation(tiles, out_dir, generators, cfg, fill_cfg, progress=False, extra=None,
                   overwrite: bool = True) -> dict:
    """Evaluate and write eval_fill.json / .md / .png into ``out_dir`` atomically; returns the summary.

    The output folder is claimed (locked, staged) before the evaluation starts, so a second run
    into the same folder fails at once instead of racing this one.
    """
    from pcgen.atomic import atomic_dir
    from pcgen.tasks.evaluate import (compare, comparison_text, evaluate_fill, markdown_table, render_examples,
                                      rows_to_json, summarize)

    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        rows, examples = evaluate_fill(tiles, generators, cfg, fill_cfg, progress=progress)
        summary = summarize(rows, cfg.tau)
        cmp = compare(rows, bootstrap=cfg.bootstrap, seed=cfg.seed)
        table = markdown_table(summary, cfg.tau) + comparison_text(cmp)
        sites = list(dict.fromkeys(r["tile"] for r in rows))
        by_site = {}
        if len(sites) > 1:
            for site in sites:
                mine = [r for r in rows if r["tile"] == site]
                by_site[site] = {"summary": summarize(mine, cfg.tau), "comparison": compare(mine, seed=cfg.seed)}
        per_site = "".join(f"\n### {site}\n\n" + markdown_table(v["summary"], cfg.tau) + comparison_text(v["comparison"])
                           for site, v in by_site.items())
        report = rows_to_json(rows, summary, cfg, {"comparison": cmp, "by_tile": by_site, **(extra or {})})
        (tmp / "eval_fill.json").write_text(json.dumps(report, indent=1, default=float))
        (tmp / "eval_fill.md").write_text(f"Gap filling on {len(sites)} held-out tiles, "
                                          f"{cfg.gap_size:g} m square cuts\n\n" + table +
                                          ("\n## Per tile\n" + per_site if per_site else ""))
        render_examples(examples, tmp / "eval_fill.png")
    return {"summary": summary, "table": table, "comparison": cmp}


def run(args: argparse.Namespace) -> int:
    from pcgen.inputs import list_inputs
    from pcgen.io import SUFFIXES
    from pcgen.outputs import check_output
    from pcgen.tasks.baselines import HybridFill, MirrorFill, SurfaceFill
    from pcgen.tasks.config_checks import check_fill_config
    from pcgen.tasks.fill import load_fill_config

    paths = list_inputs(args.tiles, suffixes=SUFFIXES)
    check_output(args.out, [*args.tiles, *paths, args.ckpt], folder=True, overwrite=args.overwrite,
                 overwrite_hint="--overwrite")
    cfg = eval_config(args)
    fill_cfg = check_fill_config(load_fill_config(overrides=args.set))
    generators = {}
    if not args.no_model:
        from pcgen.tasks.generators import load_generator

        generators["pcgen"] = load_generator(args.ckpt)
    generators["mirror"] = MirrorFill()
    generators["hybrid"] = HybridFill()
    generators["surface"] = SurfaceFill()
    if args.max_tiles:
        paths = paths[: args.max_tiles]
    tiles = load_tiles(paths)
    result = run_evaluation(tiles, args.out, generators, cfg, fill_cfg,
                            progress=not args.quiet and sys.stderr.isatty(), overwrite=args.overwrite)
    print(result["table"], end="")
    return 0
