"""What every gap head shares: the start points, the per-point features, the pairing, the batch.

A gap head moves points that start as :func:`pcgen.tasks.gap_examples.gap_source` (half the
mirror copy re-based onto the gap's ground, half samples of the interpolated ground and
first-return surfaces) plus a little noise in metres; it reads the gap through one
:class:`~pcgen.nn.gap_conditioner.GapConditioner`. The heads differ only in how they move the
points (:mod:`~pcgen.models.gap_offset`: bounded offsets trained on Chamfer;
:mod:`~pcgen.models.gap_flow`: flow matching; :mod:`~pcgen.models.gap_diffusion`: a DDPM on
the move, started part-way like LiDPM), so they can be compared on the same cuts. Each keeps
its points in order, so a filled point is always its source point moved and takes that
point's attributes. :mod:`~pcgen.models.gap_vae` and :mod:`~pcgen.models.gap_gan` are the offset
head with a latent code per gap and with a discriminator.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError
from pcgen.nn.gap_conditioner import GapConditioner, lengths_mask
from pcgen.ops import emd
from pcgen.options import check_range

GAP_KINDS = ("gap_offset", "gap_flow", "gap_diffusion", "gap_vae", "gap_gan")
MAX_METRES = 1000.0  # a noise or a move in metres past this is a typo: gaps are tens of metres


def clamp_to_gap(x: Tensor, half: Tensor, z_max: Tensor, z_margin: float = 1.0,
                 z_min: Tensor | None = None) -> Tensor:
    """Keep (B, N, 3) gap-frame points inside the (B, 2) half-box, under the context's (B,) top
    + ``z_margin`` and over -``z_margin`` (and over the context's (B,) lowest height when given)."""
    xy = torch.maximum(torch.minimum(x[..., :2], half[:, None]), -half[:, None])
    z = x[..., 2:].clamp_min(-z_margin)
    if z_min is not None:
        z = torch.maximum(z, z_min[:, None, None])
    z = torch.minimum(z, (z_max + z_margin)[:, None, None])
    return torch.cat([xy, z], -1)


def context_floor(batch: Mapping[str, Tensor]) -> Tensor:
    """(B,) lowest height above ground among each gap's context points (the ones the model reads)."""
    ctx = batch["context"]
    valid = lengths_mask(batch["context_lengths"], ctx.shape[1])
    return ctx[..., 2].masked_fill(~valid, float("inf")).amin(1)


# the gap's symmetries (quarter turns k about its centre, then maybe a mirror of x), in the
# order test-time averaging takes them: 2 = a half turn, 4 = both mirrors too, 8 = all
SYMMETRIES = ((0, False), (2, False), (0, True), (2, True), (1, False), (3, False), (1, True), (3, True))


def turn_xy(p: Tensor, k: int, mirror: bool) -> Tensor:
    """(..., 3) points (or moves) turned k quarter turns about the gap's centre, then x mirrored."""
    x, y = p[..., 0], p[..., 1]
    for _ in range(k % 4):
        x, y = -y, x
    if mirror:
        x = -x
    return torch.stack([x, y, p[..., 2]], -1)


def unturn_xy(p: Tensor, k: int, mirror: bool) -> Tensor:
    """The inverse of :func:`turn_xy`."""
    x, y = p[..., 0], p[..., 1]
    if mirror:
        x = -x
    for _ in range(k % 4):
        x, y = y, -x
    return torch.stack([x, y, p[..., 2]], -1)


def time_features(t: Tensor, n: int, dim: int = 8) -> Tensor:
    """(B,) times in [0, 1] → (B, n, dim) sines and cosines at octave frequencies (a per-point input)."""
    freqs = math.pi * 2.0 ** torch.arange(dim // 2, device=t.device, dtype=t.dtype)
    ang = t[:, None] * freqs
    return torch.cat([ang.sin(), ang.cos()], -1)[:, None].expand(-1, n, -1)


def masked_mean(values: Tensor, lengths: Tensor, per_cloud: bool = False) -> Tensor:
    """Mean of (B, N) per-point values over each cloud's valid rows: (B,) with ``per_cloud``,
    else also over the batch."""
    mask = lengths_mask(lengths, values.shape[1]).to(values.dtype)
    means = (values * mask).sum(1) / lengths.clamp_min(1).to(values.dtype)
    return means if per_cloud else means.mean()


def paired_truth(x: Tensor, x_len: Tensor, truth: Tensor, truth_len: Tensor,
                 generator: torch.Generator | None = None) -> Tensor:
    """(B, N, 3): for each start point, the true point an optimal matching gives it.

    The truth is first resampled to the start's count (a random subset, or every point and then
    random repeats), then matched one-to-one by the EMD assignment. Paired this way the paths
    from start to truth do not cross, so a few integration steps follow them (Tong et al. 2024,
    minibatch OT); pairing at random makes every start point aim at the gap's mean.
    """
    out = torch.zeros_like(x)
    for b in range(x.shape[0]):
        n, m = int(x_len[b]), int(truth_len[b])
        if n == 0 or m == 0:
            continue
        if m >= n:
            pick = torch.randperm(m, generator=generator)[:n]
        else:
            pick = torch.cat([torch.arange(m), torch.randint(m, (n - m,), generator=generator)])
        y = truth[b, pick.to(truth.device)]
        assign = emd(x[b:b + 1, :n].detach(), y[None], squared=True, return_assignment=True).assignment[0]
        out[b, :n] = y[assign]
    return out


def matched_distance(x: Tensor, x_lengths: Tensor, truth: Tensor, truth_lengths: Tensor,
                     points: int = 256) -> Tensor:
    """Mean over the batch of the earth mover's distance (m, per point) between a fill and its truth.

    Chamfer lets many fill points share one true point and leaves a point between two crowns
    near enough to both; a one-to-one matching charges for every point out of place. Equal-size
    random subsets (at most ``points``) of each keep the auction cheap.
    """
    out = []
    for b in range(x.shape[0]):
        n, m = int(x_lengths[b]), int(truth_lengths[b])
        k = min(n, m, int(points))
        if k == 0:
            continue
        xs = x[b, torch.randperm(n, device=x.device)[:k]]
        ys = truth[b, torch.randperm(m, device=truth.device)[:k]]
        out.append(emd(xs[None], ys[None], squared=False)[0])
    return torch.stack(out).mean() if out else x.sum() * 0


class GapHead(nn.Module):
    """Base of the gap heads: the noised start, the conditioner call, the clamp of the result.

    Args:
        conditioner: the shared :class:`GapConditioner`.
        source_noise: standard deviation (m) of the noise added to the source.
    """

    kind = "gap"

    def __init__(self, conditioner: GapConditioner, source_noise: float = 0.3, source_kind: bool = False):
        super().__init__()
        self.conditioner = conditioner
        self.source_noise = float(check_range("model.head.source_noise", source_noise, 0, MAX_METRES))
        self.source_kind = bool(source_kind)

    def start(self, batch: Mapping[str, Tensor], generator: torch.Generator | None) -> Tensor:
        """(B, N, 3) the source plus Gaussian noise of ``source_noise`` metres."""
        src = batch["source"]
        noise = torch.randn(src.shape, generator=generator, device=src.device, dtype=src.dtype)
        return src + self.source_noise * noise

    def features(self, x: Tensor, batch: Mapping[str, Tensor], extra: Tensor | None = None) -> Tensor:
        """(B, N, out_dim) conditioner features of the (B, N, 3) points ``x``.

        With ``source_kind`` every point's extra inputs end with its start's kind (1 for a
        surface sample, 0 for a copied point; :func:`pcgen.tasks.gap_examples.gap_source`).
        """
        if self.source_kind:
            if "source_kind" not in batch:
                raise ConfigError("this gap head reads each source point's kind, but the batch has none "
                                  "(a source given as points instead of drawn by gap_source)")
            kind = batch["source_kind"][..., None].to(x.dtype)
            extra = kind if extra is None else torch.cat([extra, kind], -1)
        return self.conditioner(x, batch["source_lengths"], batch["context"], batch["context_ground"],
                                batch["context_lengths"], batch["cond"], extra=extra)

    def transport(self, x: Tensor, batch: Mapping[str, Tensor], generator: torch.Generator | None) -> Tensor:
        """Move the (B, N, 3) start points to the fill (each head's own way)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, batch: Mapping[str, Tensor], generator: torch.Generator | None = None) -> Tensor:
        """(B, N, 3) gap-frame fill, inside the gap's box and within the context's heights: no
        lower than its lowest point (a fill is not under the ground around it), no higher than
        its top + 1 m."""
        x = self.transport(self.start(batch, generator), batch, generator)
        return clamp_to_gap(x, batch["half"], batch["z_max"], z_min=context_floor(batch))


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
    kinds = [e.get("source_kind") if isinstance(e, Mapping) else getattr(e, "source_kind", None) for e in examples]
    if all(k is not None for k in kinds):
        batch["source_kind"] = padded(kinds, dim=1)[0][..., 0]
    if with_truth:
        batch["points"], batch["points_lengths"] = padded([get(e, "truth") for e in examples])
    return batch
