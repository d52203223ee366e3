"""Small encoders and clouds shared by the pcgen.nn tests (kept tiny so the suite stays fast).

Exposed as fixtures returning the functions, since test modules load with --import-mode=importlib."""

from __future__ import annotations

import pytest
import torch

from pcgen.nn import DGCNNEncoder, PointNet2Encoder, PointNetEncoder

NAMES = ("pointnet", "pointnet2", "dgcnn")


def make_encoder(name: str, **kw) -> torch.nn.Module:
    """A few-thousand-parameter version of each encoder; ``kw`` overrides its arguments."""
    torch.manual_seed(0)
    if name == "pointnet":
        args = dict(local_channels=(16, 16), global_channels=(16, 32), point_channels=(16,),
                    input_transform=True, feature_transform=True, mean_pool=True)
        return PointNetEncoder(**{**args, **kw})
    if name == "pointnet2":
        args = dict(sa_levels=[
            {"num_centroids": 32, "radii": [0.3, 0.6], "neighbors": [8, 16], "channels": [[16], [16, 16]]},
            {"num_centroids": 8, "radius": 0.9, "neighbors": 8, "channels": [32]}],
            global_channels=(32,), fp_channels=((32,), (16,)))
        return PointNet2Encoder(**{**args, **kw})
    if name == "dgcnn":
        args = dict(k=8, edge_channels=((16,), (16,)), emb_channels=32, point_channels=(16,))
        return DGCNNEncoder(**{**args, **kw})
    raise KeyError(name)


def random_clouds(batch: int, num_points: int, features: int = 0, seed: int = 0,
                  dtype=torch.float32) -> torch.Tensor:
    """``(B, N, 3 + F)`` points uniform in the unit ball, plus standard-normal features."""
    g = torch.Generator().manual_seed(seed)
    xyz = torch.randn(batch, num_points, 3, generator=g, dtype=torch.float64)
    xyz = xyz / xyz.norm(dim=-1, keepdim=True) * torch.rand(batch, num_points, 1, generator=g,
                                                            dtype=torch.float64) ** (1 / 3)
    feats = torch.randn(batch, num_points, features, generator=g, dtype=torch.float64)
    return torch.cat([xyz, feats], dim=-1).to(dtype)


def randomize_zero_inits(model: torch.nn.Module, seed: int = 1) -> None:
    """FiLM and T-Net output layers start at exactly zero (identity maps), which blocks gradients to
    the layers before them at init; give them small random weights for gradient and conditioning tests."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if (".proj." in name or name.endswith("tnet.out.weight")) and bool((p == 0).all()):
            with torch.no_grad():
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))


@pytest.fixture
def encoder_factory():
    return make_encoder


@pytest.fixture
def clouds():
    return random_clouds


@pytest.fixture
def randomize():
    return randomize_zero_inits
