"""Train the gap-filling checkpoint pcgen ships (``pcgen/checkpoints/default_fill.ckpt``) on the public sample data.

    .venv/bin/python datasets/train_default_fill.py            # ~10 min on 2 CPU cores
    .venv/bin/python datasets/train_default_fill.py --steps 50 --out /tmp/quick.ckpt

Steps: tile the sample files (``pcgen.data.tile_files``, 40 m tiles), hold out every
``--heldout-every``-th tile (by name) for ``pcgen eval-fill``, train a conditional flow-matching
head on PointNet encoders (``train.py model=flow_matching experiment=fill``) on the rest, then
strip the checkpoint to the EMA weights + the config ``load_head`` needs (no optimizer state), so
it stays a few MB. A sidecar ``.json`` records the split, the settings and the training time.
"""

from __future__ import annotations

import sys

from pcgen.tasks.train_fill import build_parser, train_fill


def main(argv=None) -> int:
    train_fill(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
