"""Gap filling by bounded refinement of a data source: one or two forward passes, Chamfer loss.

The source is :func:`pcgen.tasks.gap_examples.gap_source` (half the mirror copy re-based onto
the gap's ground, half samples of the interpolated ground and first-return surfaces) plus a
little noise in metres; each pass predicts a
bounded offset per point from its :class:`~pcgen.nn.gap_conditioner.GapConditioner` features.
Trained with the Chamfer distance to the removed points, the metric users judge a fill by,
the network keeps what the copy gets right (the ground, the canopy height) and moves the rest
toward what the gap's edges imply. Sampling costs ``iterations`` network calls; different
source draws and noise give the spread that ``--samples K`` turns into an uncertainty.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from pcgen.nn.gap_conditioner import GapConditioner, lengths_mask
from pcgen.ops import chamfer


def clamp_to_gap(x: Tensor, half: Tensor, z_max: Tensor, z_margin: float = 1.0) -> Tensor:
    """Keep (B, N, 3) gap-frame points inside the (B, 2) half-box and under the context's (B,) top."""
    xy = torch.maximum(torch.minimum(x[..., :2], half[:, None]), -half[:, None])
    z = torch.minimum(x[..., 2:].clamp_min(-z_margin), (z_max + z_margin)[:, None, None])
    return torch.cat([xy, z], -1)


class GapOffsetHead(nn.Module):
    """Move a noised source (copy and surface samples) onto the gap's likely points.

    Args:
        conditioner: the shared :class:`GapConditioner` (extra_dim = iterations, a one-hot pass id).
        iterations: refinement passes (network calls per sample).
        max_offset: (3,) largest move per pass in metres along x, y, z.
        source_noise: standard deviation (m) of the noise added to the source.
        hidden: width of the offset MLP.
    """

    kind = "gap_offset"

    def __init__(self, conditioner: GapConditioner, iterations: int = 2,
                 max_offset: Sequence[float] = (2.0, 2.0, 6.0), source_noise: float = 0.3, hidden: int = 128):
        super().__init__()
        self.conditioner = conditioner
        self.iterations = int(iterations)
        self.register_buffer("max_offset", torch.tensor(list(max_offset), dtype=torch.float32))
        self.source_noise = float(source_noise)
        self.offset = nn.Sequential(nn.Linear(conditioner.out_dim, hidden), nn.ReLU(), nn.Linear(hidden, 3))
        nn.init.zeros_(self.offset[-1].weight)  # starts as the identity: the source itself
        nn.init.zeros_(self.offset[-1].bias)

    def refine(self, x: Tensor, batch: Mapping[str, Tensor]) -> list[Tensor]:
        """All passes' outputs for (B, N, 3) start points; the last is the fill."""
        outs = []
        n_len = batch["source_lengths"]
        for i in range(self.iterations):
            pass_id = torch.zeros(*x.shape[:2], self.iterations, device=x.device, dtype=x.dtype)
            pass_id[..., i] = 1
            f = self.conditioner(x, n_len, batch["context"], batch["context_ground"], batch["context_lengths"],
                                 batch["cond"], extra=pass_id)
            x = x + torch.tanh(self.offset(f)) * self.max_offset
            outs.append(x)
        return outs

    def _start(self, batch: Mapping[str, Tensor], generator: torch.Generator | None) -> Tensor:
        src = batch["source"]
        noise = torch.randn(src.shape, generator=generator, device=src.device, dtype=src.dtype)
        return src + self.source_noise * noise

    def loss(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Chamfer (plain metres, both directions) of every pass against the true points.

        Args:
            batch: ``source`` (B, N, 3) + ``source_lengths``, ``context`` (B, M, 3) +
                ``context_ground`` (B, M) + ``context_lengths``, ``cond`` (B, E), ``points``
                (B, T, 3) true points + ``points_lengths``.
        Returns:
            ``{"chamfer": last pass, "chamfer_passes": mean over earlier passes}``.
        """
        outs = self.refine(self._start(batch, None), batch)
        cds = [chamfer(o, batch["points"], batch["source_lengths"], batch["points_lengths"],
                       squared=False).loss / 2 for o in outs]
        terms = {"chamfer": cds[-1]}
        terms["chamfer_passes"] = torch.stack(cds[:-1]).mean() if len(cds) > 1 else cds[-1].detach()
        terms["height_w1"] = height_w1(outs[-1], batch["source_lengths"], batch["points"], batch["points_lengths"])
        return terms

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """(B, N, 3) gap-frame fill, inside the gap's box and under the context's top."""
        x = self.refine(self._start(batch, generator), batch)[-1]
        return clamp_to_gap(x, batch["half"], batch["z_max"])


def height_w1(x: Tensor, x_lengths: Tensor, truth: Tensor, truth_lengths: Tensor, levels: int = 32) -> Tensor:
    """Mean over the batch of the 1-D Wasserstein distance (m) between generated and true heights.

    Chamfer alone lets a fill trade canopy for ground: a copied crown where the truth has none
    is far from every true point, and dropping it onto the dense ground lowers its term while a
    few points still cover the true crowns. Comparing the two height distributions (at
    ``levels`` quantiles) charges for the canopy that goes missing.
    """
    q = torch.linspace(0.02, 0.98, levels, device=x.device, dtype=x.dtype)
    out = [(torch.quantile(x[b, :int(x_lengths[b]), 2], q) - torch.quantile(truth[b, :int(truth_lengths[b]), 2], q))
           .abs().mean() for b in range(len(x))]
    return torch.stack(out).mean()


def padded(arrays: Sequence, dim: int = 3) -> tuple[Tensor, Tensor]:
    """Stack ragged (n_i, dim) arrays into a zero-padded (B, max n, dim) float32 tensor and (B,) lengths."""
    lengths = torch.tensor([len(a) for a in arrays], dtype=torch.int64)
    out = torch.zeros(len(arrays), int(lengths.max()) if len(arrays) else 0, dim)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = torch.as_tensor(a, dtype=torch.float32).reshape(len(a), dim)
    return out, lengths


def example_batch(examples: Sequence, with_truth: bool = True) -> dict[str, Tensor]:
    """Collate :class:`pcgen.tasks.gap_examples.FrameExample` objects (or dicts of their arrays)."""
    get = (lambda e, k: e[k]) if isinstance(examples[0], Mapping) else (lambda e, k: getattr(e, k))
    src, src_len = padded([get(e, "source") for e in examples])
    ctx, ctx_len = padded([get(e, "context") for e in examples])
    ground, _ = padded([get(e, "context_ground") for e in examples], dim=1)
    batch = {
        "source": src, "source_lengths": src_len, "context": ctx, "context_lengths": ctx_len,
        "context_ground": ground[..., 0] * lengths_mask(ctx_len, ctx.shape[1]),
        "cond": torch.stack([torch.as_tensor(get(e, "cond"), dtype=torch.float32) for e in examples]),
        "half": torch.stack([torch.as_tensor(get(e, "half"), dtype=torch.float32) for e in examples]),
        "z_max": torch.tensor([float(get(e, "z_max")) for e in examples], dtype=torch.float32),
    }
    if with_truth:
        batch["points"], batch["points_lengths"] = padded([get(e, "truth") for e in examples])
    return batch
