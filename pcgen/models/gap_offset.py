"""Gap filling by bounded refinement of the source: one or two forward passes, Chamfer loss.

Each pass predicts a bounded offset per point from its conditioner features (LiNeXt's recipe).
Trained with the Chamfer distance to the removed points, the metric users judge a fill by,
the network keeps what the start gets right (the ground, the canopy height) and moves the rest
toward what the gap's edges imply. Sampling costs ``iterations`` network calls; different
source draws and noise give the spread that ``--samples K`` turns into an uncertainty. The
start, the features and the batch are :mod:`pcgen.models.gap_head`'s.

When sampling, each pass can average its move over several of the gap's symmetries (``turns``:
the quarter turns and mirrors training draws every example under, :mod:`pcgen.train.gap_data`):
the network sees the same gap turned, the moves are turned back and averaged, which cancels
what the network learned about one orientation only. The turns go through the network as one
batch, so a pass is still one call.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError
from pcgen.models.gap_head import MAX_METRES, SYMMETRIES, GapHead, height_w1, matched_distance, turn_xy, unturn_xy
from pcgen.nn.gap_conditioner import GapConditioner
from pcgen.ops import chamfer
from pcgen.options import MAX_COUNT, check_range


class GapOffsetHead(GapHead):
    """Move a noised source (copy and surface samples) onto the gap's likely points.

    Args:
        conditioner: the shared :class:`GapConditioner` (extra_dim = iterations, a one-hot pass id).
        iterations: refinement passes (network calls per sample).
        max_offset: (3,) largest move per pass in metres along x, y, z.
        source_noise: standard deviation (m) of the noise added to the source.
        hidden: width of the offset MLP.
        turns: symmetries of the gap (1, 2, 4 or 8) each pass averages its move over when
            sampling; training always uses the gap as it is.
        source_kind: every point also reads whether it started as a surface sample or a copy
            (the conditioner's extra_dim counts it).
        emd_points: subset size of the ``emd`` term (:func:`matched_distance`), computed only
            when the loss weighs it (``+loss.terms.terms.emd=0.5``).
    """

    kind = "gap_offset"

    def __init__(self, conditioner: GapConditioner, iterations: int = 2,
                 max_offset: Sequence[float] = (2.0, 2.0, 6.0), source_noise: float = 0.3, hidden: int = 128,
                 turns: int = 1, source_kind: bool = False, emd_points: int = 256):
        super().__init__(conditioner, source_noise, source_kind)
        if turns not in (1, 2, 4, 8):
            raise ConfigError(f"model.head.turns must be 1, 2, 4 or 8, got {turns!r}")
        check_range("model.head.iterations", iterations, 1, 64, integer=True)
        check_range("model.head.hidden", hidden, 1, MAX_COUNT, integer=True)
        check_range("model.head.emd_points", emd_points, 1, MAX_COUNT, integer=True)
        if isinstance(max_offset, (str, bytes)) or not isinstance(max_offset, Sequence) or len(max_offset) != 3:
            raise ConfigError(f"model.head.max_offset must be 3 numbers (m along x, y, z), got {max_offset!r}")
        for axis, value in zip("xyz", max_offset):
            check_range(f"model.head.max_offset ({axis})", value, 0, MAX_METRES, open_low=True)
        self.iterations, self.turns = int(iterations), int(turns)
        self.emd_points = int(emd_points)
        self.register_buffer("max_offset", torch.tensor(list(max_offset), dtype=torch.float32))
        self.offset = nn.Sequential(nn.Linear(conditioner.out_dim, hidden), nn.ReLU(), nn.Linear(hidden, 3))
        nn.init.zeros_(self.offset[-1].weight)  # starts as the identity: the source itself
        nn.init.zeros_(self.offset[-1].bias)

    def refine(self, x: Tensor, batch: Mapping[str, Tensor], latent: Tensor | None = None) -> list[Tensor]:
        """All passes' outputs for (B, N, 3) start points; the last is the fill.

        ``latent`` (B, L) joins every point's extra inputs after the pass id (the VAE head's code).
        """
        turns = SYMMETRIES[:1 if self.training else self.turns]
        if len(turns) > 1:  # every turn of every gap in one batch: turn-major, (T * B, ...)
            batch = {key: (torch.cat([turn_xy(batch[key], k, m) for k, m in turns]) if key == "context"
                           else torch.cat([batch[key]] * len(turns)))
                     for key in ("source_lengths", "source_kind", "context", "context_ground", "context_lengths",
                                 "cond") if key in batch}
            latent = None if latent is None else torch.cat([latent] * len(turns))
        outs = []
        for i in range(self.iterations):
            xt = torch.cat([turn_xy(x, k, m) for k, m in turns]) if len(turns) > 1 else x
            extra = torch.zeros(*xt.shape[:2], self.iterations, device=x.device, dtype=x.dtype)
            extra[..., i] = 1
            if latent is not None:
                extra = torch.cat([extra, latent[:, None].expand(-1, xt.shape[1], -1)], -1)
            move = torch.tanh(self.offset(self.features(xt, batch, extra))) * self.max_offset
            if len(turns) > 1:
                move = torch.stack([unturn_xy(m_, k, m) for m_, (k, m) in zip(move.chunk(len(turns)), turns)]).mean(0)
            x = x + move
            outs.append(x)
        return outs

    def loss(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Chamfer (plain metres, both directions) of every pass against the true points.

        Args:
            batch: ``source`` (B, N, 3) + ``source_lengths``, ``context`` (B, M, 3) +
                ``context_ground`` (B, M) + ``context_lengths``, ``cond`` (B, E), ``points``
                (B, T, 3) true points + ``points_lengths``.
        Returns:
            ``{"chamfer": last pass, "chamfer_passes": mean over earlier passes, "height_w1",
            "emd": a callable (the last pass's :func:`matched_distance`)}``.
        """
        return self.fit_terms(self.refine(self.start(batch, None), batch), batch)

    def fit_terms(self, outs: Sequence[Tensor], batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The Chamfer and height terms of :meth:`refine`'s passes against ``batch``'s true points."""
        cds = [chamfer(o, batch["points"], batch["source_lengths"], batch["points_lengths"],
                       squared=False).loss / 2 for o in outs]
        terms = {"chamfer": cds[-1]}
        terms["chamfer_passes"] = torch.stack(cds[:-1]).mean() if len(cds) > 1 else cds[-1].detach()
        terms["height_w1"] = height_w1(outs[-1], batch["source_lengths"], batch["points"], batch["points_lengths"])
        # the one-to-one matching costs about a tenth of a step: computed only when weighed
        terms["emd"] = lambda: matched_distance(outs[-1], batch["source_lengths"], batch["points"],
                                                batch["points_lengths"], self.emd_points)
        return terms

    def transport(self, x: Tensor, batch: Mapping[str, Tensor], generator: torch.Generator | None) -> Tensor:
        return self.refine(x, batch)[-1]
