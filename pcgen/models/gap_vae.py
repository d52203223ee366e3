"""Gap filling by a conditional VAE: the offset head's passes, steered by a per-gap latent code.

The offset head (:mod:`~pcgen.models.gap_offset`) is deterministic given its start, so a
Chamfer-trained fill settles on what is likely everywhere in the gap (an average crown). Here a
small code ``z`` joins every point's inputs: in training it is read from the true points and
the context (the posterior), tied to N(0, I) by a KL term; when filling it is drawn from N(0, I).
Different codes then give different plausible gaps, and ``--samples K`` spreads over them. The
start, the conditioner, the passes and the Chamfer and height terms are the offset head's.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from pcgen.losses import kl_loss
from pcgen.models.gap_offset import GapOffsetHead
from pcgen.nn.gap_conditioner import SCALE, GapConditioner, lengths_mask
from pcgen.options import MAX_COUNT, check_range


def _pointwise(in_dim: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())


def masked_max(features: Tensor, lengths: Tensor) -> Tensor:
    """(B, N, C) per-point features → (B, C) max over each cloud's valid rows (zeros if none)."""
    valid = lengths_mask(lengths, features.shape[1])[..., None]
    return torch.nan_to_num(features.masked_fill(~valid, float("-inf")).amax(1), neginf=0.0)


class GapVAEHead(GapOffsetHead):
    """Offset passes conditioned on a latent code per gap; posterior from the true points.

    Args:
        conditioner: the shared :class:`GapConditioner` (extra_dim = iterations + latent_dim).
        latent_dim: size of the code.
        encoder_width: width of the posterior's point encoders (truth and context, max-pooled).
        free_bits: KL floor per code dimension in nats (:func:`pcgen.losses.kl_loss`): below it
            the code costs nothing, so it is not squeezed to the prior before the passes use it.
        iterations, max_offset, source_noise, hidden, turns: as in :class:`GapOffsetHead`.
    """

    kind = "gap_vae"

    def __init__(self, conditioner: GapConditioner, latent_dim: int = 8, encoder_width: int = 64,
                 iterations: int = 2, max_offset: Sequence[float] = (2.0, 2.0, 6.0),
                 source_noise: float = 0.3, hidden: int = 128, free_bits: float = 0.0, turns: int = 1):
        super().__init__(conditioner, iterations, max_offset, source_noise, hidden, turns)
        check_range("model.head.latent_dim", latent_dim, 1, MAX_COUNT, integer=True)
        check_range("model.head.encoder_width", encoder_width, 1, MAX_COUNT, integer=True)
        check_range("model.head.free_bits", free_bits, 0, 1e6)
        self.latent_dim, self.free_bits = int(latent_dim), float(free_bits)
        self.truth_encoder = _pointwise(3, encoder_width)
        self.context_encoder = _pointwise(4, encoder_width)  # xyz and the ground flag
        self.posterior = nn.Sequential(nn.Linear(2 * encoder_width + conditioner.cond_dim, encoder_width), nn.ReLU(),
                                       nn.Linear(encoder_width, 2 * self.latent_dim))

    def encode(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(B, L) mean and log-variance of q(z | true points, context, gap descriptors)."""
        truth = masked_max(self.truth_encoder(batch["points"] / SCALE), batch["points_lengths"])
        ctx_in = torch.cat([batch["context"] / SCALE, batch["context_ground"][..., None]], -1)
        ctx = masked_max(self.context_encoder(ctx_in), batch["context_lengths"])
        mean, logvar = self.posterior(torch.cat([truth, ctx, batch["cond"]], -1)).chunk(2, -1)
        return mean, logvar.clamp(-8.0, 4.0)

    def loss(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The offset head's terms with ``z`` from the posterior, plus ``kl`` (nats, summed over the code)."""
        mean, logvar = self.encode(batch)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)
        terms = self.fit_terms(self.refine(self.start(batch, None), batch, z), batch)
        terms["kl"] = kl_loss(mean, logvar, self.free_bits)
        return terms

    def transport(self, x: Tensor, batch: Mapping[str, Tensor], generator: torch.Generator | None) -> Tensor:
        z = torch.randn(x.shape[0], self.latent_dim, generator=generator, device=x.device, dtype=x.dtype)
        return self.refine(x, batch, z)[-1]
