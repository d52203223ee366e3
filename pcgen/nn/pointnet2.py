"""PointNet++ (Qi et al., 2017): hierarchical set abstraction plus feature propagation.

Set abstraction picks centroids by farthest point sampling, groups the nearest points inside a
ball around each (one ball per scale: single- or multi-scale grouping) and summarizes each group
with torch-geometric's ``PointNetConv``. Feature propagation interpolates features back to the
finer level by inverse squared distance over the 3 nearest coarse points, so the encoder also
yields per-point features. Graphs come from :mod:`pcgen.ops` through :mod:`pcgen.nn.graph`,
never torch-cluster.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import PointNetConv

from pcgen.nn.batching import Packing, check_points
from pcgen.nn.blocks import (Act, Conditioning, ConditioningMode, EncoderOutput, Norm, global_pool,
                             shared_mlp)
from pcgen.nn.graph import neighbour_edges
from pcgen.ops import ball_query, farthest_point_sample, knn


def centroid_counts(lengths: Tensor, num_centroids: int | float) -> Tensor:
    """Centroids per cloud: ``min(num_centroids, length)`` for an int, ``ceil(ratio * length)`` for a
    float in (0, 1]. Returns ``(B,)`` int64, each at least 1."""
    if isinstance(num_centroids, float):
        if not 0 < num_centroids <= 1:
            raise ValueError(f"a float num_centroids is a ratio in (0, 1], got {num_centroids}")
        counts = torch.ceil(lengths.to(torch.float64) * num_centroids).to(torch.long)
    else:
        counts = lengths.clamp(max=int(num_centroids))
    return counts.clamp(min=1)


@torch.no_grad()
def sample_centroids(pos: Tensor, lengths: Tensor, n: int) -> Tensor:
    """Farthest point sampling that starts at each cloud's point farthest from its mean.

    ``pcgen.ops.farthest_point_sample`` starts at index 0, which would make the centroids (and
    so the encoder) depend on point order; starting from an order-free point keeps the encoder a
    set function. The start is swapped to index 0, sampled, and indices mapped back.

    Args: pos ``(B, N, 3)`` zero-padded, lengths ``(B,)``, n samples. Returns ``(B, n)``, -1 padded.
    """
    B, N, _ = pos.shape
    valid = torch.arange(N, device=pos.device)[None] < lengths[:, None]
    mean = (pos * valid[..., None]).sum(1) / lengths[:, None].to(pos.dtype)
    dist = ((pos - mean[:, None]) ** 2).sum(-1).masked_fill(~valid, -1.0)
    start = dist.argmax(dim=1)
    perm = torch.arange(N, device=pos.device).repeat(B, 1)
    rows = torch.arange(B, device=pos.device)
    perm[rows, start] = 0
    perm[:, 0] = start
    swapped = torch.gather(pos, 1, perm[..., None].expand(-1, -1, pos.shape[-1]))
    idx = farthest_point_sample(swapped, n, lengths=lengths)
    return torch.where(idx < 0, idx, torch.gather(perm, 1, idx.clamp(min=0)))


class SetAbstraction(nn.Module):
    """One set-abstraction level, with one ball (radius, neighbours, MLP) per scale.

    Args:
        in_channels: feature size of the input points (0 for xyz only).
        num_centroids: centroids per cloud (int) or a ratio of its points (float in (0, 1]).
        radii: ball radius per scale.
        neighbors: maximum points per ball, per scale (the nearest inside the ball are kept).
        channels: MLP widths per scale, applied to ``[features, xyz - centroid]``.
        norm, act: as in :func:`~pcgen.nn.blocks.shared_mlp`.
    Attributes:
        out_channels: sum of each scale's last width.
    """

    def __init__(self, in_channels: int, num_centroids: int | float, radii: Sequence[float],
                 neighbors: Sequence[int], channels: Sequence[Sequence[int]], norm: Norm = "batch",
                 act: Act = "relu"):
        super().__init__()
        if not (len(radii) == len(neighbors) == len(channels)) or not radii:
            raise ValueError("radii, neighbors and channels need one entry per scale "
                             f"(got {len(radii)}, {len(neighbors)}, {len(channels)})")
        self.num_centroids = num_centroids
        self.radii = [float(r) for r in radii]
        self.neighbors = [int(k) for k in neighbors]
        self.convs = nn.ModuleList(
            PointNetConv(local_nn=shared_mlp([in_channels + 3, *ch], norm=norm, act=act),
                         add_self_loops=False)
            for ch in channels)
        self.out_channels = sum(int(ch[-1]) for ch in channels)

    def forward(self, x: Tensor | None, pos: Tensor, packing: Packing) -> tuple[Tensor, Tensor, Packing]:
        """Args:
            x: ``(P, in_channels)`` packed features or None, pos: ``(P, 3)``, packing of the rows.
        Returns:
            ``(Pc, out_channels)`` centroid features, ``(Pc, 3)`` centroid positions, their packing.
        """
        pos_pad = packing.unpack(pos)
        counts = centroid_counts(packing.lengths, self.num_centroids)
        n = int(counts.max())
        idx = sample_centroids(pos_pad.detach(), packing.lengths, n)
        cpack = Packing.from_lengths(counts, n)
        centroid_rows = cpack.pack(packing.to_rows(idx)[..., None]).squeeze(-1)
        pos_c = pos[centroid_rows]
        pos_c_pad = cpack.unpack(pos_c)
        outs = []
        for conv, radius, k in zip(self.convs, self.radii, self.neighbors):
            with torch.no_grad():
                nbr = ball_query(pos_c_pad.detach(), pos_pad.detach(), radius, k,
                                 lengths1=counts, lengths2=packing.lengths).idx
            outs.append(conv(x, (pos, pos_c), neighbour_edges(nbr, cpack, packing)))
        return torch.cat(outs, dim=-1), pos_c, cpack


def interpolate_features(x: Tensor, pos: Tensor, packing: Packing, pos_fine: Tensor, fine: Packing,
                         k: int = 3) -> Tensor:
    """Inverse-squared-distance average of the k nearest coarse features at each fine point.

    A fine point that coincides with a coarse point takes that point's feature. Neighbours come
    from :func:`pcgen.ops.knn`; the distances are recomputed here so the weights are
    differentiable in both position sets whatever the kNN backend supports.

    Args:
        x: ``(Pc, C)`` coarse features at ``pos (Pc, 3)``, rows described by ``packing``.
        pos_fine: ``(Pf, 3)`` query points, rows described by ``fine`` (same clouds, same order).
        k: coarse neighbours (fewer where a cloud has fewer coarse points).
    Returns:
        ``(Pf, C)``.
    """
    with torch.no_grad():
        nbr = knn(fine.unpack(pos_fine).detach(), packing.unpack(pos).detach(), k,
                  lengths1=fine.lengths, lengths2=packing.lengths).idx
    nbr = fine.pack(nbr)  # (Pf, k) per-cloud indices, -1 past a short cloud
    ok = nbr >= 0
    rows = (nbr + packing.offsets[fine.batch][:, None]).clamp(min=0)
    d2 = ((pos[rows] - pos_fine[:, None]) ** 2).sum(-1)
    w = torch.where(ok, 1.0 / d2.clamp(min=1e-16), torch.zeros_like(d2))
    w = w / w.sum(-1, keepdim=True)
    return (x[rows] * w[..., None]).sum(1)


class FeaturePropagation(nn.Module):
    """Carries coarse features to finer points (inverse squared distance over k nearest) + an MLP.

    Args:
        in_channels: coarse feature size.
        skip_channels: feature size already at the fine points (0: none).
        channels: MLP widths over ``[interpolated, skip]``.
        k: coarse neighbours to interpolate from.
    """

    def __init__(self, in_channels: int, skip_channels: int, channels: Sequence[int], k: int = 3,
                 norm: Norm = "batch", act: Act = "relu"):
        super().__init__()
        self.k = int(k)
        self.mlp = shared_mlp([in_channels + skip_channels, *channels], norm=norm, act=act)
        self.out_channels = int(channels[-1])

    def forward(self, x: Tensor, pos: Tensor, packing: Packing, skip: Tensor | None, pos_fine: Tensor,
                fine: Packing) -> Tensor:
        """Args:
            x ``(Pc, C)`` coarse features at ``pos (Pc, 3)``; skip ``(Pf, S)`` or None at
            ``pos_fine (Pf, 3)``; the packings of both.
        Returns: ``(Pf, out_channels)``.
        """
        out = interpolate_features(x, pos, packing, pos_fine, fine, self.k)
        if skip is not None:
            out = torch.cat([out, skip], dim=-1)
        return self.mlp(out)


def _level(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Read one ``sa_levels`` entry (a dict or Hydra DictConfig); single-scale shorthand allowed:
    ``radius``/``neighbors`` scalars and one ``channels`` list."""
    spec = dict(spec)
    unknown = set(spec) - {"num_centroids", "radius", "radii", "neighbors", "channels"}
    if unknown:
        raise ValueError(f"unknown keys in a set-abstraction level: {sorted(unknown)}")
    radii = spec.get("radii", spec.get("radius"))
    radii = [radii] if isinstance(radii, (int, float)) else list(radii)
    neighbors = spec["neighbors"]
    neighbors = [neighbors] if isinstance(neighbors, int) else list(neighbors)
    channels = list(spec["channels"])
    if all(isinstance(c, int) for c in channels):  # one scale given as a flat width list
        channels = [channels]
    channels = [[int(w) for w in c] for c in channels]
    return {"num_centroids": spec["num_centroids"], "radii": radii, "neighbors": neighbors,
            "channels": channels}


