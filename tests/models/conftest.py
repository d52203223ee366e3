"""Tiny parts for head tests: a small PointNet, terrain-like synthetic clouds, gap batches."""

from __future__ import annotations

import pytest
import torch

from pcgen.nn import PointNetEncoder


def make_encoder(time_dim: int = 0, cond_dim: int = 0, norm: str = "batch") -> PointNetEncoder:
    return PointNetEncoder(local_channels=(32, 32), global_channels=(32, 64), point_channels=(64,),
                           norm=norm, time_dim=time_dim, cond_dim=cond_dim, cond_hidden=32)


def terrain_clouds(batch: int, points: int, seed: int = 0) -> torch.Tensor:
    """(B, N, 3) tilted surfaces with one bump each: small, smooth, clearly non-Gaussian."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(batch, points, 2, generator=g) * 2 - 1
    tilt = torch.rand(batch, 1, 2, generator=g) - 0.5
    peak = torch.rand(batch, 1, 2, generator=g) - 0.5
    z = (xy * tilt).sum(-1) + 0.6 * torch.exp(-((xy - peak) ** 2).sum(-1) / 0.1)
    return torch.cat([xy, z[..., None]], dim=-1)


def gap_batch(batch: int, context: int, target: int, seed: int = 0) -> dict:
    """A conditional batch: target points inside a box, context outside, the box itself."""
    g = torch.Generator().manual_seed(seed)
    box = torch.tensor([-0.3, -0.2, 0.3, 0.4]).repeat(batch, 1)
    ctx = torch.rand(batch, context, 3, generator=g) * 2 - 1
    ctx[..., 0] = torch.where(ctx[..., 0].abs() < 0.35, ctx[..., 0].sign() * 0.5 + ctx[..., 0], ctx[..., 0])
    u = torch.rand(batch, target, 2, generator=g)
    xy = box[:, None, :2] + u * (box[:, None, 2:] - box[:, None, :2])
    z = 0.3 * torch.sin(3 * xy[..., :1])
    return {"context": ctx, "points": torch.cat([xy, z], dim=-1), "gap_box": box}


@pytest.fixture(autouse=True)
def _single_thread(single_thread):
    """Every test in this folder runs on one torch thread (see tests/conftest.py)."""


@pytest.fixture
def clouds():
    """(8, 32, 3) synthetic terrain batch."""
    return terrain_clouds(8, 32)


@pytest.fixture(name="make_encoder")
def make_encoder_fixture():
    return make_encoder


@pytest.fixture(name="gap_batch")
def gap_batch_fixture():
    return gap_batch
