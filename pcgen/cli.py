"""`pcgen` command line: one dispatcher, one module per subcommand.

Each subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and is
imported only when its subcommand runs, so ``pcgen --help`` stays fast. User errors
(``PcgenError``) and bad options print as one line and exit with status 2; bugs keep their
traceback. SIGTERM is handled like Ctrl-C: it unwinds through the same ``finally`` blocks, so
staging folders are removed and nothing partial stays behind.
"""

from __future__ import annotations

import argparse
import importlib
import signal
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
    "train": ("pcgen.train.train_cli", "train a head: Hydra overrides, e.g. model=vae trainer.max_steps=50"),
    "evaluate": ("pcgen.tasks.eval_generation_cli", "MMD/COV/1-NNA/JSD of generated vs reference clouds (key=value)"),
}


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; raised in the main thread so cleanup code runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _on_signal(signum, frame):
    raise Interrupted(signum)


class _Parser(argparse.ArgumentParser):
    """Reports a bad option in one line (``pcgen tile: error: argument --size: ...``), exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pcgen", description=__doc__.splitlines()[0])
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
    parser = _Parser(prog=f"pcgen {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(parser)
    try:
        # A Hydra app (OWN_ARGV) parses its own command line: overrides, -m, --cfg, --help.
        args = argv[1:] if getattr(module, "OWN_ARGV", False) else parser.parse_args(argv[1:])
    except SystemExit as exc:  # --help (0) or a bad option (2, already printed in one line)
        return int(exc.code or 0)
    empty = None if isinstance(args, list) else _empty_value(parser, args)
    if empty is not None:  # '' is no path, number or name: os.path reads it as the current folder
        print(f"pcgen {name}: error: argument {empty}: empty value", file=sys.stderr)
        return 2
    previous = _install_handlers()
    try:
        return int(module.run(args) or 0)
    except PcgenError as exc:
        print(f"pcgen {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"pcgen {name}: interrupted ({signal.Signals(signum).name})",
              file=sys.stderr)
        return 128 + int(signum)
    finally:
        _restore_handlers(previous)


def _empty_value(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The first option (or positional) given as an empty string, named as its help names it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):  # `pcgen image VERB ...`: the verb's own
            chosen = action.choices.get(getattr(args, action.dest, None))
            found = None if chosen is None else _empty_value(chosen, args)
            if found is not None:
                return found
            continue
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, list) else [value]
        if any(v == "" or (isinstance(v, list) and "" in v) for v in values):
            return "/".join(action.option_strings) or action.metavar or action.dest
    return None


def _install_handlers() -> dict:
    """One handler for SIGINT and SIGTERM (main thread only; elsewhere signals keep their default)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, _on_signal)
    return previous


def _restore_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
