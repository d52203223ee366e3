"""Every head: trains (loss decreases), reproduces bit-for-bit under a seed, samples the right
shapes unconditionally and inside the gap when conditional, and rejects inconsistent inputs."""

from __future__ import annotations

import pytest
import torch

from pcgen.errors import ConfigError, ShapeError
from pcgen.models import (
    ContextEncoder,
    DiffusionHead,
    FlowMatchingHead,
    FoldingDecoder,
    GANHead,
    LatentMLP,
    MLPDecoder,
    NoiseSchedule,
    PointDenoiser,
    PointDiscriminator,
    VAEHead,
)

from .conftest import gap_batch, make_encoder, terrain_clouds

N, COND = 32, 16


def build(kind: str, conditional: bool = False):
    ctx = ContextEncoder(make_encoder(), out_dim=COND, hidden=32) if conditional else None
    c = COND if conditional else 0
    if kind == "vae":
        return VAEHead(make_encoder(cond_dim=c), FoldingDecoder(8 + c, hidden=64), latent_dim=8,
                       context_encoder=ctx, free_bits=0.01)
    if kind == "vae_emd":
        return VAEHead(make_encoder(cond_dim=c), FoldingDecoder(8 + c, hidden=64), latent_dim=8,
                       context_encoder=ctx, reconstruction=("chamfer", "emd"))
    if kind == "vae_mlp":
        return VAEHead(make_encoder(cond_dim=c), MLPDecoder(8 + c, N, hidden=(64,)), latent_dim=8,
                       context_encoder=ctx)
    if kind == "gan":
        return GANHead(MLPDecoder(8 + c, N, hidden=(64,)), PointDiscriminator(make_encoder(norm="none"), c),
                       noise_dim=8, loss="wgan-gp", context_encoder=ctx,
                       reconstruction=("chamfer",) if conditional else ())
    if kind == "diffusion":
        net = PointDenoiser(make_encoder(time_dim=32, cond_dim=c), time_dim=32, cond_dim=c, hidden=64)
        return DiffusionHead(net, NoiseSchedule("cosine", 100), x0_terms=("chamfer",), context_encoder=ctx, steps=5)
    if kind == "flow":
        net = PointDenoiser(make_encoder(time_dim=32, cond_dim=c), time_dim=32, cond_dim=c, hidden=64)
        return FlowMatchingHead(net, context_encoder=ctx, steps=3)
    raise AssertionError(kind)


def batch_for(conditional: bool) -> dict:
    return gap_batch(8, 48, N) if conditional else {"points": terrain_clouds(8, N)}


def eval_loss(head, batch, names) -> float:
    torch.manual_seed(1234)  # same t / noise / z before and after training
    terms = head.loss(batch)
    return sum(terms[n].item() for n in names)


def train(head, batch, steps: int, lr: float = 3e-3):
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        terms = head.loss(batch)
        sum(v for k, v in terms.items()).backward()
        opt.step()


@pytest.mark.parametrize("kind,conditional,names", [
    ("vae", False, ["chamfer"]),
    ("vae_mlp", True, ["chamfer"]),
    ("vae_emd", False, ["emd"]),
    ("diffusion", False, ["noise"]),
    ("diffusion", True, ["noise"]),
    ("flow", False, ["velocity"]),
    ("flow", True, ["velocity"]),
])
def test_loss_decreases(kind, conditional, names):
    torch.manual_seed(0)
    head, batch = build(kind, conditional), batch_for(conditional)
    before = eval_loss(head, batch, names)
    train(head, batch, 20)
    after = eval_loss(head, batch, names)
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("conditional", [False, True])
def test_gan_players_improve(conditional):
    torch.manual_seed(0)
    head, batch = build("gan", conditional), batch_for(conditional)
    d_opt = torch.optim.Adam(head.discriminator_parameters(), lr=1e-3, betas=(0.5, 0.9))
    g_opt = torch.optim.Adam(head.generator_parameters(), lr=1e-3, betas=(0.5, 0.9))
    torch.manual_seed(7)
    d_before = head.discriminator_loss(batch)["disc_adv"].item()
    for _ in range(20):  # the critic alone learns to separate data from the current generator
        d_opt.zero_grad()
        d = head.discriminator_loss(batch)
        (d["disc_adv"] + 10 * d["gradient_penalty"]).backward()
        d_opt.step()
    torch.manual_seed(7)
    d_after = head.discriminator_loss(batch)["disc_adv"].item()
    assert d_after < d_before - 0.05, (d_before, d_after)
    def train_generator(term):
        torch.manual_seed(7)
        before = head.generator_loss(batch)[term].item()
        for _ in range(20):
            g_opt.zero_grad()
            head.generator_loss(batch)[term].backward()
            g_opt.step()
        torch.manual_seed(7)
        return before, head.generator_loss(batch)

    g_before, g_after = train_generator("gen_adv")  # the generator alone learns to fool that critic
    assert g_after["gen_adv"].item() < g_before - 0.05
    if conditional:  # and its reconstruction term pulls it toward the true gap points
        assert set(g_after) == {"gen_adv", "chamfer"}
        c_before, c_after = train_generator("chamfer")
        assert c_after["chamfer"].item() < 0.8 * c_before


