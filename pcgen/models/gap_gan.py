"""Gap filling by the offset head trained against a local discriminator as well as Chamfer.

Chamfer rewards a fill for being near the true points on average, which lets it blur: between
two likely crown positions it pays to put points in between. A discriminator that scores each
point against the context around it (its own :class:`~pcgen.nn.gap_conditioner.GapConditioner`,
so it sees what a real point near that edge looks like) charges for points no real gap would
have. The generator is :class:`~pcgen.models.gap_offset.GapOffsetHead` unchanged (same start,
passes and Chamfer and height terms); the two players are trained by
:class:`pcgen.train.module.GANModule` with the non-saturating loss of :mod:`pcgen.losses`.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from pcgen.losses import discriminator_adversarial_loss, generator_adversarial_loss
from pcgen.models.gap_head import clamp_to_gap, masked_mean
from pcgen.models.gap_offset import GapOffsetHead
from pcgen.nn.gap_conditioner import GapConditioner


class GapDiscriminator(nn.Module):
    """Mean over a gap's points of a per-point logit read from the gap's context.

    Args:
        conditioner: a :class:`GapConditioner` of its own (extra_dim 0), not the generator's.
    """

    def __init__(self, conditioner: GapConditioner):
        super().__init__()
        self.conditioner = conditioner
        self.score = nn.Linear(conditioner.out_dim, 1)

    def forward(self, points: Tensor, lengths: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        """(B, N, 3) gap-frame points with (B,) counts → (B,) logits (high: looks real)."""
        feat = self.conditioner(points, lengths, batch["context"], batch["context_ground"],
                                batch["context_lengths"], batch["cond"])
        return masked_mean(self.score(feat)[..., 0], lengths, per_cloud=True)


class GapGANHead(GapOffsetHead):
    """:class:`GapOffsetHead` as a generator, plus a :class:`GapDiscriminator`.

    Args:
        conditioner: the generator's :class:`GapConditioner` (extra_dim = iterations).
        discriminator: the :class:`GapDiscriminator`.
        iterations, max_offset, source_noise, hidden, turns: as in :class:`GapOffsetHead`.
    """

    kind = "gap_gan"

    def __init__(self, conditioner: GapConditioner, discriminator: GapDiscriminator, iterations: int = 2,
                 max_offset: Sequence[float] = (2.0, 2.0, 6.0), source_noise: float = 0.3, hidden: int = 128,
                 turns: int = 1):
        super().__init__(conditioner, iterations, max_offset, source_noise, hidden, turns)
        self.discriminator = discriminator

    def generator_parameters(self) -> Iterator[nn.Parameter]:
        return (p for name, p in self.named_parameters() if not name.startswith("discriminator."))

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        return self.discriminator.parameters()

    def _fill(self, batch: Mapping[str, Tensor]) -> list[Tensor]:
        return self.refine(self.start(batch, None), batch)

    def discriminator_loss(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """``{"disc_adv"}``: the true points against a fill made without gradients."""
        with torch.no_grad():
            fake = clamp_to_gap(self._fill(batch)[-1], batch["half"], batch["z_max"])
        real_scores = self.discriminator(batch["points"], batch["points_lengths"], batch)
        fake_scores = self.discriminator(fake, batch["source_lengths"], batch)
        return {"disc_adv": discriminator_adversarial_loss(real_scores, fake_scores, "ns")}

    def generator_loss(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The offset head's terms plus ``gen_adv``, the discriminator's verdict on the last pass."""
        outs = self._fill(batch)
        terms = self.fit_terms(outs, batch)
        terms["gen_adv"] = generator_adversarial_loss(self.discriminator(outs[-1], batch["source_lengths"], batch), "ns")
        return terms

    def loss(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.generator_loss(batch)
