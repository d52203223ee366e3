"""Tiny training configs over tiny real tiles: smoke tests, CI and quick interactive checks.

Widths are small enough that a CPU optimizer step takes milliseconds, while each encoder still
runs its real code path (neighbourhoods, set abstraction, EdgeConv).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig

TINY_ENCODER = {
    "pointnet": ["encoder.local_channels=[16]", "encoder.global_channels=[16,32]",
                 "encoder.point_channels=[16]"],
    "pointnet2": ["encoder.sa_levels=[{num_centroids:16,radii:[0.4],neighbors:[8],channels:[[16,16]]}]",
                  "encoder.global_channels=[32]", "encoder.fp_channels=[[16]]"],
    "dgcnn": ["encoder.k=8", "encoder.edge_channels=[[16],[16]]", "encoder.emb_channels=32",
              "encoder.point_channels=[16]"],
}
TINY_MODEL = {
    "vae": ["model.latent_dim=8", "model.head.decoder.hidden=[32]"],
    "gan": ["model.noise_dim=8", "model.head.generator.hidden=[32]"],
    "diffusion": ["model.time_dim=16", "model.head.net.hidden=16"],
    "flow_matching": ["model.time_dim=16", "model.head.net.hidden=16"],
}
TINY_POINTS = 64


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
    """``conf/config.yaml`` composed for a tiny CPU run of ``model`` x ``encoder`` on ``tile_dir``."""
    from pcgen.train.run import compose_config

    args = [f"model={model}", f"encoder={encoder}", f"callbacks={callbacks}", f"logger={logger}",
            "trainer=cpu", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            "trainer.log_every_n_steps=1", f"data.tile_dir={tile_dir}",
            f"data.dataset.num_points={TINY_POINTS}", "data.batch_size=2",
            *TINY_ENCODER[encoder], *TINY_MODEL[model], *overrides]
    return compose_config(args, root=root)
