"""`pcgen fill IN OUT`: fill gaps in a LAS/LAZ file, a folder of them, or a tile index."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pcgen.errors import ConfigError, InputError
from pcgen.options import bounds_box, check_scale_out, dask_address, seed, workers, yaml_mapping_file
from pcgen.tasks.generators import AUTO_COPY, BASELINES, SOURCE_COPIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="LAS/LAZ file, folder of them, tile index (.txt / GeoJSON), or EPT dataset")
    parser.add_argument("output", help="output LAS/LAZ file (a folder for several inputs); never IN")
    parser.add_argument("--ckpt", default=None,
                        help="conditional checkpoint (default: the one shipped in pcgen/checkpoints)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mask", default=None, help="GeoJSON polygons, in the file's CRS, to fill")
    where.add_argument("--auto", action="store_true", help="detect gaps automatically (the default)")
    parser.add_argument("--bounds", type=bounds_box, default=None, metavar="XMIN,YMIN,XMAX,YMAX",
                        help="fill only the points in this box (the data's CRS units): OUT holds them "
                             "and the new points; an EPT dataset or COPC file reads only the nodes it meets")
    parser.add_argument("--samples", "-k", type=int, default=None,
                        help="K draws per gap, written as their consensus (default: the config's samples, 8); "
                             "K > 1 adds a per-point 'uncertainty' dimension")
    parser.add_argument("--baseline", choices=BASELINES, default=None,
                        help="fill with a baseline instead of the model")
    parser.add_argument("--source-copy", choices=(AUTO_COPY, *SOURCE_COPIES), default=None,
                        help="the copy the model starts from in every gap (default auto: canopy in "
                             "gaps up to 7.5 m wide, where it is closer, else the trained one)")
    parser.add_argument("--class-code", type=int, default=None,
                        help="ASPRS class of new points (default: the class most common among the 15 "
                             "originals nearest each one, heights above ground)")
    parser.add_argument("--exclude-classes", default=None,
                        help="comma-separated classes never called gaps (default from config: 9, water)")
    parser.add_argument("--gaps", default=None, metavar="GEOJSON",
                        help="where to write the gap report (default: OUT with .gaps.geojson)")
    parser.add_argument("--gaps-only", action="store_true",
                        help="only detect and report the gaps (GeoJSON), so they can be checked "
                             "or edited and passed back with --mask")
    parser.add_argument("--png", action="store_true",
                        help="also draw each filled file (OUT with .png): from above, new points in red, "
                             "and from the side through its largest gap")
    parser.add_argument("--config", type=yaml_mapping_file, default=None,
                        help="fill YAML setting some keys over the packaged pcgen/conf/task/fill.yaml")
    parser.add_argument("--config-dir", default=None, metavar="DIR",
                        help="your config folder; its task/fill.yaml replaces the packaged one")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set gaps.density_ratio=0.1")
    parser.add_argument("--seed", type=seed, default=None)
    parser.add_argument("--workers", "-j", type=workers, default=1, help="processes: over the files, or over one file's gaps")
    parser.add_argument("--dask", type=dask_address, default=None, metavar="ADDRESS",
                        help="run tiles on the Dask scheduler at ADDRESS (tcp://host:8786)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace what an earlier pcgen fill wrote: the filled file and its gap "
                             "report, or pcgen's files in a non-empty output folder (nothing else)")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors (no progress bars, no summary)")


def _config(args):
    from pcgen.tasks.config_checks import check_fill_config
    from pcgen.tasks.fill import check_samples, load_fill_config

    overrides = list(args.set)
    if args.samples is not None:
        if args.samples <= 0:  # named by its flag here; the library names the config key
            raise ConfigError(f"--samples must be a positive integer, got {args.samples}")
        overrides.append(f"samples={args.samples}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.class_code is not None:
        if not 0 <= args.class_code <= 255:
            raise ConfigError(f"--class-code must be 0..255, got {args.class_code}")
        overrides.append(f"output.class_code={args.class_code}")
    if args.exclude_classes is not None:
        try:
            # "" clears the list; an empty item among others ("1,,2") is a typo
            classes = [int(c) for c in args.exclude_classes.split(",")] if args.exclude_classes.strip() else []
        except ValueError:
            raise ConfigError(f"--exclude-classes wants integers, got {args.exclude_classes!r}") from None
        overrides.append(f"gaps.exclude_classes={classes}")
    cfg = load_fill_config(args.config, overrides, config_dir=args.config_dir)
    check_samples(cfg.samples)
    return check_fill_config(cfg)


def _guard(args, pairs, single: bool) -> tuple[Path, str | None, str | None]:
    """Check every output location against every input before anything is read."""
    from pcgen.outputs import check_output

    from pcgen.tasks.fill import is_filled_file
    from pcgen.tasks.fill_render import is_fill_png
    from pcgen.tasks.gaps import is_gap_report

    inputs = [args.input, args.mask, args.config, args.ckpt] + [s for s, _ in pairs]
    if single:
        dst = pairs[0][1]
        report = args.gaps or str(dst.with_suffix("")) + ".gaps.geojson"
        if not args.gaps and args.mask and os.path.realpath(report) == os.path.realpath(args.mask):
            report = None  # filling the report --gaps-only wrote: it already lists these gaps
        if not args.gaps_only:
            check_output(dst, inputs, folder=False, overwrite=args.overwrite,
                         overwrite_hint="--overwrite", ours=is_filled_file)
        if report is not None:
            check_output(report, inputs + ([] if args.gaps_only else [dst]), folder=False,
                         overwrite=args.overwrite, overwrite_hint="--overwrite", ours=is_gap_report)
        png = str(dst.with_suffix("")) + ".png" if args.png else None
        if png is not None:
            check_output(png, inputs + [dst, report], folder=False, overwrite=args.overwrite,
                         overwrite_hint="--overwrite", ours=is_fill_png)
        return dst, report, png
    if args.gaps:
        raise ConfigError("--gaps names one report; with several inputs each report goes beside its output")
    return check_output(args.output, inputs, folder=True, overwrite=args.overwrite,
                        overwrite_hint="--overwrite"), None, None


def run(args: argparse.Namespace) -> int:
    from pcgen.atomic import atomic_dir
    from pcgen.io.ept import is_ept
    from pcgen.tasks.generators import make_generator
    from pcgen.tasks.jobs import FillJob, expand_inputs, run_jobs

    check_scale_out(args.workers, args.dask)
    if args.gaps_only:
        fill_only = [flag for flag, value in (("--samples", args.samples), ("--baseline", args.baseline),
                                             ("--source-copy", args.source_copy), ("--class-code", args.class_code),
                                             ("--ckpt", args.ckpt)) if value is not None]
        if args.png:
            fill_only.append("--png")
        if fill_only:
            raise ConfigError(f"{fill_only[0]} sets how gaps are filled; --gaps-only fills none")
    pairs = expand_inputs(args.input, args.output)
    single = len(pairs) == 1 and (not Path(args.input).is_dir() or is_ept(args.input))
    dst, report, png = _guard(args, pairs, single)
    cfg = _config(args)
    if args.baseline and args.source_copy:
        raise ConfigError("--source-copy sets the model's start; a --baseline fill has none")
    if args.baseline and args.ckpt:
        raise ConfigError("--ckpt names the model; a --baseline fill uses none")
    spec = (args.baseline,) if args.baseline else ("model", args.ckpt, args.source_copy)
    if not args.gaps_only:
        make_generator(spec)  # a bad checkpoint fails here, before anything is read or written
    progress = not args.quiet and sys.stderr.isatty()
    if single:
        jobs = [FillJob(str(pairs[0][0]), str(dst), spec, cfg, args.mask, report, True, progress, args.gaps_only,
                        gap_workers=1 if args.dask else args.workers, png=png, bounds=args.bounds)]
        results = run_jobs(jobs, 1, args.dask, progress)
    else:
        # Several files: write into a staging folder; only pcgen's own files move into OUT at the end.
        out_dir = Path(args.output)
        with atomic_dir(out_dir, overwrite=args.overwrite) as stage:
            jobs = [FillJob(str(s), str(stage / d.name), spec, cfg, args.mask,
                            str(stage / (Path(d.name).stem + ".gaps.geojson")), False, False,
                            args.gaps_only, png=str(stage / (Path(d.name).stem + ".png")) if args.png else None,
                            bounds=args.bounds)
                    for s, d in pairs]
            results = run_jobs(jobs, args.workers, args.dask, progress)
            if all(r.skipped for r in results):  # a wrong CRS, a wrong mask or box
                what, where = ("the mask", args.mask) if args.mask else ("--bounds", args.input)
                raise InputError(f"{what} reaches none of the {len(results)} inputs "
                                 f"(first: {results[0].skipped})", where)
        for r in results:
            if r.dst:
                r.dst = str(out_dir / Path(r.dst).name)
    if args.quiet:
        return 0
    for r in results:
        if r.skipped:
            print(f"{r.src}: skipped ({r.skipped})", file=sys.stderr)
        elif args.gaps_only:
            print(f"{r.src}: {len(r.gaps)} gaps", file=sys.stderr)
        else:
            print(f"{r.src} -> {r.dst}: {len(r.gaps)} gaps, {r.n_generated} new points "
                  f"(+{r.n_original} original)", file=sys.stderr)
    if sys.stdout.isatty():  # a person reading: the JSON of a survey's 1000 gaps would scroll for pages;
        return 0             # each gap report holds them, and a pipe or a file still gets them
    print(json.dumps([{"input": r.src, "output": r.dst, "generated": r.n_generated,
                       "gaps": r.gaps} for r in results], indent=1))
    return 0
