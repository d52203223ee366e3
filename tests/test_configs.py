"""Every model x encoder composes, instantiates and takes optimizer steps on real tiles (CPU)."""

from __future__ import annotations

import itertools

import pytest
import torch

MODELS = ["vae", "gan", "diffusion", "flow_matching"]
ENCODERS = ["pointnet", "pointnet2", "dgcnn"]


@pytest.fixture(scope="module")
def make_cfg(tmp_path_factory, lidar_dir):
    """``make_cfg(model, encoder, overrides)``: tiny widths on tiny real tiles (warsaw_small)."""
    from pcgen.train.testing import make_tiny_tiles, tiny_config

    tiles = make_tiny_tiles(tmp_path_factory.mktemp("tiles") / "warsaw")

    def _make(model, encoder, overrides=()):
        return tiny_config(model, encoder, tiles, tmp_path_factory.mktemp("run"), overrides)

    return _make


def _params(module):
    return {k: v.detach().clone() for k, v in module.head.state_dict().items()
            if v.dtype.is_floating_point}


@pytest.mark.parametrize("model,encoder", list(itertools.product(MODELS, ENCODERS)))
def test_two_steps(model, encoder, make_cfg):
    from pcgen.train.run import build

    # GAN: Lightning counts both players' optimizer steps, so 4 steps = 2 batches.
    steps = 4 if model == "gan" else 2
    cfg = make_cfg(model, encoder, [f"trainer.max_steps={steps}"])
    module, datamodule, trainer = build(cfg)
    assert module.hparams["kind"] == model
    before = _params(module)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == steps
    assert module.batches_seen == 2
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"])
    if model == "gan":
        assert {"train_d/disc_adv", "train_g/gen_adv"} <= set(metrics)
    after = _params(module)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no parameter moved after two optimizer steps"
    # EMA is a separate copy that moved towards the live weights but is not them.
    ema = module.ema.module.state_dict()
    assert any(not torch.equal(ema[k], after[k]) for k in changed)


def test_every_config_group_composes(make_cfg):
    """Presets and experiments resolve fully (interpolations included) without training."""
    from omegaconf import OmegaConf

    for extra in (["data=forest"], ["data=terrain"], ["data=urban"], ["experiment=fill"],
                  ["trainer=ddp"], ["trainer=gpu"], ["experiment=forest_diffusion"]):
        cfg = make_cfg("diffusion", "pointnet", [*extra, "data.tile_dir=null"])
        OmegaConf.to_container(cfg, resolve=True)
    cfg = make_cfg("vae", "pointnet", ["experiment=fill"])
    assert cfg.data.conditional is True
    assert cfg.model.head.encoder.cond_dim == 256
    assert cfg.model.head.decoder.num_points == cfg.data.gap.target_points


def test_conditional_fill_steps(make_cfg):
    """experiment=fill trains a gap-filling head on GapDataset batches (context + gap box)."""
    from pcgen.train.run import build

    cfg = make_cfg("flow_matching", "pointnet", [
        "experiment=fill", "trainer.max_steps=2", "model.cond_dim=8",
        "model.head.context_encoder.hidden=16", "data.gap.context_points=48",
        "data.gap.target_points=16", "+data.gap.min_gap_points=2"])
    module, datamodule, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    assert trainer.global_step == 2
    out = module.sampling_head().sample(
        2, 16, context=torch.rand(2, 48, 3) - 0.5,
        gap_box=torch.tensor([[-0.2, -0.2, 0.2, 0.2]] * 2), generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 16, 3)
    assert bool(((out[..., 0] >= -0.2 - 1e-6) & (out[..., 0] <= 0.2 + 1e-6)).all())
