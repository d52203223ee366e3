"""Pairwise distance matrices between two sets of clouds, in bounded-memory chunks.

MMD, COV, 1-NNA and precision/recall all start from cloud-to-cloud distances. Evaluating 1,000
generated against 1,000 reference clouds means a million Chamfer or EMD calls; they go through
``pcgen.ops`` a block of ``chunk`` pairs at a time, so memory depends on ``chunk`` (and N), never
on the number of clouds.
"""

from __future__ import annotations

from typing import Literal

import torch

from pcgen.errors import ConfigError, ShapeError
from pcgen.ops import chamfer
from pcgen.ops.emd import emd

Metric = Literal["chamfer", "emd"]


def pair_distances(x: torch.Tensor, y: torch.Tensor, metric: Metric, emd_eps: float = 1e-2,
                   emd_squared: bool = False, emd_method: str = "auction") -> torch.Tensor:
    """Distance of each pair ``(x[p], y[p])``.

    Chamfer is PointFlow's: squared distances, mean over points, both directions summed. EMD is
    the mean matched distance (unsquared by default, as PointFlow's evaluation EMD).

    Args:
        x, y: (P, N, 3) and (P, M, 3) (EMD needs M == N).
    Returns:
        (P,) float64.
    """
    if metric == "chamfer":
        return chamfer(x, y, batch_reduction=None, point_reduction="mean").loss.double()
    if metric == "emd":
        return emd(x, y, method=emd_method, squared=emd_squared, eps=emd_eps).double()
    raise ConfigError(f"metric must be 'chamfer' or 'emd', got {metric!r}")


@torch.no_grad()
def pairwise_distances(a: torch.Tensor, b: torch.Tensor, metric: Metric = "chamfer",
                       chunk: int = 256, symmetric: bool = False, progress: bool = False,
                       **kwargs) -> torch.Tensor:
    """All distances between the clouds of ``a`` and those of ``b``.

    Args:
        a: (K, N, 3) clouds.
        b: (L, M, 3) clouds.
        metric: ``"chamfer"`` or ``"emd"``.
        chunk: pairs per call into ``pcgen.ops`` (the memory knob: about ``chunk * (N + M)``
            points are materialized at once).
        symmetric: ``a`` is ``b`` and the metric symmetric: compute the upper triangle only.
        progress: show a tqdm bar.
        kwargs: passed to :func:`pair_distances` (``emd_eps``, ``emd_squared``, ``emd_method``).
    Returns:
        (K, L) float64 on CPU.
    """
    from pcgen.options import check_range

    check_range("chunk", chunk, 1, 10**9, integer=True)
    K, L = a.shape[0], b.shape[0]
    if symmetric and K != L:
        raise ShapeError(f"symmetric distances need a to be b, got {K} and {L} clouds")
    out = torch.zeros(K, L, dtype=torch.float64)
    if symmetric:
        rows, cols = torch.triu_indices(K, L, offset=1)
    else:
        rows = torch.arange(K).repeat_interleave(L)
        cols = torch.arange(L).repeat(K)
    total = rows.numel()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"{metric} {K}x{L}", unit="pair")
    for s in range(0, total, chunk):
        r, c = rows[s:s + chunk], cols[s:s + chunk]
        d = pair_distances(a[r], b[c], metric, **kwargs).cpu()
        out[r, c] = d
        if symmetric:
            out[c, r] = d
        if bar is not None:
            bar.update(r.numel())
    if bar is not None:
        bar.close()
    return out
