"""Train the gap-filling checkpoint pcgen ships (``pcgen/checkpoints/default_fill.ckpt``).

    .venv/bin/python datasets/train_default_fill.py                 # ~55 min on 2 CPU cores
    .venv/bin/python datasets/train_default_fill.py --steps 50 --out /tmp/quick.ckpt --work /tmp/quick

Cuts 5-25 m square gaps (``--gap-sizes``) out of the training sites of ``datasets/fill_split.yaml`` (whole files;
the held-out sites are never read), caches them in ``--work``, trains ``pcgen train
experiment=gap_fill`` on them and strips the checkpoint to its EMA weights. A sidecar ``.json``
records the split, the example counts, the settings and the training time. Evaluate with::

    pcgen eval-fill <held-out site files> --out eval/ --gap-size 10
"""

from __future__ import annotations

import sys
from pathlib import Path

from pcgen.errors import PcgenError
from pcgen.tasks.train_fill import build_parser, train_fill

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    parser = build_parser()
    parser.prog = Path(__file__).name
    parser.set_defaults(split=str(HERE / "fill_split.yaml"),
                        out=str(HERE.parent / "pcgen" / "checkpoints" / "default_fill.ckpt"),
                        work=str(HERE.parent / "work" / "fill"))
    for action in parser._actions:  # the defaults above make these optional here
        if action.dest in ("split", "out", "work"):
            action.required = False
            action.help += f" (default: {action.default})"
    args = parser.parse_args(argv)
    if args.gap_sizes[0] > args.gap_sizes[1]:
        parser.error(f"--gap-sizes wants MIN <= MAX, got {args.gap_sizes[0]:g} {args.gap_sizes[1]:g}")
    try:
        train_fill(args)
    except PcgenError as exc:  # one line, as every pcgen command reports it
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
