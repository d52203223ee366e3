"""Flow matching (rectified flow) on straight noise→data paths, with Euler and Heun samplers.

Convention: t ∈ [0, 1], x_t = (1 - t)·x₀ + t·x₁ with x₀ ~ N(0, I) noise at t = 0 and x₁ the
data at t = 1; the target velocity is dx_t/dt = x₁ - x₀, and sampling integrates the learned
velocity from t = 0 to t = 1.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError
from pcgen.losses import velocity_loss
from pcgen.losses.denoising import ErrorNorm
from pcgen.models._util import module_device, regularization
from pcgen.models.conditioning import ContextEncoder, finish_samples, prepare_batch, prepare_sampling

Solver = Literal["euler", "heun"]
TimeSampling = Literal["uniform", "logit_normal"]


def interpolate(x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
    """The straight path point x_t = (1 - t)·x₀ + t·x₁.

    Args:
        x0: (B, ...) noise.
        x1: (B, ...) data.
        t: (B,) times in [0, 1].

    Returns:
        (B, ...).
    """
    t = t.to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * x1


def target_velocity(x0: Tensor, x1: Tensor) -> Tensor:
    """dx_t/dt along the straight path: x₁ - x₀ (constant in t)."""
    return x1 - x0


class FlowMatchingHead(nn.Module):
    """Conditional flow matching (Lipman et al. 2023) / rectified flow (Liu et al. 2023).

    Terms of ``loss``: "velocity" (‖v_θ(x_t, t, c) - (x₁ - x₀)‖, L2 or L1) and "regularization"
    when the backbone has one.

    Args:
        net: ``forward(x_t (B, N, 3), t (B,) float, cond | None) -> v (B, N, 3)``, e.g.
            :class:`pcgen.models.PointDenoiser`; it receives ``time_scale · t``.
        norm: "l2" or "l1".
        time_sampling: "uniform" t ~ U(0, 1), or "logit_normal" (Esser et al. 2024), which
            spends more training on the middle of the path where the velocity is hardest.
        time_scale: multiplier on t before the network's sinusoidal embedding (1000 puts
            [0, 1] on the same frequencies as DDPM step indices).
        context_encoder: makes the head conditional (gap filling).
        solver, steps: defaults for :meth:`sample` (Heun, 20 steps).
    """

    def __init__(self, net: nn.Module, norm: ErrorNorm = "l2", time_sampling: TimeSampling = "uniform",
                 time_scale: float = 1000.0, context_encoder: ContextEncoder | None = None,
                 solver: Solver = "heun", steps: int = 20):
        super().__init__()
        if norm not in ("l2", "l1"):
            raise ConfigError(f"norm must be 'l2' or 'l1', got {norm!r}")
        if time_sampling not in ("uniform", "logit_normal"):
            raise ConfigError(f"time_sampling must be 'uniform' or 'logit_normal', got {time_sampling!r}")
        self._check_solver(solver, steps)
        self.net, self.context_encoder = net, context_encoder
        self.norm, self.time_sampling, self.time_scale = norm, time_sampling, float(time_scale)
        self.solver, self.steps = solver, steps

    @staticmethod
    def _check_solver(solver: str, steps: int) -> None:
        if solver not in ("euler", "heun"):
            raise ConfigError(f"solver must be 'euler' or 'heun', got {solver!r}")
        if steps < 1:
            raise ConfigError(f"steps must be >= 1, got {steps}")

    def velocity(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """v_θ(x, t, c) for (B, N, 3) points at times t (B,) in [0, 1]."""
        return self.net(x, t * self.time_scale, cond)

    def _sample_time(self, batch_size: int, device) -> Tensor:
        if self.time_sampling == "uniform":
            return torch.rand(batch_size, device=device)
        return torch.sigmoid(torch.randn(batch_size, device=device))

    def loss(self, batch: dict) -> dict[str, Tensor]:
        """Named, unweighted terms on one batch.

        Args:
            batch: {"points": (B, N, 3)} (+ "context", "gap_box" when conditional).

        Returns:
            {"velocity": (), ["regularization": ()]}.
        """
        x1, cond = prepare_batch(self.context_encoder, batch)
        x0 = torch.randn_like(x1)
        t = self._sample_time(x1.shape[0], x1.device)
        v = self.velocity(interpolate(x0, x1, t), t, cond)
        terms = {"velocity": velocity_loss(v, target_velocity(x0, x1), self.norm)}
        reg = regularization(self.net, getattr(self.context_encoder, "encoder", None))
        if reg is not None:
            terms["regularization"] = reg
        return terms

    def integrate(self, x: Tensor, cond: Tensor | None, solver: Solver, steps: int) -> Tensor:
        """Integrate dx/dt = v_θ(x, t, c) from t = 0 to 1 with ``steps`` uniform steps.

        Args:
            x: (B, N, 3) state at t = 0.
            cond: (B, C) or None.
            solver: "euler" (1 evaluation per step) or "heun" (2, second-order accurate).
            steps: step count.

        Returns:
            (B, N, 3) state at t = 1.
        """
        self._check_solver(solver, steps)
        dt = 1.0 / steps
        for i in range(steps):
            t = torch.full((x.shape[0],), i * dt, device=x.device, dtype=x.dtype)
            v = self.velocity(x, t, cond)
            if solver == "euler":
                x = x + dt * v
            else:
                x_pred = x + dt * v
                v_next = self.velocity(x_pred, t + dt, cond)
                x = x + 0.5 * dt * (v + v_next)
        return x

    @torch.no_grad()
    def sample(self, num_samples: int, num_points: int, context: Tensor | None = None,
               gap_box: Tensor | None = None, generator: torch.Generator | None = None,
               solver: Solver | None = None, steps: int | None = None) -> Tensor:
        """Transport x₀ ~ N(0, I) to data along the learned flow.

        Args:
            num_samples: B.
            num_points: N per cloud.
            context: (B, M, 3), gap_box: (B, 4) for conditional heads.
            generator: RNG for x₀.
            solver, steps: override the head's defaults.

        Returns:
            (B, N, 3); conditional samples lie inside the gap box in xy.
        """
        cond = prepare_sampling(self.context_encoder, num_samples, context, gap_box)
        x = torch.randn(num_samples, num_points, 3, generator=generator, device=module_device(self))
        x = self.integrate(x, cond, solver or self.solver, steps or self.steps)
        return finish_samples(self.context_encoder, x, gap_box)


__all__ = ["FlowMatchingHead", "interpolate", "target_velocity"]
