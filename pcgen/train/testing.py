"""Tiny real tiles and the ``debug=tiny`` training config over them: smoke tests and CI.

The tiny widths live in ``pcgen/conf/debug/`` (``pcgen train debug=tiny ...`` uses the same).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

TINY_POINTS = 64  # debug/tiny.yaml: data.dataset.num_points


def make_tiny_tiles(out: str | os.PathLike) -> Path:
    """Cut the real ``warsaw_small.las`` (33 x 33 m, 3000 points) into 11 m tiles (9 tiles)."""
    from pcgen import datadir
    from pcgen.data.tiling import TileOptions, tile_files

    out = Path(out)
    tile_files([str(datadir.lidar_file("warsaw_small.las"))], out,
               TileOptions(size=11.0, buffer=0.0, min_points=TINY_POINTS), overview=False)
    return out


def tiny_config(model: str, encoder: str, tile_dir: str | os.PathLike, root: str | os.PathLike,
                overrides: Sequence[str] = (), callbacks: str = "none",
                logger: str = "none") -> DictConfig:
    """``config.yaml`` with ``debug=tiny`` (``pcgen/conf/debug/``) for ``model`` x ``encoder`` on ``tile_dir``."""
    from pcgen.train.run import compose_config

    args = ["debug=tiny", f"model={model}", f"encoder={encoder}", f"callbacks={callbacks}",
            f"logger={logger}", f"data.tile_dir={tile_dir}", *overrides]
    return compose_config(args, root=root)
