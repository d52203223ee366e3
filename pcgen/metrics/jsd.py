"""Jensen-Shannon divergence between the voxel occupancy of two sets of clouds (PointFlow's JSD).

Each cloud marks the voxels of a ``resolution``^3 grid over [-1, 1]^3 it occupies (once per cloud,
however many points fall in a voxel); summing over a set and normalizing gives an occupancy
distribution, and the JSD of the two distributions is reported in bits (base 2): 0 for sets
occupying space alike, 1 for sets occupying disjoint voxels. Points outside the grid are clamped
into its border voxels; normalize clouds first (``pcgen.metrics.normalize``), or give the box of
the frame they share (``bounds``, e.g. :meth:`pcgen.metrics.frame.MetricFrame.bounds` in metres).
"""

from __future__ import annotations

import torch

from pcgen.errors import ConfigError, ShapeError

MAX_RESOLUTION = 256  # voxels per axis: 256³ float64 counts are 134 MB a set


def occupancy(clouds: torch.Tensor, resolution: int = 28, bounds=None) -> torch.Tensor:
    """Per-voxel count of clouds occupying it.

    Args:
        clouds: (K, N, 3) inside ``bounds``.
        bounds: (low (3,), high (3,)) corners of the gridded box; None is [-1, 1]^3.
    Returns:
        (resolution**3,) float64 counts.
    """
    from pcgen.options import check_range

    check_range("jsd resolution", resolution, 1, MAX_RESOLUTION, integer=True)  # 10**6 asked for 8e18 bytes
    if not isinstance(clouds, torch.Tensor) or clouds.dim() != 3 or clouds.shape[-1] != 3:
        raise ShapeError(f"clouds must be a (K, N, 3) tensor, got "
                         f"{tuple(clouds.shape) if isinstance(clouds, torch.Tensor) else type(clouds).__name__}")
    if not bool(torch.isfinite(clouds).all()):
        raise ShapeError("clouds hold NaN or infinite coordinates (they would be counted in an edge voxel)")
    lo, hi = (-1.0, 1.0) if bounds is None else bounds
    lo = torch.as_tensor(lo, dtype=torch.float64).expand(3)
    hi = torch.as_tensor(hi, dtype=torch.float64).expand(3)
    if not bool((hi > lo).all()):
        raise ConfigError(f"jsd bounds need high > low on every axis, got {bounds}")
    idx = ((clouds.double() - lo) / (hi - lo) * resolution).floor().long().clamp_(0, resolution - 1)
    flat = (idx[..., 0] * resolution + idx[..., 1]) * resolution + idx[..., 2]  # (K, N)
    counts = torch.zeros(resolution ** 3, dtype=torch.float64)
    for row in flat:
        counts[row.unique()] += 1
    return counts


def _entropy_bits(p: torch.Tensor) -> torch.Tensor:
    p = p[p > 0]
    return -(p * p.log2()).sum()


def jensen_shannon_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """JSD in bits between two histograms (normalized here). Returns a float in [0, 1].

    Raises:
        ValueError: histograms of different shapes, or one with a negative, NaN or infinite
            count or no count at all (it normalizes to nothing: it was read as identical).
    """
    if p.shape != q.shape:
        raise ValueError(f"histograms must have one shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    for name, h in (("p", p), ("q", q)):
        h = h.double()
        if not bool(torch.isfinite(h).all()) or bool((h < 0).any()) or not float(h.sum()) > 0:
            raise ValueError(f"histogram {name} must hold finite counts >= 0, not all zero")
    p, q = p.double() / p.sum(), q.double() / q.sum()
    m = (p + q) / 2
    return float((_entropy_bits(m) - (_entropy_bits(p) + _entropy_bits(q)) / 2).clamp_min(0))


def occupancy_jsd(generated: torch.Tensor, reference: torch.Tensor, resolution: int = 28, bounds=None) -> float:
    """JSD (bits) between the voxel occupancy of two sets of clouds.

    Args:
        generated: (G, N, 3), reference: (R, M, 3), both inside ``bounds`` (None: [-1, 1]^3).
    """
    return jensen_shannon_divergence(occupancy(generated, resolution, bounds),
                                     occupancy(reference, resolution, bounds))