class PointNet2Encoder(nn.Module):
    """PointNet++ over padded batches (SSG or MSG), with feature propagation to every input point.

    Conditioning sites: the output of each set-abstraction level, then of each feature
    propagation level but the last.

    Args:
        in_channels: ``3 + F``; features enter the first level's groups and the last propagation.
        sa_levels: one mapping per level: ``num_centroids`` (int, or float ratio), ``radii`` (or
            ``radius``), ``neighbors``, ``channels`` (one width list per scale). Radii are in the
            units of the input (pcgen tiles are normalized to the unit sphere).
        global_channels: MLP over the last level's ``[features, xyz]``, max-pooled to the global
            feature.
        fp_channels: one width list per propagation level, coarsest first (as many as levels).
        fp_k: coarse neighbours per interpolation.
        mean_pool: add mean pooling to the global feature.
        norm, act, time_dim, cond_dim, conditioning, cond_hidden: as in ``PointNetEncoder``.
    """

    def __init__(self, in_channels: int = 3,
                 sa_levels: Sequence[Mapping[str, Any]] = (
                     {"num_centroids": 512, "radii": [0.2], "neighbors": [32], "channels": [[64, 64, 128]]},
                     {"num_centroids": 128, "radii": [0.4], "neighbors": [64], "channels": [[128, 128, 256]]}),
                 global_channels: Sequence[int] = (256, 512), fp_channels: Sequence[Sequence[int]] = (
                     (256, 256), (256, 128)), fp_k: int = 3, mean_pool: bool = False,
                 norm: Norm = "batch", act: Act = "relu", time_dim: int = 0, cond_dim: int = 0,
                 conditioning: ConditioningMode = "film", cond_hidden: int = 128):
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"in_channels must be at least 3 (xyz), got {in_channels}")
        levels = [_level(s) for s in sa_levels]
        if not levels:
            raise ValueError("PointNet2Encoder needs at least one set-abstraction level")
        if len(fp_channels) != len(levels):
            raise ValueError(f"need one fp_channels entry per level ({len(levels)}), got {len(fp_channels)}")
        self.in_channels = in_channels
        self.mean_pool = mean_pool
        sa_out = [sum(ch[-1] for ch in lv["channels"]) for lv in levels]
        fp_out = [int(ch[-1]) for ch in fp_channels]
        self.cond = Conditioning(time_dim, cond_dim, sa_out + fp_out[:-1], conditioning, cond_hidden)
        L = len(levels)
        self.sa = nn.ModuleList()
        feat = in_channels - 3
        for i, lv in enumerate(levels):
            self.sa.append(SetAbstraction(feat, lv["num_centroids"], lv["radii"], lv["neighbors"],
                                          lv["channels"], norm=norm, act=act))
            feat = self.cond.out_channels(i)
        self.global_mlp = shared_mlp([feat + 3, *global_channels], norm=norm, act=act)
        self.global_dim = int(global_channels[-1]) * (2 if mean_pool else 1)
        # level l's (conditioned) features are the skip input when propagating onto level l
        skips = [in_channels] + [self.cond.out_channels(i) for i in range(L - 1)]
        self.fp = nn.ModuleList()
        coarse = feat + self.global_dim
        for j, ch in enumerate(fp_channels):
            self.fp.append(FeaturePropagation(coarse, skips[L - 1 - j], ch, k=fp_k, norm=norm, act=act))
            if j < L - 1:
                coarse = self.cond.out_channels(L + j)
        self.point_dim = fp_out[-1]

    def forward(self, points: Tensor, lengths: Tensor | None = None, t_emb: Tensor | None = None,
                cond: Tensor | None = None) -> EncoderOutput:
        """Args: points ``(B, N, in_channels)``, lengths ``(B,)``, t_emb ``(B, time_dim)``,
        cond ``(B, cond_dim)``. Returns :class:`EncoderOutput` ``(B, global_dim)``, ``(B, N, point_dim)``."""
        packing = check_points(points, lengths, self.in_channels, self)
        B = packing.batch_size
        c = self.cond.embed_inputs(t_emb, cond, B)
        rows = packing.pack(points)
        pos, feats = rows[:, :3], rows[:, 3:]
        x = feats if feats.shape[1] else None
        levels = [(rows, pos, packing)]  # level 0 skip: xyz and features of the input points
        for i, sa in enumerate(self.sa):
            x, pos, packing = sa(x, pos, packing)
            x = self.cond(i, x, c, packing.batch)
            levels.append((x, pos, packing))
        global_feature = global_pool(self.global_mlp(torch.cat([x, pos], dim=-1)), packing.batch, B,
                                     self.mean_pool)
        x = torch.cat([x, global_feature[packing.batch]], dim=-1)
        L = len(self.sa)
        for j, fp in enumerate(self.fp):
            _, pos_c, pack_c = levels[L - j]
            skip, pos_f, pack_f = levels[L - 1 - j]
            x = fp(x, pos_c, pack_c, skip, pos_f, pack_f)
            if j < L - 1:
                x = self.cond(L + j, x, c, pack_f.batch)
        return EncoderOutput(global_feature, levels[0][2].unpack(x))

    def regularization(self) -> Tensor:
        """No regularizer for PointNet++: a scalar 0 (the shared encoder interface)."""
        return torch.zeros((), device=next(self.parameters()).device)


__all__ = ["PointNet2Encoder", "SetAbstraction", "FeaturePropagation", "sample_centroids", "centroid_counts",
           "interpolate_features"]
