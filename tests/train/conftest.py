"""Fixtures for the trainer tests: tiny real tiles (once per session) and tiny composed configs."""

from __future__ import annotations

from pathlib import Path

import pytest

CONF_DIR = str(Path(__file__).resolve().parents[2] / "conf")

# Widths small enough that a CPU optimizer step takes milliseconds; each still exercises the
# encoder's real code path (neighbourhoods, set abstraction, EdgeConv).
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
NUM_POINTS = 64


@pytest.fixture(scope="session")
def tiny_tiles(tmp_path_factory, lidar_dir):
    """Tiles of the real warsaw_small.las (33 x 33 m, 3000 points) cut 11 m wide: 9 small tiles."""
    from pcgen.data.tiling import TileOptions, tile_files

    out = tmp_path_factory.mktemp("tiles") / "warsaw"
    tile_files([str(lidar_dir / "warsaw_small.las")], out,
               TileOptions(size=11.0, buffer=0.0, min_points=NUM_POINTS), overview=False)
    return out


@pytest.fixture(scope="session")
def make_cfg(tiny_tiles, tmp_path_factory):
    """Compose ``conf/config.yaml`` with tiny widths, the tiny tiles and a temporary run folder."""
    from hydra import compose, initialize_config_dir

    from pcgen.train.run import register_resolvers

    register_resolvers()

    def _make(model="diffusion", encoder="pointnet", overrides=(), root=None, callbacks="none",
              logger="none"):
        root = Path(root or tmp_path_factory.mktemp("run"))
        args = [f"model={model}", f"encoder={encoder}", f"callbacks={callbacks}", f"logger={logger}",
                "trainer=cpu", f"trainer.default_root_dir={root}", "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false", "trainer.log_every_n_steps=1",
                f"data.tile_dir={tiny_tiles}", f"data.dataset.num_points={NUM_POINTS}",
                "data.batch_size=2", *TINY_ENCODER[encoder], *TINY_MODEL[model], *overrides]
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("config", overrides=args)

    return _make
