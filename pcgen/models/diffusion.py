"""Point-diffusion: DDPM forward process, ε-prediction training, ancestral DDPM and DDIM samplers."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError
from pcgen.losses import noise_prediction_loss, reconstruction_terms
from pcgen.losses.denoising import ErrorNorm
from pcgen.losses.reconstruction import EMDMethod, check_kinds
from pcgen.models._util import module_device, regularization
from pcgen.models.conditioning import ContextEncoder, finish_samples, prepare_batch, prepare_sampling
from pcgen.models.noise_schedule import NoiseSchedule

Sampler = Literal["ddpm", "ddim"]


class DiffusionHead(nn.Module):
    """Denoising diffusion over point coordinates (Ho et al. 2020; Luo & Hu 2021 for points).

    Terms of ``loss``: "noise" (‖ε - ε_θ(x_t, t, c)‖, L2 or L1, t uniform in [0, T)), any of
    "chamfer"/"emd" computed on the implied x̂₀ for steps t < ``x0_max_t`` (so near-pure-noise
    steps, whose x̂₀ is ill-conditioned, do not dominate), and "regularization" when the
    backbone has one.

    Args:
        net: ``forward(x_t (B, N, 3), t (B,) float, cond (B, C) | None) -> ε (B, N, 3)``,
            e.g. :class:`pcgen.models.PointDenoiser`.
        schedule: the :class:`NoiseSchedule` (β's, T).
        norm: "l2" or "l1" noise-prediction loss.
        x0_terms: reconstruction terms on x̂₀, any of "chamfer", "emd".
        x0_max_t: only steps below this enter the x̂₀ terms (default T // 4).
        context_encoder: makes the head conditional (gap filling).
        sampler, steps, eta: defaults for :meth:`sample` ("ddim" with 50 steps and η = 0:
            deterministic and ~20× cheaper than 1000 ancestral steps).
        emd_method: ``pcgen.ops.emd`` solver.
    """

    def __init__(self, net: nn.Module, schedule: NoiseSchedule, norm: ErrorNorm = "l2",
                 x0_terms: tuple[str, ...] = (), x0_max_t: int | None = None,
                 context_encoder: ContextEncoder | None = None, sampler: Sampler = "ddim",
                 steps: int | None = 50, eta: float = 0.0, emd_method: EMDMethod = "auction"):
        super().__init__()
        if norm not in ("l2", "l1"):
            raise ConfigError(f"norm must be 'l2' or 'l1', got {norm!r}")
        self.net, self.schedule, self.context_encoder = net, schedule, context_encoder
        self.norm, self.x0_terms, self.emd_method = norm, check_kinds(x0_terms), emd_method
        self.x0_max_t = schedule.num_steps // 4 if x0_max_t is None else int(x0_max_t)
        self._check_sampler(sampler, steps, eta)
        self.sampler, self.steps, self.eta = sampler, steps, eta

    def _check_sampler(self, sampler: str, steps: int | None, eta: float) -> None:
        if sampler not in ("ddpm", "ddim"):
            raise ConfigError(f"sampler must be 'ddpm' or 'ddim', got {sampler!r}")
        if steps is not None and not 1 <= steps <= self.schedule.num_steps:
            raise ConfigError(f"steps must be in [1, {self.schedule.num_steps}], got {steps}")
        if eta < 0:
            raise ConfigError(f"eta must be >= 0, got {eta}")

    def loss(self, batch: dict) -> dict[str, Tensor]:
        """Named, unweighted terms on one batch.

        Args:
            batch: {"points": (B, N, 3)} (+ "context", "gap_box" when conditional).

        Returns:
            {"noise": (), ["chamfer"/"emd": ()], ["regularization": ()]}.
        """
        x0, cond = prepare_batch(self.context_encoder, batch)
        t = torch.randint(0, self.schedule.num_steps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.schedule.add_noise(x0, noise, t)
        eps = self.net(x_t, t.float(), cond)
        terms = {"noise": noise_prediction_loss(eps, noise, self.norm)}
        if self.x0_terms:
            keep = t < self.x0_max_t
            if bool(keep.any()):
                x0_hat = self.schedule.predict_x0(x_t[keep], eps[keep], t[keep])
                terms.update(reconstruction_terms(x0_hat, x0[keep], self.x0_terms, self.emd_method))
            else:  # keep the term set stable across steps for logging and WeightedLoss
                terms.update({k: eps.sum() * 0.0 for k in self.x0_terms})
        reg = regularization(self.net, getattr(self.context_encoder, "encoder", None))
        if reg is not None:
            terms["regularization"] = reg
        return terms

    @torch.no_grad()
    def sample(self, num_samples: int, num_points: int, context: Tensor | None = None,
               gap_box: Tensor | None = None, generator: torch.Generator | None = None,
               sampler: Sampler | None = None, steps: int | None = None, eta: float | None = None) -> Tensor:
        """Run the reverse process from x_T ~ N(0, I).

        Args:
            num_samples: B.
            num_points: N per cloud.
            context: (B, M, 3), gap_box: (B, 4) for conditional heads.
            generator: RNG for x_T and the ancestral noise (on the head's device).
            sampler: "ddpm" (ancestral, posterior variance β̃_t) or "ddim"; default: the head's.
            steps: number of denoising steps (any count up to T; DDPM default T).
            eta: DDIM stochasticity (0: deterministic, 1: the ancestral variance).

        Returns:
            (B, N, 3); conditional samples lie inside the gap box in xy.
        """
        sampler = sampler or self.sampler
        if steps is None:
            steps = self.steps if sampler == self.sampler and self.steps else self.schedule.num_steps
        eta = self.eta if eta is None else eta
        self._check_sampler(sampler, steps, eta)
        cond = prepare_sampling(self.context_encoder, num_samples, context, gap_box)
        device = module_device(self)
        x = torch.randn(num_samples, num_points, 3, generator=generator, device=device)
        scheduler = self.schedule.ddpm() if sampler == "ddpm" else self.schedule.ddim()
        scheduler.set_timesteps(steps, device=device)
        extra = {"eta": eta} if sampler == "ddim" else {}
        for t in scheduler.timesteps:
            eps = self.net(x, t.float().expand(num_samples).to(device), cond)
            x = scheduler.step(eps, t, x, generator=generator, **extra).prev_sample
        return finish_samples(self.context_encoder, x, gap_box)


__all__ = ["DiffusionHead"]
