"""Every trained parameter gets a gradient from one loss: DDP stops on any that does not."""

from __future__ import annotations

import pytest
import torch


def _batch(n=64):
    torch.manual_seed(0)
    return {"points": torch.randn(2, n, 3)}


@pytest.mark.parametrize("encoder", ["pointnet", "dgcnn"])
def test_vae_every_parameter_gets_a_gradient(make_cfg, encoder):
    from pcgen.train.run import build_module

    module = build_module(make_cfg("vae", encoder))
    terms = module.head.loss(_batch())
    sum(terms.values()).backward()
    idle = [n for n, p in module.head.named_parameters() if p.requires_grad and p.grad is None]
    assert not idle


@pytest.mark.parametrize("encoder", ["pointnet", "dgcnn"])
def test_gan_every_parameter_gets_a_gradient(make_cfg, encoder):
    from pcgen.train.run import build_module

    module = build_module(make_cfg("gan", encoder))
    head = module.head
    sum(head.discriminator_loss(_batch()).values()).backward()
    idle = [n for n, p in head.discriminator.named_parameters() if p.grad is None]
    sum(head.generator_loss(_batch()).values()).backward()
    idle += [n for n, p in head.generator.named_parameters() if p.grad is None]
    assert not idle


@pytest.mark.parametrize("model", ["vae", "gan"])
def test_pointnet2_under_ddp_allows_unused_parameters(make_cfg, model):
    """PointNet++ always builds its feature-propagation layers, which these heads never read."""
    from lightning.pytorch.strategies import DDPStrategy

    from pcgen.train.run import build_trainer

    cfg = make_cfg(model, "pointnet2", ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"])
    strategy = build_trainer(cfg, cfg.trainer.default_root_dir).strategy
    assert isinstance(strategy, DDPStrategy)
    assert strategy._ddp_kwargs.get("find_unused_parameters") is True
    cfg = make_cfg(model, "pointnet", ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"])
    strategy = build_trainer(cfg, cfg.trainer.default_root_dir).strategy
    assert not strategy._ddp_kwargs.get("find_unused_parameters")
