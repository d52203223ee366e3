"""Loss terms against closed forms and Monte-Carlo estimates."""

from __future__ import annotations

import math

import pytest
import torch

from pcgen import ops
from pcgen.errors import ConfigError
from pcgen.losses import (
    chamfer_loss,
    discriminator_adversarial_loss,
    emd_loss,
    generator_adversarial_loss,
    gradient_penalty,
    kl_loss,
    kl_normal,
    latent_l2,
    noise_prediction_loss,
    orthogonality_loss,
    reconstruction_terms,
    velocity_loss,
)


def test_kl_closed_form_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mean = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.5, 0.7]], dtype=torch.float64)
    std = (0.5 * logvar).exp()
    z = mean + std * torch.randn(400_000, 3, generator=g, dtype=torch.float64)
    log_q = -0.5 * (((z - mean) / std) ** 2 + logvar + math.log(2 * math.pi))
    log_p = -0.5 * (z**2 + math.log(2 * math.pi))
    mc = (log_q - log_p).mean(0)
    torch.testing.assert_close(kl_normal(mean, logvar)[0], mc, atol=0.02, rtol=0.01)
    assert kl_normal(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0


def test_kl_free_bits_floor_per_dimension():
    mean = torch.tensor([[0.1, 2.0], [-0.1, 2.0]])
    logvar = torch.zeros(2, 2)
    per_dim = kl_normal(mean, logvar).mean(0)  # [0.005, 2.0]
    assert kl_loss(mean, logvar).item() == pytest.approx(per_dim.sum().item())
    assert kl_loss(mean, logvar, free_bits=0.5).item() == pytest.approx(0.5 + 2.0)
    # below the floor the dimension gets no gradient; above it the gradient is the plain KL's
    m = mean.clone().requires_grad_(True)
    kl_loss(m, logvar, free_bits=0.5).backward()
    assert torch.all(m.grad[:, 0] == 0) and torch.allclose(m.grad[:, 1], mean[:, 1] / 2)


def test_adversarial_values():
    zero = torch.zeros(4)
    assert generator_adversarial_loss(zero, "ns").item() == pytest.approx(math.log(2))
    assert discriminator_adversarial_loss(zero, zero, "ns").item() == pytest.approx(2 * math.log(2))
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([-1.0, 0.0])
    assert discriminator_adversarial_loss(real, fake, "wgan").item() == pytest.approx(-0.5 - 2.0)
    assert generator_adversarial_loss(fake, "wgan").item() == pytest.approx(0.5)
    # a confident, correct discriminator has a small NS loss; the generator then has a large one
    assert discriminator_adversarial_loss(torch.full((4,), 8.0), torch.full((4,), -8.0)).item() < 1e-3
    assert generator_adversarial_loss(torch.full((4,), -8.0)).item() == pytest.approx(8.0, abs=1e-3)
    with pytest.raises(ValueError):
        generator_adversarial_loss(zero, "hinge")


def test_gradient_penalty_of_a_linear_critic_is_exact():
    w = torch.tensor([0.6, 0.0, 1.2]).requires_grad_(True)

    def critic(x):  # D(x) = Σ_n w·x_n: gradient w per point, norm ||w||·√N whatever x̂ is
        return (x * w).sum(dim=(1, 2))

    real, fake = torch.randn(5, 4, 3), torch.randn(5, 4, 3)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(0))
    expected = (w.norm() * 2 - 1) ** 2
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)
    gp.backward()  # double backward reaches the critic's parameters
    torch.testing.assert_close(w.grad, 2 * (2 * w.norm() - 1) * 2 * w.detach() / w.norm())
    with pytest.raises(ValueError):
        gradient_penalty(critic, real, fake[:, :3])


def test_regression_terms():
    a, b = torch.zeros(2, 3, 3), torch.full((2, 3, 3), 2.0)
    assert noise_prediction_loss(a, b).item() == 4.0
    assert noise_prediction_loss(a, b, "l1").item() == 2.0
    assert velocity_loss(a, b).item() == 4.0 and velocity_loss(a, b, "l1").item() == 2.0
    with pytest.raises(ValueError):
        velocity_loss(a, b[:, :2])
    with pytest.raises(ValueError):
        noise_prediction_loss(a, b, "huber")


def test_regularizers():
    c, s = math.cos(0.3), math.sin(0.3)
    rot = torch.tensor([[[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]])
    assert orthogonality_loss(rot).item() == pytest.approx(0.0, abs=1e-12)
    assert orthogonality_loss(2 * torch.eye(3)[None]).item() == pytest.approx(27.0)  # 3·(4-1)²
    assert latent_l2(torch.tensor([[3.0, 4.0], [0.0, 0.0]])).item() == pytest.approx(12.5)


def test_chamfer_term():
    x = torch.rand(2, 50, 3, generator=torch.Generator().manual_seed(0))
    assert chamfer_loss(x, x).item() == 0.0
    grid = torch.stack(torch.meshgrid(*[torch.arange(4.0)] * 3, indexing="ij"), -1).view(1, 64, 3)
    moved = grid + torch.tensor([0.1, 0.0, 0.0])  # unit spacing: each point's nearest is its own copy
    assert chamfer_loss(grid, moved).item() == pytest.approx(2 * 0.01, rel=1e-4)
    assert chamfer_loss(grid, moved, squared=False).item() == pytest.approx(2 * 0.1, rel=1e-4)
    shifted = x + 10.0
    assert set(reconstruction_terms(x, shifted, ("chamfer",))) == {"chamfer"}
    with pytest.raises(ConfigError, match="unknown reconstruction term"):
        reconstruction_terms(x, x, ("hausdorff",))


@pytest.mark.skipif(not hasattr(ops, "emd"), reason="pcgen.ops.emd not available yet")
def test_emd_term():
    x = torch.rand(2, 32, 3, generator=torch.Generator().manual_seed(0))
    assert emd_loss(x, x, method="exact").item() == pytest.approx(0.0, abs=1e-6)
    shifted = x + torch.tensor([0.5, 0.0, 0.0])  # a pure translation: the identity matching is optimal
    assert emd_loss(x, shifted, method="exact").item() == pytest.approx(0.25, rel=1e-3)


def test_one_reconstruction_term_given_as_a_string():
    """'chamfer' was read letter by letter: unknown reconstruction term 'c'."""
    from pcgen.losses.reconstruction import reconstruction_terms

    p, t = torch.rand(2, 16, 3), torch.rand(2, 16, 3)
    assert list(reconstruction_terms(p, t, "chamfer")) == ["chamfer"]
    assert torch.equal(reconstruction_terms(p, t, "chamfer")["chamfer"],
                       reconstruction_terms(p, t, ("chamfer",))["chamfer"])


def test_kl_is_never_negative_near_zero_log_variance():
    """exp(v) - 1 - v in float32 gave values down to -1e-8 for half of these."""
    from pcgen.losses.kl import kl_normal

    g = torch.Generator().manual_seed(0)
    logvar = (torch.rand(1000, 8, generator=g) - 0.5) * 1e-3
    assert (kl_normal(torch.zeros_like(logvar), logvar) >= 0).all()
