"""Flow-matching maths: the straight path, its velocity, and the Euler/Heun solvers on an exact flow."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcgen.errors import ConfigError
from pcgen.models import FlowMatchingHead
from pcgen.models.flow_matching import interpolate, target_velocity


def test_path_endpoints_and_velocity():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(5, 7, 3, generator=g), torch.randn(5, 7, 3, generator=g)
    torch.testing.assert_close(interpolate(x0, x1, torch.zeros(5)), x0)
    torch.testing.assert_close(interpolate(x0, x1, torch.ones(5)), x1)
    t = torch.rand(5, generator=g, dtype=torch.float64).requires_grad_(True)
    xt = interpolate(x0.double(), x1.double(), t)
    # d x_t / d t, per cloud, by autograd: equals x1 - x0 everywhere on the path
    grads = torch.stack([torch.autograd.grad(xt[:, i, j].sum(), t, retain_graph=True)[0]
                         for i in range(7) for j in range(3)], dim=1).view(5, 7, 3)
    torch.testing.assert_close(grads, target_velocity(x0, x1).double())
    torch.testing.assert_close(interpolate(x0, x1, torch.full((5,), 0.25)), 0.75 * x0 + 0.25 * x1)


class GaussianVelocity(nn.Module):
    """Exact marginal velocity E[x1 - x0 | x_t] for x0 ~ N(0, I), x1 ~ N(μ, s²I) independent."""

    def __init__(self, mu: float, s: float, time_scale: float = 1000.0):
        super().__init__()
        self.mu, self.s, self.time_scale = mu, s, time_scale
        self.calls = 0

    def forward(self, x, t, cond=None):
        self.calls += 1
        t = (t / self.time_scale).view(-1, 1, 1).double()
        k = (t * self.s**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * self.s**2)
        return (self.mu + k * (x.double() - t * self.mu)).to(x.dtype)


def test_solvers_reach_the_exact_transport_map():
    """The ODE maps noise x0 to μ + s·x0; Heun (2nd order) is far closer than Euler at 20 steps."""
    mu, s = 0.3, 0.4
    head = FlowMatchingHead(GaussianVelocity(mu, s))
    x0 = torch.randn(2, 256, 3, generator=torch.Generator().manual_seed(5))
    exact = mu + s * x0
    err = {}
    for solver in ("euler", "heun"):
        for steps in (20, 40):
            x = head.sample(2, 256, generator=torch.Generator().manual_seed(5), solver=solver, steps=steps)
            err[solver, steps] = (x - exact).abs().max().item()
    assert err["heun", 20] < 5e-3
    assert err["heun", 20] < 0.2 * err["euler", 20]
    assert 1.6 < err["euler", 20] / err["euler", 40] < 2.4   # first order
    assert err["heun", 20] / err["heun", 40] > 3.0           # second order
    assert head.net.calls == 20 + 40 + 2 * (20 + 40)


def test_flow_sample_is_deterministic_given_noise():
    head = FlowMatchingHead(GaussianVelocity(0.0, 0.5), solver="euler", steps=7)
    a = head.sample(3, 16, generator=torch.Generator().manual_seed(1))
    b = head.sample(3, 16, generator=torch.Generator().manual_seed(1))
    c = head.sample(3, 16, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert head.net.calls == 3 * 7  # Euler: one evaluation per step


def test_velocity_loss_is_zero_for_the_exact_conditional_field():
    class Exact(nn.Module):  # knows x0 and x1 through a closure: checks the loss' target only
        def forward(self, x, t, cond=None):
            return torch.zeros_like(x)

    head = FlowMatchingHead(Exact())
    torch.manual_seed(0)
    x1 = torch.zeros(4, 8, 3)
    # with data at 0 the target is -x0, whose mean square is ~1 for N(0, I) noise
    assert head.loss({"points": x1})["velocity"].item() == pytest.approx(1.0, abs=0.3)


def test_bad_solver_config():
    with pytest.raises(ConfigError):
        FlowMatchingHead(GaussianVelocity(0, 1), solver="rk4")
    with pytest.raises(ConfigError):
        FlowMatchingHead(GaussianVelocity(0, 1), steps=0)
    with pytest.raises(ConfigError):
        FlowMatchingHead(GaussianVelocity(0, 1), time_sampling="beta")
