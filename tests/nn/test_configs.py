"""Every pcgen/conf/encoder/*.yaml composes and instantiates to a working encoder at full size."""

from __future__ import annotations

from importlib.resources import files

import pytest
import torch
from hydra import compose, initialize_config_module
from hydra.utils import instantiate

from pcgen.nn import DGCNNEncoder, PointNet2Encoder, PointNetEncoder

EXPECTED = {"pointnet": PointNetEncoder, "pointnet2": PointNet2Encoder, "dgcnn": DGCNNEncoder}


def test_every_encoder_config_is_tested():
    names = {p.name for p in files("pcgen.conf").joinpath("encoder").iterdir() if p.name.endswith(".yaml")}
    assert {n[:-5] for n in names} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_instantiates_and_runs_b8_n2048(name):
    """One forward+backward at the size the issue asks for, B=8, N=2048, from the default config."""
    with initialize_config_module("pcgen.conf", version_base="1.3"):
        cfg = compose(overrides=[f"+encoder={name}"])
    torch.manual_seed(0)
    model = instantiate(cfg.encoder)
    assert type(model) is EXPECTED[name]
    x = torch.rand(8, 2048, 3) * 2 - 1
    out = model(x)
    assert out.global_feature.shape == (8, model.global_dim)
    assert out.point_features.shape == (8, 2048, model.point_dim)
    (out.global_feature.mean() + out.point_features.mean()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_config_overrides_reach_the_encoder(name):
    with initialize_config_module("pcgen.conf", version_base="1.3"):
        cfg = compose(overrides=[f"+encoder={name}", "encoder.in_channels=5", "encoder.time_dim=16"])
    model = instantiate(cfg.encoder)
    out = model(torch.rand(2, 64, 5), t_emb=torch.zeros(2, 16))
    assert out.global_feature.shape == (2, model.global_dim)
