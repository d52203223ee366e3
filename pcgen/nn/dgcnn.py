"""DGCNN (Wang et al., 2019): EdgeConv over a k-nearest-neighbour graph rebuilt at every layer.

The first graph is built on xyz; each later one in the feature space of the previous layer (the
"dynamic graph"), so points far apart but alike in shape can exchange information. Graphs come
from :func:`pcgen.nn.graph.knn_graph` over pcgen's own kNN (no torch-cluster); convolutions are
torch-geometric's ``EdgeConv``.
Memory grows with ``B * N * k * width``: edges, not points, dominate.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import EdgeConv

from pcgen.nn.batching import check_points
from pcgen.nn.blocks import (Act, Conditioning, ConditioningMode, EncoderOutput, Norm, global_pool,
                             shared_mlp)
from pcgen.nn.graph import knn_graph


class DGCNNEncoder(nn.Module):
    """DGCNN over padded batches.

    Conditioning sites: the output of each EdgeConv layer (the next layer's graph is built on it).

    Args:
        in_channels: ``3 + F``; the first graph uses xyz only, the first EdgeConv sees all channels.
        k: neighbours per point (self included); clouds shorter than k use all their points.
        edge_channels: one width list per EdgeConv layer (its MLP over ``[x_i, x_j - x_i]``).
        emb_channels: width of the per-point layer over all EdgeConv outputs, pooled to the global.
        mean_pool: concatenate mean to max pooling (the DGCNN paper does; global_dim doubles).
        point_channels: widths of the point head over ``[all EdgeConv outputs, global]``.
        norm, act, time_dim, cond_dim, conditioning, cond_hidden: as in ``PointNetEncoder``.
    """

    def __init__(self, in_channels: int = 3, k: int = 20,
                 edge_channels: Sequence[Sequence[int]] = ((64,), (64,), (128,)),
                 emb_channels: int = 512, mean_pool: bool = True,
                 point_channels: Sequence[int] = (256, 128), norm: Norm = "batch", act: Act = "leaky_relu",
                 time_dim: int = 0, cond_dim: int = 0, conditioning: ConditioningMode = "film",
                 cond_hidden: int = 128):
        super().__init__()
        if in_channels < 3:
            raise ValueError(f"in_channels must be at least 3 (xyz), got {in_channels}")
        if int(k) < 1:
            raise ValueError(f"k must be positive, got {k}")
        self.in_channels, self.k, self.mean_pool = in_channels, int(k), mean_pool
        widths = [[int(w) for w in ([ch] if isinstance(ch, int) else ch)] for ch in edge_channels]
        if not widths:
            raise ValueError("DGCNNEncoder needs at least one EdgeConv layer")
        self.cond = Conditioning(time_dim, cond_dim, [w[-1] for w in widths], conditioning, cond_hidden)
        self.convs = nn.ModuleList()
        feat = in_channels
        for i, w in enumerate(widths):
            self.convs.append(EdgeConv(shared_mlp([2 * feat, *w], norm=norm, act=act), aggr="max"))
            feat = self.cond.out_channels(i)
        cat = sum(self.cond.out_channels(i) for i in range(len(widths)))
        self.emb = shared_mlp([cat, emb_channels], norm=norm, act=act)
        self.global_dim = int(emb_channels) * (2 if mean_pool else 1)
        head_in = cat + self.global_dim
        self.point_head = shared_mlp([head_in, *point_channels], norm=norm, act=act) if point_channels else None
        self.point_dim = int(point_channels[-1]) if point_channels else head_in

    def forward(self, points: Tensor, lengths: Tensor | None = None, t_emb: Tensor | None = None,
                cond: Tensor | None = None) -> EncoderOutput:
        """Args: points ``(B, N, in_channels)``, lengths ``(B,)``, t_emb ``(B, time_dim)``,
        cond ``(B, cond_dim)``. Returns :class:`EncoderOutput` ``(B, global_dim)``, ``(B, N, point_dim)``."""
        packing = check_points(points, lengths, self.in_channels, self)
        B, batch = packing.batch_size, packing.batch
        c = self.cond.embed_inputs(t_emb, cond, B)
        x = packing.pack(points)
        graph_space = x[:, :3]
        outs = []
        for i, conv in enumerate(self.convs):
            x = conv(x, knn_graph(graph_space, packing, self.k))
            x = self.cond(i, x, c, batch)
            outs.append(x)
            graph_space = x
        local = torch.cat(outs, dim=-1)
        global_feature = global_pool(self.emb(local), batch, B, self.mean_pool)
        per_point = torch.cat([local, global_feature[batch]], dim=-1)
        if self.point_head is not None:
            per_point = self.point_head(per_point)
        return EncoderOutput(global_feature, packing.unpack(per_point))

    def regularization(self) -> Tensor:
        """No regularizer for DGCNN: a scalar 0 (the shared encoder interface)."""
        return torch.zeros((), device=next(self.parameters()).device)
