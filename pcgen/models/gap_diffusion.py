"""Gap filling by a DDPM on each point's move, started part-way from the source (LiDPM).

The diffused quantity is the residual r = (paired true point − start point) / ``residual_scale``,
so coordinates stay in metres and the noise is a local offset per point (LiDiff). Sampling does
what LiDPM found enough: begin at an intermediate step ``start_step`` from the noised source
(residual 0 plus noise) instead of pure noise, then take a few DDIM steps (diffusers' scheduler
through :class:`~pcgen.models.noise_schedule.NoiseSchedule`). Training draws steps below
``start_step`` only, since sampling never visits the others. The ε-prediction reads the shared
:class:`~pcgen.nn.gap_conditioner.GapConditioner` at the point's current position.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError
from pcgen.models.gap_head import GapHead, masked_mean, paired_truth, time_features
from pcgen.models.noise_schedule import NoiseSchedule
from pcgen.nn.gap_conditioner import GapConditioner


class GapDiffusionHead(GapHead):
    """ε-prediction DDPM over per-point moves from the noised source, sampled with DDIM from ``start_step``.

    Args:
        conditioner: the shared :class:`GapConditioner` (extra_dim = ``time_dim``).
        schedule: the :class:`NoiseSchedule` (its ``clip_sample`` bounds the residual, in scale units).
        start_step: the timestep sampling starts from (LiDPM: about 0.3 T).
        steps: DDIM steps from ``start_step`` down to 0 (network calls per sample).
        residual_scale: (3,) metres per residual unit along x, y, z.
        source_noise: standard deviation (m) of the noise added to the source.
        hidden: width of the ε MLP.
        time_dim: size of the time embedding.
    """

    kind = "gap_diffusion"

    def __init__(self, conditioner: GapConditioner, schedule: NoiseSchedule, start_step: int = 300,
                 steps: int = 6, residual_scale: Sequence[float] = (1.5, 1.5, 3.0), source_noise: float = 0.3,
                 hidden: int = 128, time_dim: int = 8):
        super().__init__(conditioner, source_noise)
        if not 0 < int(start_step) < schedule.num_steps:
            raise ConfigError(f"start_step must lie in (0, {schedule.num_steps}), got {start_step}")
        if not 1 <= int(steps) <= int(start_step):
            raise ConfigError(f"steps must lie in [1, start_step], got {steps}")
        self.schedule, self.start_step, self.steps, self.time_dim = schedule, int(start_step), int(steps), int(time_dim)
        self.register_buffer("residual_scale", torch.tensor(list(residual_scale), dtype=torch.float32))
        self.eps = nn.Sequential(nn.Linear(conditioner.out_dim, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def _eps(self, anchor: Tensor, r: Tensor, t: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """ε̂ for residuals ``r`` (B, N, 3) at integer steps ``t`` (B,), read at anchor + r · scale."""
        x = anchor + r * self.residual_scale
        tf = time_features(t.to(x.dtype) / self.schedule.num_steps, x.shape[1], self.time_dim)
        return self.eps(self.features(x, batch, tf))

    def loss(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"noise": mean squared ε error}`` at steps drawn uniformly below ``start_step``."""
        x0 = self.start(batch, None)
        r1 = (paired_truth(x0, batch["source_lengths"], batch["points"], batch["points_lengths"]) - x0) \
            / self.residual_scale
        t = torch.randint(self.start_step, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(r1)
        rt = self.schedule.add_noise(r1, noise, t)
        err = (self._eps(x0, rt, t, batch) - noise).square().sum(-1)
        return {"noise": masked_mean(err, batch["source_lengths"])}

    def scheduler(self):
        """A DDIM sampler whose timesteps below ``start_step`` are exactly ``steps`` of them."""
        scheduler = self.schedule.ddim()
        scheduler.set_timesteps(max(1, round(self.schedule.num_steps * self.steps / self.start_step)))
        return scheduler

    def timesteps(self, scheduler) -> list[int]:
        """The timesteps sampling visits: the scheduler's below ``start_step``, highest first."""
        return [int(t) for t in scheduler.timesteps if int(t) < self.start_step]

    def transport(self, x: Tensor, batch: Mapping[str, Tensor], generator: torch.Generator | None) -> Tensor:
        scheduler = self.scheduler()
        steps = self.timesteps(scheduler)
        abar = self.schedule.alphas_cumprod[steps[0]].to(x.dtype)
        r = (1 - abar).sqrt() * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        for t in steps:
            tt = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
            r = scheduler.step(self._eps(x, r, tt, batch), t, r, eta=0.0).prev_sample
        return x + r * self.residual_scale
