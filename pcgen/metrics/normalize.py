"""Per-cloud normalization before generation metrics, so scores compare shapes, not placement.

PointFlow evaluated in its dataset-wide normalized frame; later work (PVD, LION) normalizes each
generated and reference cloud on its own. pcgen does the latter by default (``"box"``): center
each cloud on its bounding-box center and scale it so its longest half-extent is 1, i.e. into
[-1, 1]^3. ``"sphere"`` centers on the centroid and scales the farthest point to radius 1 (as
``TileDataset(normalize="sphere")``); ``"none"`` keeps the clouds as given (for clouds already in
one shared frame).
"""

from __future__ import annotations

from typing import Literal

import torch

from pcgen.errors import ConfigError, ShapeError

Normalize = Literal["box", "sphere", "none"]


def normalize_clouds(clouds: torch.Tensor, mode: Normalize = "box") -> torch.Tensor:
    """Normalize each cloud independently.

    Args:
        clouds: (K, N, 3).
        mode: ``"box"``, ``"sphere"`` or ``"none"``.
    Returns:
        (K, N, 3), same dtype; a cloud of one repeated point is only centered.
    """
    if not isinstance(clouds, torch.Tensor) or clouds.dim() != 3 or not clouds.dtype.is_floating_point:
        what = f"{tuple(clouds.shape)} {clouds.dtype}" if isinstance(clouds, torch.Tensor) else type(clouds).__name__
        raise ShapeError(f"clouds must be a floating-point (K, N, D) tensor, got {what}")
    if mode not in ("box", "sphere", "none"):
        raise ConfigError(f"normalize must be 'box', 'sphere' or 'none', got {mode!r}")
    if mode == "none" or clouds.shape[1] == 0:  # no point to centre or scale
        return clouds
    if mode == "box":
        lo, hi = clouds.amin(1, keepdim=True), clouds.amax(1, keepdim=True)
        center = (lo + hi) / 2
        scale = ((hi - lo) / 2).amax(-1, keepdim=True)
    elif mode == "sphere":
        center = clouds.mean(1, keepdim=True)
        scale = (clouds - center).norm(dim=-1, keepdim=True).amax(1, keepdim=True)
    else:
        raise ConfigError(f"normalize must be 'box', 'sphere' or 'none', got {mode!r}")
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return (clouds - center) / scale
