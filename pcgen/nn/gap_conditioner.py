"""Local conditioning for gap models: each point sees the context points near it.

A gap's content is predictable only near its edges (a crown cut in half, the slope of the
ground); one global context vector throws that away. :class:`GapConditioner` gives every query
point (a source point being moved, or a noisy point being denoised) features gathered from its
k nearest context points at two layers, plus an EdgeConv over its nearest fellow query points,
FiLM-modulated by a few gap descriptors. With ``dilation`` d > 1 the second layer reads every d-th
of its 2·d·k nearest context points, a view d times as wide for the same cost. With ``k_encode`` > 0 the context points are first
encoded by an edge layer over their own neighbours (as LiDiff encodes its partial scan), so the
second layer reads what surrounds each context point (a crown's top, a gap in the canopy), not
only where it is. Every gap head (offset, flow, diffusion, VAE, GAN) uses
it, so they differ only in how they move points (the GAN head's discriminator reads the gap
through one too).

Coordinates are in the gap frame (metres, z above ground) and scaled by one fixed length
(:data:`SCALE`) inside, so one network serves every site and gap size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcgen.ops import knn
from pcgen.options import MAX_COUNT, check_range

SCALE = 10.0  # metres per network unit


def _mlp(channels: list[int], last_act: bool = True) -> nn.Sequential:
    """Linear layers with ReLU between them (and after the last unless ``last_act`` is False)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(nn.Linear(a, b))
        if last_act or i < len(channels) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _gather(values: Tensor, idx: Tensor) -> Tensor:
    """values (B, M, C), idx (B, N, k) with -1 for missing → (B, N, k, C) (missing rows read index 0)."""
    b, n, k = idx.shape
    flat = idx.clamp_min(0).reshape(b, n * k, 1).expand(-1, -1, values.shape[-1])
    return values.gather(1, flat).reshape(b, n, k, values.shape[-1])


def _masked_max(x: Tensor, valid: Tensor) -> Tensor:
    """x (B, N, k, C), valid (B, N, k) → (B, N, C); zeros where nothing is valid."""
    x = x.masked_fill(~valid[..., None], float("-inf")).amax(2)
    return torch.nan_to_num(x, neginf=0.0)


class _NeighbourConv(nn.Module):
    """max_k MLP(W_p · (p_j − p_i) + W_f · f_j + W_q · q_i): one edge layer over k neighbours.

    The first linear map is split across the edge's ends and applied per point before the
    gather (as in PointNet++ and DGCNN implementations), so the (B, N, k, ·) tensors carry one
    hidden width only; that is what makes two such layers affordable on a CPU.
    """

    def __init__(self, feat_dim: int, query_dim: int, width: int):
        super().__init__()
        self.pos = nn.Linear(3, width, bias=False)
        self.feat = nn.Linear(feat_dim, width) if feat_dim else None
        self.query = nn.Linear(query_dim, width, bias=not feat_dim) if query_dim else None
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU())

    def forward(self, x: Tensor, nb_pos: Tensor, nb_feat: Tensor | None, idx: Tensor,
                query: Tensor | None) -> Tensor:
        """x (B, N, 3) queries; nb_pos (B, M, 3) / nb_feat (B, M, F) the searched set; idx (B, N, k)."""
        side = self.pos(nb_pos / SCALE)
        if self.feat is not None:
            side = side + self.feat(nb_feat)
        centre = self.pos(x / SCALE)
        if self.query is not None:
            centre = centre - self.query(query)
        pre = _gather(side, idx) - centre[:, :, None]
        return _masked_max(self.mlp(pre), idx >= 0)


class GapConditioner(nn.Module):
    """Per-point features of query points from nearby context points and from each other.

    Args:
        width: feature channels.
        cond_dim: size of the per-gap descriptor vector.
        extra_dim: per-query-point extra inputs (e.g. a time embedding), 0 for none.
        k_context: context neighbours per query point (first layer; the second uses twice as many).
        k_self: query neighbours in the EdgeConv.
        k_encode: context neighbours of the context encoder read by the second layer (0: none).
        dilation: the second layer reads every ``dilation``-th of its nearest context points.
    """

    def __init__(self, width: int = 64, cond_dim: int = 6, extra_dim: int = 0,
                 k_context: int = 12, k_self: int = 8, k_encode: int = 0,
                 dilation: int = 1):
        super().__init__()
        for key, value, low in (("width", width, 1), ("cond_dim", cond_dim, 0), ("extra_dim", extra_dim, 0),
                                ("k_context", k_context, 1), ("k_self", k_self, 1), ("k_encode", k_encode, 0),
                                ("dilation", dilation, 1)):
            check_range(f"model.head.conditioner.{key}", value, low, MAX_COUNT, integer=True)
        self.width, self.cond_dim, self.k_context, self.k_self = width, cond_dim, k_context, k_self
        self.k_encode = int(k_encode)
        self.dilation = int(dilation)
        self.out_dim = 2 * width
        self.embed = _mlp([3 + extra_dim, width, width])
        self.film = nn.Linear(cond_dim, 2 * width)
        self.cross1 = _NeighbourConv(1, 0, width)
        self.edge = _NeighbourConv(width, width, width)
        self.encode = _NeighbourConv(1, 0, width) if self.k_encode > 0 else None
        self.cross2 = _NeighbourConv(width if self.k_encode > 0 else 1, width, width)
        self.out = _mlp([4 * width, 2 * width, 2 * width])

    def forward(self, x: Tensor, x_len: Tensor, ctx: Tensor, ctx_ground: Tensor, ctx_len: Tensor,
                cond: Tensor, extra: Tensor | None = None) -> Tensor:
        """Features of the query points.

        Args:
            x: (B, N, 3) query points, gap frame; x_len: (B,) valid counts.
            ctx: (B, M, 3) context points; ctx_ground: (B, M) 0/1 ground flags; ctx_len: (B,).
            cond: (B, cond_dim) gap descriptors.
            extra: (B, N, extra_dim) per-point extra inputs, or None.
        Returns:
            (B, N, out_dim) features (padded rows are meaningless).
        """
        inp = x / SCALE if extra is None else torch.cat([x / SCALE, extra], -1)
        scale, shift = self.film(cond)[:, None].chunk(2, -1)
        h0 = self.embed(inp) * (1 + scale) + shift
        g = ctx_ground[..., None]
        with torch.no_grad():
            xd = x.detach()
            cidx = knn(xd, ctx, 2 * self.k_context * self.dilation, x_len, ctx_len).idx
            sidx = knn(xd, xd, min(self.k_self, x.shape[1]), x_len, x_len).idx
            if self.encode is not None:
                eidx = knn(ctx, ctx, min(self.k_encode, ctx.shape[1]), ctx_len, ctx_len).idx
        c1 = self.cross1(x, ctx, g, cidx[..., : self.k_context], None)
        hq = h0 + c1
        e = self.edge(x, x, hq, sidx, hq)
        ctx_feat = g if self.encode is None else self.encode(ctx, ctx, g, eidx, None)
        c2 = self.cross2(x, ctx, ctx_feat, cidx[..., :: self.dilation], e)
        return self.out(torch.cat([h0, c1, e, c2], -1))


def lengths_mask(lengths: Tensor, n: int) -> Tensor:
    """(B,) lengths → (B, n) bool mask of valid rows."""
    return torch.arange(n, device=lengths.device)[None] < lengths[:, None]
