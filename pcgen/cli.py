"""`pcgen` command line: one dispatcher, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is
imported only when its subcommand runs, so ``pcgen --help`` stays fast. User errors
(``PcgenError``) print as one line and exit with status 2; bugs keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pcgen.errors import PcgenError

# name -> (module, one-line help). Add a subcommand by adding a row.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "tile": ("pcgen.data.tile_cli", "split LAS/LAZ files into buffered square tiles"),
    "fill": ("pcgen.tasks.fill_cli", "fill gaps in LAS/LAZ tiles with a conditional model or a baseline"),
    "eval-fill": ("pcgen.tasks.eval_fill_cli", "cut known gaps from held-out tiles, fill, compare with baselines"),
    "augment": ("pcgen.tasks.augment_cli", "write synthetic LAZ tiles from a checkpoint, with a manifest"),
    "eval-augment": ("pcgen.tasks.eval_augment_cli", "MMD/COV/1-NNA of generated vs held-out tiles, with baselines"),
    "demo": ("pcgen.tasks.demo", "the gap-filling job end to end on the sample data"),
    "image": ("pcgen.image.cli", "latent diffusion on CosPlace embeddings: image train|sample|explain|rasterize"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pcgen", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in SUBCOMMANDS:
        top.parse_args(argv[:1] or ["--help"])
        return 2
    name = argv[0]
    module = importlib.import_module(SUBCOMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"pcgen {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except PcgenError as exc:
        print(f"pcgen {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pcgen {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
