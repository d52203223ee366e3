"""Fixtures for the trainer tests: tiny real tiles (once per session) and tiny composed configs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_tiles(tmp_path_factory, lidar_dir):
    from pcgen.train.testing import make_tiny_tiles

    return make_tiny_tiles(tmp_path_factory.mktemp("tiles") / "warsaw")


@pytest.fixture(scope="session")
def make_cfg(tiny_tiles, tmp_path_factory):
    """``make_cfg(model, encoder, overrides, root=None, callbacks="none", logger="none")``."""
    from pcgen.train.testing import tiny_config

    def _make(model="diffusion", encoder="pointnet", overrides=(), root=None, callbacks="none",
              logger="none"):
        root = root or tmp_path_factory.mktemp("run")
        return tiny_config(model, encoder, tiny_tiles, root, overrides, callbacks, logger)

    return _make
