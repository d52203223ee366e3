import lightning as L
import numpy as np
import pytest
import torch
from diffusers import UNet2DModel
from torch.utils.data import DataLoader

from pcgen.image.config import build_ldm, load_ldm, load_preset
from pcgen.image.data import ImageFolder
from pcgen.image.ldm import logvar_weighted_loss
from pcgen.image.optim import lr_warmup, scaled_lr


def tiny(overrides=()):
    torch.manual_seed(0)
    return build_ldm(load_preset("tiny", list(overrides)))


@pytest.fixture(scope="module")
def batch(photos):
    return {"image": ImageFolder(photos / "database", 32).images[:4]}


def test_lr_scaling_and_warmup():
    assert scaled_lr(5e-5, 96, 2, 4) == pytest.approx(5e-5 * 768)
    assert scaled_lr(5e-5, 96, 2, 4, scale=False) == 5e-5
    f = lr_warmup(10000, 1e-6)
    assert f(0) == 1e-6 and f(5000) == pytest.approx(0.5, abs=1e-6) and f(10000) == 1.0 and f(10**6) == 1.0
    assert lr_warmup(0)(0) == 1.0 and lr_warmup(0)(10**6) == 1.0  # no warm-up
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_warmup(4, 0.0))
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1])


def test_logvar_formula():
    ls, lv = torch.tensor([0.4, 0.9]), torch.tensor([0.0, 1.5])
    expected = ((0.4 / 1 + 0) + (0.9 / np.exp(1.5) + 1.5)) / 2
    assert float(logvar_weighted_loss(ls, lv)) == pytest.approx(expected)


def test_learned_logvar_path_matches_formula(batch):
    m = tiny(["diffusion.learn_logvar=true", "diffusion.cond_drop_prob=0"])
    assert isinstance(m.logvar, torch.nn.Parameter) and any(p is m.logvar for p in m.trainable_parameters())
    with torch.no_grad():
        m.logvar.fill_(0.7)
    t = torch.tensor([10, 500, 900, 999])
    terms = m.loss(batch, t=t, noise=torch.randn(4, 4, 4, 4))
    terms["loss"].backward()
    loss, simple = float(terms["loss"].detach()), float(terms["loss_simple"].detach())
    assert loss == pytest.approx(simple / np.exp(0.7) + 0.7, rel=1e-5)
    assert float(terms["logvar"]) == pytest.approx(0.7)
    assert m.logvar.grad is not None and m.logvar.grad[t].abs().min() > 0
    assert m.logvar.grad[11:499].abs().max() == 0  # only the sampled timesteps move
    fixed = tiny()
    assert not isinstance(fixed.logvar, torch.nn.Parameter)
    assert not any(p is fixed.logvar for p in fixed.trainable_parameters())


def test_a_few_steps_reduce_the_loss(batch):
    m = tiny(["diffusion.cond_drop_prob=0"])
    m.set_scale_factor(batch["image"])
    t = torch.tensor([50, 300, 600, 900])
    noise = torch.randn(4, 4, 4, 4, generator=torch.Generator().manual_seed(0))

    def evaluate():
        torch.manual_seed(123)  # same posterior sample each time
        with torch.no_grad():
            return float(m.loss(batch, t=t, noise=noise)["loss"])

    before = evaluate()
    opt = torch.optim.AdamW(m.trainable_parameters(), lr=2e-3)
    m.train()
    for _ in range(25):
        torch.manual_seed(123)
        loss = m.loss(batch, t=t, noise=noise)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate()
    assert after < 0.8 * before, (before, after)


