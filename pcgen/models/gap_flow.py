"""Gap filling by flow matching from the data-dependent source (few Euler steps).

Unlike :class:`pcgen.models.FlowMatchingHead`, which flows standard Gaussian noise in a
normalized frame, this head flows the noised source (copy and surface samples, in metres) to
the removed points, each start point paired with one true point by an optimal matching
(:func:`~pcgen.models.gap_head.paired_truth`). Paths from a start that already looks like the
answer are short and nearly straight, so a handful of steps suffice; the velocity is read
from the shared :class:`~pcgen.nn.gap_conditioner.GapConditioner` plus a time embedding.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError
from pcgen.models.gap_head import GapHead, masked_mean, paired_truth, time_features
from pcgen.nn.gap_conditioner import GapConditioner


class GapFlowHead(GapHead):
    """Rectified flow from the noised source to the gap's points, paired by optimal matching.

    Args:
        conditioner: the shared :class:`GapConditioner` (extra_dim = ``time_dim``).
        steps: Euler steps when sampling (network calls per sample).
        velocity_scale: (3,) metres per network output unit along x, y, z.
        source_noise: standard deviation (m) of the noise added to the source.
        hidden: width of the velocity MLP.
        time_dim: size of the time embedding.
    """

    kind = "gap_flow"

    def __init__(self, conditioner: GapConditioner, steps: int = 4,
                 velocity_scale: Sequence[float] = (2.0, 2.0, 4.0), source_noise: float = 0.3,
                 hidden: int = 128, time_dim: int = 8):
        super().__init__(conditioner, source_noise)
        if int(steps) < 1:
            raise ConfigError(f"gap flow steps must be >= 1, got {steps}")
        self.steps, self.time_dim = int(steps), int(time_dim)
        self.register_buffer("velocity_scale", torch.tensor(list(velocity_scale), dtype=torch.float32))
        self.velocity = nn.Sequential(nn.Linear(conditioner.out_dim, hidden), nn.ReLU(), nn.Linear(hidden, 3))
        nn.init.zeros_(self.velocity[-1].weight)  # starts still: the fill is the source itself
        nn.init.zeros_(self.velocity[-1].bias)

    def _velocity(self, x: Tensor, t: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, N, 3) predicted velocity in network units (metres / ``velocity_scale``)."""
        return self.velocity(self.features(x, batch, time_features(t, x.shape[1], self.time_dim)))

    def loss(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"velocity": mean squared error of the velocity, in velocity_scale units}``."""
        x0 = self.start(batch, None)
        x1 = paired_truth(x0, batch["source_lengths"], batch["points"], batch["points_lengths"])
        t = torch.rand(x0.shape[0], device=x0.device, dtype=x0.dtype)
        xt = x0 + t[:, None, None] * (x1 - x0)
        err = (self._velocity(xt, t, batch) - (x1 - x0) / self.velocity_scale).square().sum(-1)
        return {"velocity": masked_mean(err, batch["source_lengths"])}

    def transport(self, x: Tensor, batch: Mapping[str, Tensor], generator: torch.Generator | None) -> Tensor:
        dt = 1.0 / self.steps
        for i in range(self.steps):
            t = torch.full((x.shape[0],), i * dt, device=x.device, dtype=x.dtype)
            x = x + dt * self._velocity(x, t, batch) * self.velocity_scale
        return x
