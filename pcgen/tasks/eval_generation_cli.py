"""`pcgen evaluate KEY=VALUE...`: MMD/COV/1-NNA/JSD of generated vs reference clouds, a JSON report.

Parses the overrides and calls :mod:`pcgen.tasks.eval_generation`; the keys and their defaults
are in ``pcgen/conf/evaluate/config.yaml`` (also printed by ``pcgen evaluate --help``).
"""

from __future__ import annotations

import argparse
import json

from pcgen.tasks.eval_generation import CONFIG_MODULE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from importlib.resources import files

    keys = files(CONFIG_MODULE).joinpath("config.yaml").read_text(encoding="utf-8")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "keys and defaults (pcgen/conf/evaluate/config.yaml):\n" + "\n".join(
        line for line in keys.splitlines() if line and not line.startswith("#"))
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="e.g. generated=samples.npy reference=refs/ out=report.json")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an override as for the other commands (repeatable)")
    parser.add_argument("--config-dir", default=None,
                        help="a folder with your own config.yaml, which replaces the packaged one whole "
                             "(copy pcgen/conf/evaluate/config.yaml and edit it)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing report that pcgen evaluate wrote (never another file)")


def run(args: argparse.Namespace) -> int:
    from pcgen.tasks.eval_generation import evaluate_generation, load_config

    from pcgen.outputs import check_output
    from pcgen.tasks.eval_generation import is_evaluation_report

    cfg = load_config([*args.overrides, *args.set], config_dir=args.config_dir)
    inputs = [cfg[k] for k in ("generated", "reference", "ckpt", "data")] + [args.config_dir]
    cfg["out"] = str(check_output(cfg["out"], inputs, folder=False, overwrite=args.overwrite,
                                  overwrite_hint="--overwrite", ours=is_evaluation_report))
    report = evaluate_generation(cfg)
    summary = {m: report[m] for m in ("chamfer", "emd") if m in report}
    print(json.dumps({"jsd": report["jsd"], **summary}, indent=1))
    return 0
