"""PointNet (Qi et al., 2017): a shared per-point MLP and a symmetric pooling.

The cheapest encoder: no neighbourhoods, so it sees shape only through the global pooling.
Optional T-Nets learn an input (xyz) and a feature alignment; the feature one is kept near
orthogonal by :meth:`PointNetEncoder.regularization`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import global_max_pool

from pcgen.nn.batching import Packing, check_points
from pcgen.nn.blocks import (Act, Conditioning, ConditioningMode, EncoderOutput, Norm, global_pool,
                             shared_mlp)


class TNet(nn.Module):
    """Predicts a ``(k, k)`` transform per cloud from its points (a small PointNet), initialised to I.

    Args:
        k: size of the transformed features.
        channels: per-point widths before pooling.
        fc: widths of the MLP after pooling.
        norm, act: as in :func:`~pcgen.nn.blocks.shared_mlp`.
    """

    def __init__(self, k: int, channels: Sequence[int] = (64, 128, 256), fc: Sequence[int] = (128, 64),
                 norm: Norm = "batch", act: Act = "relu"):
        super().__init__()
        self.k = k
        self.point_mlp = shared_mlp([k, *channels], norm=norm, act=act)
        self.fc = shared_mlp([channels[-1], *fc], norm=norm, act=act)
        self.out = nn.Linear(fc[-1], k * k)
        nn.init.zeros_(self.out.weight)  # start at the identity transform
        with torch.no_grad():
            self.out.bias.copy_(torch.eye(k).flatten())

    def forward(self, x: Tensor, batch: Tensor, batch_size: int) -> Tensor:
        """Args: x ``(P, k)`` packed rows, batch ``(P,)``. Returns ``(B, k, k)``."""
        g = global_max_pool(self.point_mlp(x), batch, size=batch_size)
        return self.out(self.fc(g)).view(-1, self.k, self.k)


def apply_transform(x: Tensor, transform: Tensor, packing: Packing) -> Tensor:
    """Right-multiply each cloud's packed rows ``(P, k)`` by its ``(k, k)`` matrix.

    Done padded (one ``bmm``) rather than gathering a matrix per row, which would cost ``P * k * k``.
    """
    return packing.pack(torch.bmm(packing.unpack(x), transform))


class PointNetEncoder(nn.Module):
    """PointNet over padded batches.

    Sites where ``t_emb`` / ``cond`` enter (see :class:`~pcgen.nn.blocks.Conditioning`):
    0 = the local per-point features, 1 = each point's features before the point head.

    Args:
        in_channels: ``3 + F`` (xyz then F per-point features).
        local_channels: widths of the first per-point MLP (its output feeds the point head).
        global_channels: widths of the second per-point MLP, max-pooled into the global feature.
        point_channels: widths of the point head over ``[local, global]``; empty: no head, the
            point features are the concatenation itself.
        mean_pool: concatenate mean pooling to max pooling (global_dim doubles).
        input_transform: learn a 3x3 alignment of xyz (T-Net).
        feature_transform: learn a ``local_channels[-1]`` square alignment of the local features,
            regularized toward orthogonal by :meth:`regularization`.
        norm, act: per-layer normalization and activation.
        time_dim, cond_dim: sizes of ``t_emb`` and ``cond`` (0 = not used).
        conditioning: ``"film"`` or ``"concat"``.
        cond_hidden: size of the embedded condition vector.
    Attributes:
        global_dim: D of ``global_feature``.  point_dim: D' of ``point_features``.
    """

    def __init__(self, in_channels: int = 3, local_channels: Sequence[int] = (64, 64),
                 global_channels: Sequence[int] = (64, 128, 512), point_channels: Sequence[int] = (256, 128),
                 mean_pool: bool = False, input_transform: bool = False, feature_transform: bool = False,
                 norm: Norm = "batch", act: Act = "relu", time_dim: int = 0, cond_dim: int = 0,
                 conditioning: ConditioningMode = "film", cond_hidden: int = 128):
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"in_channels must be at least 3 (xyz), got {in_channels}")
        self.in_channels = in_channels
        self.mean_pool = mean_pool
        local_dim = local_channels[-1]
        pooled = global_channels[-1] * (2 if mean_pool else 1)
        self.cond = Conditioning(time_dim, cond_dim, [local_dim, local_dim + pooled], conditioning,
                                 cond_hidden)
        self.input_tnet = TNet(3, norm=norm, act=act) if input_transform else None
        self.local_mlp = shared_mlp([in_channels, *local_channels], norm=norm, act=act)
        self.feature_tnet = TNet(local_dim, norm=norm, act=act) if feature_transform else None
        self.global_mlp = shared_mlp([self.cond.out_channels(0), *global_channels], norm=norm, act=act)
        head_in = self.cond.out_channels(1)
        self.point_head = (shared_mlp([head_in, *point_channels], norm=norm, act=act)
                           if point_channels else None)
        self.global_dim = pooled
        self.point_dim = point_channels[-1] if point_channels else head_in
        self._feature_transform: Tensor | None = None

    def forward(self, points: Tensor, lengths: Tensor | None = None, t_emb: Tensor | None = None,
                cond: Tensor | None = None) -> EncoderOutput:
        """Args:
            points: ``(B, N, in_channels)``; rows past ``lengths`` are ignored.
            lengths: ``(B,)`` valid points per cloud (None: all N).
            t_emb: ``(B, time_dim)`` timestep embedding, cond: ``(B, cond_dim)``.
        Returns:
            :class:`EncoderOutput` with ``(B, global_dim)`` and ``(B, N, point_dim)``.
        """
        packing = check_points(points, lengths, self.in_channels, self)
        B, batch = packing.batch_size, packing.batch
        c = self.cond.embed_inputs(t_emb, cond, B)
        x = packing.pack(points)
        if self.input_tnet is not None:
            xyz = x[:, :3]
            xyz = apply_transform(xyz, self.input_tnet(xyz, batch, B), packing)
            x = torch.cat([xyz, x[:, 3:]], dim=-1)
        local = self.local_mlp(x)
        self._feature_transform = None
        if self.feature_tnet is not None:
            transform = self.feature_tnet(local, batch, B)
            local = apply_transform(local, transform, packing)
            self._feature_transform = transform
        local = self.cond(0, local, c, batch)
        global_feature = global_pool(self.global_mlp(local), batch, B, self.mean_pool)
        # the point head reads the local features of the point plus its cloud's global feature
        per_point = torch.cat([local[:, :self.cond.site_channels[0]], global_feature[batch]], dim=-1)
        per_point = self.cond(1, per_point, c, batch)
        if self.point_head is not None:
            per_point = self.point_head(per_point)
        return EncoderOutput(global_feature, packing.unpack(per_point))

    def regularization(self) -> Tensor:
        """Orthogonality penalty ``mean_b ||I - A_b A_b^T||_F^2`` of the last forward's feature transform.

        Returns a scalar; 0 without a feature transform (or before any forward).
        """
        from pcgen.losses.regularizers import orthogonality_loss

        if self._feature_transform is None:
            return torch.zeros((), device=next(self.parameters()).device)
        return orthogonality_loss(self._feature_transform)
