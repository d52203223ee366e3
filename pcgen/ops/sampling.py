"""Farthest point sampling over padded batches."""

from __future__ import annotations

import torch

from pcgen.ops import _ext, reference
from pcgen.ops._checks import as_lengths, check_finite, check_points, whole_number


def farthest_point_sample(points: torch.Tensor, n: int, lengths=None, random_start: bool = False,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick ``n`` points per cloud, each the farthest from those already picked.

    Args:
        points: (B, N, D) float32 or float64.
        n: samples per cloud.
        lengths: (B,) valid points per cloud (default: all N).
        random_start: start from a random valid point instead of point 0.
        generator: torch generator for the random start (default: the global one).
    Returns:
        (B, n) int64 indices into ``points``, distinct within a cloud (duplicate points too);
        -1 past a cloud's length when n > lengths[b].
    """
    check_points("points", points)
    check_finite("points", points)  # a NaN point was picked again and again
    n = whole_number("n", n, 0)
    lengths = as_lengths("lengths", lengths, points)
    B = points.shape[0]
    if random_start:
        u = torch.rand(B, generator=generator, dtype=torch.float64).to(points.device)
        start = (u * lengths.to(torch.float64)).floor().to(torch.int64)
        start = torch.minimum(start, (lengths - 1).clamp_min(0))
    else:
        start = torch.zeros(B, dtype=torch.int64, device=points.device)
    if _ext.has_op("farthest_point_sample", points.device):
        return torch.ops.pcgen.farthest_point_sample(points.detach().contiguous(), lengths, n, start)
    return reference.farthest_point_sample_reference(points.detach(), lengths, n, start)