def test_latent_gan_trains_in_a_frozen_autoencoders_space():
    torch.manual_seed(0)
    ae = build("vae")
    frozen = {k: v.clone() for k, v in ae.state_dict().items()}
    head = GANHead(LatentMLP(8, 8, hidden=(32,)), LatentMLP(8, 1, hidden=(32,)), noise_dim=8,
                   loss="ns", autoencoder=ae)
    batch = batch_for(False)
    assert not any(p.requires_grad for p in ae.parameters())
    assert {id(p) for p in head.generator_parameters()}.isdisjoint(id(p) for p in ae.parameters())
    opt = torch.optim.Adam(head.discriminator_parameters(), lr=1e-2)
    torch.manual_seed(3)
    before = head.discriminator_loss(batch)["disc_adv"].item()
    for _ in range(20):
        opt.zero_grad()
        head.discriminator_loss(batch)["disc_adv"].backward()
        opt.step()
    torch.manual_seed(3)
    assert head.discriminator_loss(batch)["disc_adv"].item() < before
    head.train()
    assert not ae.training
    for k, v in ae.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    assert head.sample(3, 50).shape == (3, 50, 3)  # the folding decoder turns latents into any N


@pytest.mark.parametrize("kind", ["vae", "gan", "diffusion", "flow"])
def test_seeded_runs_reproduce_bit_for_bit(kind):
    def run():
        torch.manual_seed(42)
        head, batch = build(kind, True), batch_for(True)
        if kind == "gan":
            opt = torch.optim.Adam(head.parameters(), lr=1e-3)
            for _ in range(3):
                opt.zero_grad()
                (sum(head.discriminator_loss(batch).values()) + sum(head.generator_loss(batch).values())).backward()
                opt.step()
        else:
            train(head, batch, 3)
        sample = head.sample(2, 20 if kind != "gan" else N, context=batch["context"][:2],
                             gap_box=batch["gap_box"][:2], generator=torch.Generator().manual_seed(5))
        return head.state_dict(), sample

    (state_a, sample_a), (state_b, sample_b) = run(), run()
    for k in state_a:
        assert torch.equal(state_a[k], state_b[k]), k
    assert torch.equal(sample_a, sample_b)


@pytest.mark.parametrize("kind", ["vae", "gan", "diffusion", "flow"])
def test_sample_shapes(kind):
    torch.manual_seed(0)
    head = build(kind).eval()
    assert head.sample(3, N).shape == (3, N, 3)
    if kind in ("vae", "diffusion", "flow"):  # point-count free
        assert head.sample(2, 17).shape == (2, 17, 3)
    cond = build(kind, True).eval()
    b = gap_batch(3, 40, N)
    out = cond.sample(3, N, context=b["context"], gap_box=b["gap_box"], generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, N, 3) and torch.isfinite(out).all()
    box = b["gap_box"][:, None]
    assert torch.all(out[..., :2] >= box[..., :2] - 1e-6) and torch.all(out[..., :2] <= box[..., 2:] + 1e-6)


@pytest.mark.parametrize("kind", ["vae", "gan", "diffusion", "flow"])
def test_inconsistent_conditioning_is_rejected(kind):
    uncond, cond = build(kind), build(kind, True)
    b = gap_batch(2, 40, N)
    with pytest.raises(TypeError, match="unconditional"):
        uncond.sample(2, N, context=b["context"], gap_box=b["gap_box"])
    with pytest.raises(TypeError, match="conditional"):
        cond.sample(2, N)
    with pytest.raises(ShapeError, match="gap_box"):
        cond.sample(2, N, context=b["context"], gap_box=b["gap_box"][:, :3])
    with pytest.raises(ShapeError, match="batch"):
        cond.sample(3, N, context=b["context"], gap_box=b["gap_box"])
    with pytest.raises(ShapeError, match="xmax > xmin"):
        cond.sample(2, N, context=b["context"], gap_box=b["gap_box"][:, [2, 3, 0, 1]])
    with pytest.raises(TypeError, match="needs 'context'"):
        cond.loss({"points": b["points"]})
    with pytest.raises(ShapeError):
        uncond.loss({"points": b["points"][..., :2]})


def test_bad_head_configs():
    with pytest.raises(ConfigError, match="built for"):
        MLPDecoder(8, N)(torch.zeros(1, 8), N + 1)
    with pytest.raises(ConfigError, match="decoder takes"):
        VAEHead(make_encoder(), FoldingDecoder(9), latent_dim=8)
    with pytest.raises(ConfigError):
        VAEHead(make_encoder(), FoldingDecoder(8), latent_dim=8, reconstruction=())
    with pytest.raises(ConfigError):
        GANHead(MLPDecoder(8, N), PointDiscriminator(make_encoder()), noise_dim=8, loss="hinge")
    with pytest.raises(ConfigError, match="reconstruction"):
        GANHead(MLPDecoder(8, N), PointDiscriminator(make_encoder()), noise_dim=8, reconstruction=("chamfer",))
    with pytest.raises(ConfigError):
        DiffusionHead(PointDenoiser(make_encoder(time_dim=32), time_dim=32), NoiseSchedule("linear", 100), steps=101)
    with pytest.raises(ConfigError):
        DiffusionHead(PointDenoiser(make_encoder(time_dim=32), time_dim=32), NoiseSchedule("linear", 100), norm="l3")