def test_scale_by_std_is_computed_once_and_saved(batch, tmp_path):
    m = tiny()
    assert float(m.scale_factor) == 1.0 and not bool(m.scale_factor_set)
    x = batch["image"]
    torch.manual_seed(5)
    z = m.autoencoder.encode(x).latent_dist.sample()
    torch.manual_seed(5)
    m.on_train_batch_start({"image": x}, 0)
    assert float(m.scale_factor) == pytest.approx(1 / float(z.flatten().std()), rel=1e-5)
    first = float(m.scale_factor)
    m.on_train_batch_start({"image": x * 0.1}, 1)  # a second batch must not change it
    assert float(m.scale_factor) == first
    # Through Lightning (with accumulation): the factor of the first batch ends up in the checkpoint.
    m2 = tiny()
    dl = DataLoader([{"image": img} for img in x], batch_size=2)
    trainer = L.Trainer(max_steps=2, accumulate_grad_batches=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(m2, dl)
    sf = float(m2.scale_factor)
    assert sf != 1.0 and bool(m2.scale_factor_set)
    assert trainer.optimizers[0].param_groups[0]["initial_lr"] == pytest.approx(5e-4)  # tiny: scale_lr off
    assert int(m2.ema.n_averaged) == 2  # EMA updates once per optimizer step, not per batch
    trainer.save_checkpoint(tmp_path / "ldm.ckpt")
    ckpt = torch.load(tmp_path / "ldm.ckpt", weights_only=True)
    assert float(ckpt["state_dict"]["scale_factor"]) == sf and bool(ckpt["state_dict"]["scale_factor_set"])
    loaded = load_ldm(tmp_path / "ldm.ckpt")
    assert float(loaded.scale_factor) == sf
    loaded.on_train_batch_start({"image": x * 0.1}, 0)
    assert float(loaded.scale_factor) == sf


def test_lr_is_scaled_by_batch_accumulation_devices():
    m = tiny(["diffusion.scale_lr=true", "diffusion.base_lr=5e-5", "data.batch_size=3"])
    trainer = L.Trainer(max_steps=1, accumulate_grad_batches=4, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    m.trainer = trainer
    conf = m.configure_optimizers()
    assert conf["optimizer"].param_groups[0]["initial_lr"] == pytest.approx(5e-5 * 3 * 4)
    assert conf["optimizer"].param_groups[0]["lr"] == pytest.approx(5e-5 * 3 * 4 * 1e-6)  # warm-up start


@pytest.mark.parametrize("kw", [dict(sampler="ddim", steps=7, eta=0.0), dict(sampler="ddim", steps=5, eta=1.0),
                                dict(sampler="ddpm", steps=6), dict(sampler="ddim", steps=4, guidance_scale=3.0)])
def test_sampling_shape_and_range(batch, kw):
    m = tiny().eval()
    ctx = m.embed(batch["image"][:3])
    x = m.sample(context=ctx, generator=torch.Generator().manual_seed(0), **kw)
    assert x.shape == (3, 3, 32, 32) and torch.isfinite(x).all()
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    if kw.get("eta", 1.0) == 0.0:
        again = m.sample(context=ctx, generator=torch.Generator().manual_seed(0), **kw)
        torch.testing.assert_close(x, again)


def test_unconditional_model_uses_self_attention_only():
    cfg = load_preset("tiny", ["cosplace=null", "unet._target_=diffusers.UNet2DModel",
                               "unet.down_block_types=[AttnDownBlock2D,DownBlock2D]",
                               "unet.up_block_types=[UpBlock2D,AttnUpBlock2D]", "unet.attention_head_dim=8"])
    cfg.unet.pop("resnet_time_scale_shift")
    m = build_ldm(cfg).eval()
    assert isinstance(m.unet, UNet2DModel) and not m.conditional and m.cosplace is None
    x = m.sample(2, steps=3)
    assert x.shape == (2, 3, 32, 32)
    loss = m.loss({"image": torch.rand(2, 3, 32, 32) * 2 - 1})["loss"]
    assert torch.isfinite(loss)


def test_condition_dropout_uses_null_context(batch):
    m = tiny(["diffusion.cond_drop_prob=1.0"]).train()
    ctx = m.embed(batch["image"])
    with torch.no_grad():
        m.null_context.fill_(0.25)
    out = m._contexts({"image": batch["image"], "context": ctx})
    assert torch.all(out == 0.25)
    m.eval()
    torch.testing.assert_close(m._contexts({"image": batch["image"], "context": ctx}), ctx)


def test_sampling_step_counts_are_checked():
    from pcgen.errors import ConfigError

    m = tiny()
    t = m.timesteps
    # DDIM's leading spacing is offset by one: timesteps - 1 steps is its most, DDPM takes all
    assert m.sample(1, sampler="ddim", steps=t - 1).shape[0] == 1
    with pytest.raises(ConfigError, match=rf"\[1, {t - 1}\] for ddim"):
        m.sample(1, sampler="ddim", steps=t)
    with pytest.raises(ConfigError, match=rf"\[1, {t}\] for ddpm"):
        m.sample(1, sampler="ddpm", steps=t + 1)


@pytest.mark.parametrize("kw, says", [
    (dict(guidance_scale=float("nan")), "guidance_scale must be >= 0 and <= 1000, got nan"),
    (dict(guidance_scale=-1.0), "guidance_scale must be >= 0"),
    (dict(eta=float("nan")), "eta must be >= 0 and <= 1, got nan"),
    (dict(eta=-0.5), "eta must be >= 0 and <= 1"),
    (dict(eta=2.0), "eta must be >= 0 and <= 1"),  # as the CLI: DDIM's η in [0, 1]
    (dict(sampler="ddpm", eta=0.5), "eta applies to the ddim sampler only"),
    (dict(steps=2.5), "steps must be a whole number in"),
    (dict(num_samples=0), "num_samples must be a whole number >= 1, got 0"),
    (dict(num_samples=-1), "num_samples must be a whole number >= 1, got -1"),
    (dict(num_samples=1.5), "num_samples must be a whole number >= 1, got 1.5"),
    (dict(num_samples=3), "num_samples 3 does not match the 2 contexts given"),
])
def test_sampling_settings_are_checked(batch, kw, says):
    from pcgen.errors import ConfigError

    m = tiny().eval()
    ctx = m.embed(batch["image"][:2])
    kw = {"num_samples": None, "steps": 2, **kw}
    with pytest.raises(ConfigError, match=says):
        m.sample(kw.pop("num_samples"), ctx, **kw)
    assert m.sample(2, ctx, steps=2).shape[0] == 2 and m.sample(3, ctx[:1], steps=2).shape[0] == 3
