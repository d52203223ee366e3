"""DDPM maths: forward-process moments, posterior mean, DDIM vs ancestral, oracle samplers; LDM's
sqrt-linear schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from torch import nn

from pcgen.errors import ConfigError
from pcgen.models import DiffusionHead, NoiseSchedule
from pcgen.models.noise_schedule import sqrt_linear_betas


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_forward_process_moments(kind):
    sched = NoiseSchedule(kind, 1000)
    x0 = torch.tensor([[0.7, -0.4, 1.2]])
    g = torch.Generator().manual_seed(0)
    for t_val in (0, 250, 600, 999):
        n = 100_000
        t = torch.full((n,), t_val)
        xt = sched.add_noise(x0.expand(n, 3), torch.randn(n, 3, generator=g), t)
        abar = sched.alphas_cumprod[t_val].double()
        torch.testing.assert_close(xt.double().mean(0), abar.sqrt() * x0[0].double(), atol=0.01, rtol=0)
        torch.testing.assert_close(xt.double().var(0), (1 - abar).expand(3), atol=0.01 * (1 - abar) + 1e-6, rtol=0.02)


def test_schedule_shapes_and_values():
    lin, cos = NoiseSchedule("linear", 1000), NoiseSchedule("cosine", 1000)
    assert lin.betas[0].item() == pytest.approx(1e-4) and lin.betas[-1].item() == pytest.approx(0.02)
    # ᾱ is decreasing from ~1 to ~0 for both; the cosine schedule keeps more signal mid-way
    for s in (lin, cos):
        assert torch.all(s.alphas_cumprod[1:] < s.alphas_cumprod[:-1])
        assert s.alphas_cumprod[0] > 0.999 and s.alphas_cumprod[-1] < 1e-3
    assert cos.alphas_cumprod[500] > lin.alphas_cumprod[500]
    # the cosine schedule is ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2), s = 0.008
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    assert cos.alphas_cumprod[499].item() == pytest.approx(f(500) / f(0), rel=1e-3)


def test_bad_schedule_config():
    with pytest.raises(ConfigError):
        NoiseSchedule("quadratic")
    with pytest.raises(ConfigError):
        NoiseSchedule("linear", beta_start=0.1, beta_end=0.01)
    with pytest.raises(ConfigError, match="spacing"):
        NoiseSchedule("linear", spacing="uniform")


def test_betas_are_ldm_linear_in_sqrt_beta():
    b = sqrt_linear_betas(1000, 0.0015, 0.0155)
    assert b[0] == pytest.approx(0.0015) and b[-1] == pytest.approx(0.0155)
    assert np.allclose(np.diff(np.sqrt(b)), (0.0155 ** 0.5 - 0.0015 ** 0.5) / 999)
    # LDM's middle beta is below diffusers' beta-linear one (0.0085) with the same endpoints.
    s0, s1 = 0.0015 ** 0.5, 0.0155 ** 0.5
    assert b[500] == pytest.approx((s0 + (s1 - s0) * 500 / 999) ** 2, rel=1e-12)
    assert b[500] < DDPMScheduler(beta_start=0.0015, beta_end=0.0155).betas[500] - 1e-3
    sched = NoiseSchedule("sqrt_linear", 1000, 0.0015, 0.0155, clip_sample=None, spacing="leading")
    for sampler in (sched.ddpm(), sched.ddim()):
        torch.testing.assert_close(sampler.betas, torch.tensor(b, dtype=torch.float32))
    # ᾱ in float64, as LDM computes it; q(x_t | x₀) takes its square roots before rounding to float32
    torch.testing.assert_close(sched.alphas_cumprod, torch.from_numpy(np.cumprod(1 - b)), rtol=0, atol=0)
    x0, eps, t = torch.ones(2, 4), torch.zeros(2, 4), torch.tensor([0, 999])
    want = torch.from_numpy(np.cumprod(1 - b)[[0, 999]] ** 0.5).float()[:, None].expand(2, 4)
    assert torch.equal(sched.add_noise(x0, eps, t), want)
    # LDM's "uniform" DDIM discretisation: every 20th step, offset by one
    ddim = sched.ddim()
    ddim.set_timesteps(50)
    assert ddim.timesteps.tolist() == list(range(981, 0, -20))
    trailing = NoiseSchedule("linear", 1000).ddim()
    trailing.set_timesteps(50)
    assert trailing.timesteps[0] == 999 and trailing.timesteps[-1] == 19


def test_predict_x0_inverts_add_noise():
    sched = NoiseSchedule("linear", 1000)
    x0, eps = torch.randn(4, 16, 3), torch.randn(4, 16, 3)
    t = torch.tensor([0, 10, 500, 900])
    torch.testing.assert_close(sched.predict_x0(sched.add_noise(x0, eps, t), eps, t), x0, atol=2e-4, rtol=1e-4)


def _step(scheduler, eps, t, x, **kw):
    return scheduler.step(eps, t, x, **kw).prev_sample


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_ddim_step_against_ancestral_posterior_mean(kind):
    """With T steps, DDIM's step at η = 1 (noise zeroed) IS the ancestral posterior mean μ̃(x_t, x̂₀);
    at η = 0 it differs from μ̃ only by [√(1-ᾱ_{t-1}) - √α_t (1-ᾱ_{t-1})/√(1-ᾱ_t)]·ε̂, which we check
    exactly, and which lies in [0, β_t/√(1-ᾱ_{t-1})]: it vanishes as β_t → 0."""
    sched = NoiseSchedule(kind, 1000, clip_sample=None)
    ddim = sched.ddim()
    ddim.set_timesteps(1000)
    g = torch.Generator().manual_seed(1)
    # float64 so the check measures the maths, not float32 rounding of x̂₀ at ᾱ_t ≈ 0
    x = torch.randn(2, 64, 3, generator=g, dtype=torch.float64)
    eps = torch.randn(2, 64, 3, generator=g, dtype=torch.float64)
    for t in (999, 700, 300, 50, 1):
        tt = torch.full((2,), t)
        mean = sched.posterior_mean(sched.predict_x0(x, eps, tt), x, tt)
        eta1 = _step(ddim, eps, t, x, eta=1.0, variance_noise=torch.zeros_like(x))
        torch.testing.assert_close(eta1, mean, atol=1e-6, rtol=1e-5)
        eta0 = _step(ddim, eps, t, x, eta=0.0)
        a, a_prev = sched.alphas_cumprod[t].double(), sched.alphas_cumprod[t - 1].double()
        alpha = a / a_prev
        gap = (1 - a_prev).sqrt() - alpha.sqrt() * (1 - a_prev) / (1 - a).sqrt()
        torch.testing.assert_close(eta0 - mean, gap * eps, atol=1e-6, rtol=1e-5)
        assert 0 <= gap.item() <= sched.betas[t].item() / math.sqrt(1 - a_prev.item())


class GaussianOracle(nn.Module):
    """The exact ε-predictor for data x₀ ~ N(μ, s²I): E[ε | x_t] = √(1-ᾱ)(x_t - √ᾱ μ)/(ᾱ s² + 1 - ᾱ)."""

    def __init__(self, sched: NoiseSchedule, mu: float, s: float):
        super().__init__()
        self.sched, self.mu, self.s = sched, mu, s
        self.calls = 0

    def forward(self, x, t, cond=None):
        self.calls += 1
        abar = self.sched.alphas_cumprod[t.long()].view(-1, 1, 1)
        return (1 - abar).sqrt() * (x - abar.sqrt() * self.mu) / (abar * self.s**2 + 1 - abar)


def test_ddim_eta0_is_deterministic_and_follows_the_ode():
    """DDIM(η = 0) is a first-order solver of the probability-flow ODE, whose map for Gaussian
    data x₀ ~ N(μ, s²) is the affine map between the marginals at T and 0."""
    mu, s = 0.5, 0.3
    sched = NoiseSchedule("cosine", 1000, clip_sample=None)  # Gaussian data reaches past ±1
    head = DiffusionHead(GaussianOracle(sched, mu, s), sched)
    x_T = torch.randn(4, 128, 3, generator=torch.Generator().manual_seed(3))
    a_T = sched.alphas_cumprod[-1]
    exact = mu + s * (x_T - a_T.sqrt() * mu) / (a_T * s**2 + 1 - a_T).sqrt()
    errors = {}
    for steps in (50, 200, 1000):
        a = head.sample(4, 128, generator=torch.Generator().manual_seed(3), sampler="ddim", steps=steps)
        b = head.sample(4, 128, generator=torch.Generator().manual_seed(3), sampler="ddim", steps=steps)
        assert torch.equal(a, b)
        errors[steps] = (a - exact).abs().max().item()
    assert errors[1000] < 0.005
    assert 3.0 < errors[50] / errors[200] < 5.0  # first order: 4× the steps, 1/4 the error
    assert head.net.calls == 2 * (50 + 200 + 1000)  # any step count, one network call per step


def test_ancestral_ddpm_reaches_data_distribution():
    mu, s = -0.4, 0.5
    sched = NoiseSchedule("linear", 1000, clip_sample=None)
    head = DiffusionHead(GaussianOracle(sched, mu, s), sched, sampler="ddpm", steps=None)
    x = head.sample(8, 256, generator=torch.Generator().manual_seed(0))
    assert head.net.calls == 1000
    assert x.mean().item() == pytest.approx(mu, abs=0.02)
    assert x.std().item() == pytest.approx(s, abs=0.02)
    # ancestral sampling is stochastic: a different seed gives different clouds
    assert not torch.equal(x, head.sample(8, 256, generator=torch.Generator().manual_seed(1)))


class ConstantEps(nn.Module):
    """A badly wrong network: predicts ε = 0.5 everywhere."""

    def forward(self, x, t, cond=None):
        return torch.full_like(x, 0.5)


def test_clipping_keeps_an_imperfect_network_bounded():
    """Cosine ᾱ_T ≈ 2e-9: without clamping x̂₀, ε-errors are amplified ~1e4× in the first step."""
    clipped = DiffusionHead(ConstantEps(), NoiseSchedule("cosine", 1000))
    raw = DiffusionHead(ConstantEps(), NoiseSchedule("cosine", 1000, clip_sample=None))
    g = lambda: torch.Generator().manual_seed(0)
    assert clipped.sample(2, 64, generator=g()).abs().max() <= 1.0 + 1e-6
    assert raw.sample(2, 64, generator=g()).abs().max() > 100
