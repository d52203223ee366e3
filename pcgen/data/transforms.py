"""Invertible normalization of point sets, and the augmentations applied to training samples.

`Normalization` keeps its centre and scale in float64 so points generated in the normalized
frame map back to real-world coordinates (UTM metres, state-plane feet) to better than 1e-9.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pcgen.errors import ConfigError

NormalizeMode = Literal["sphere", "unit_cube"]
NORMALIZE_MODES = ("sphere", "unit_cube")
#: Older spellings, still accepted so existing configs and checkpoints load. ``"cube"`` became
#: ``"unit_cube"`` so that in pcgen a "box" frame is always [-1, 1]^3 (metrics, gap frames).
NORMALIZE_ALIASES = {"cube": "unit_cube"}


def normalize_mode(mode: str) -> str:
    """The canonical name of a normalization mode (``"cube"`` -> ``"unit_cube"``).

    Raises:
        ValueError: ``mode`` is not a mode or an alias of one.
    """
    mode = NORMALIZE_ALIASES.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in NORMALIZE_MODES:
        raise ValueError(f"normalize must be 'sphere' or 'unit_cube', got {mode!r}")
    return mode


@dataclass(frozen=True)
class Normalization:
    """``normalized = (xyz - center) / scale``; ``invert`` undoes it.

    Attributes:
        center: (3,) float64 real-world centre.
        scale: float64 scalar, > 0.
    """

    center: np.ndarray
    scale: float

    @classmethod
    def fit(cls, xyz: np.ndarray, mode: NormalizeMode = "sphere") -> "Normalization":
        """Fit to points.

        Args:
            xyz: (N, 3) points (any float dtype; fitted in float64).
            mode: ``"sphere"``: centroid to origin, farthest point on the unit sphere.
                ``"unit_cube"``: bounding-box centre to origin, isotropic scale so the points fit
                ``[-0.5, 0.5]^3`` (largest side exactly 1); ``"cube"`` is its older name.
        Returns:
            The fitted `Normalization`. A single point (or all points equal) gives scale 1.
        """
        mode = normalize_mode(mode)
        xyz = np.asarray(xyz, dtype=np.float64)
        if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) == 0:
            raise ValueError(f"expected (N, 3) points with N > 0, got {xyz.shape}")
        if not np.isfinite(xyz).all():
            raise ValueError("points to normalize must be finite (NaN or inf found)")
        if mode == "sphere":
            ref = xyz[0]  # mean of offsets: no precision lost to large UTM coordinates
            center = ref + (xyz - ref).mean(axis=0)
            scale = float(np.sqrt(((xyz - center) ** 2).sum(axis=1).max()))
        else:  # unit_cube
            lo, hi = xyz.min(axis=0), xyz.max(axis=0)
            center = (lo + hi) / 2.0
            scale = float((hi - lo).max())
        return cls(center=center, scale=scale if scale > 0 else 1.0)

    def apply(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) real-world -> (N, 3) float64 normalized."""
        return (np.asarray(xyz, dtype=np.float64) - self.center) / self.scale

    def invert(self, xyz) -> np.ndarray:
        """(..., 3) normalized (numpy or torch, any float dtype) -> float64 real-world."""
        if hasattr(xyz, "detach"):
            xyz = xyz.detach().cpu().numpy()
        return np.asarray(xyz, dtype=np.float64) * self.scale + self.center


@dataclass(frozen=True)
class Augment:
    """Random rigid/scale/jitter augmentation of normalized samples (training only).

    Attributes:
        rotate_z: rotate by a uniform angle about the vertical axis (ground stays level).
        scale: (low, high) range of a uniform isotropic scale factor; None for no scaling.
        jitter: std of per-point Gaussian noise in normalized units; 0 for none.
        jitter_clip: jitter is clipped to +-this value.
    """

    rotate_z: bool = True
    scale: tuple[float, float] | None = (0.9, 1.1)
    jitter: float = 0.01
    jitter_clip: float = 0.05

    def __post_init__(self):
        from pcgen.options import check_range

        if self.scale is not None:
            if not isinstance(self.scale, (tuple, list)) or len(self.scale) != 2:
                raise ConfigError(f"scale must be (low, high), got {self.scale!r}")
            low = check_range("scale[0]", self.scale[0], 0, 1e6, open_low=True)
            check_range("scale[1]", self.scale[1], low, 1e6)
        check_range("jitter", self.jitter, 0, 1e6)
        check_range("jitter_clip", self.jitter_clip, 0, 1e6)

    def __call__(self, xyz: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N, 3) -> (N, 3) augmented copy, drawn from ``rng`` (deterministic per seed)."""
        out = np.asarray(xyz, dtype=np.float64)
        if self.rotate_z:
            a = rng.uniform(0.0, 2.0 * np.pi)
            c, s = np.cos(a), np.sin(a)
            rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            out = out @ rot.T
        if self.scale is not None:
            out = out * rng.uniform(*self.scale)
        if self.jitter > 0:
            noise = np.clip(rng.normal(0.0, self.jitter, out.shape), -self.jitter_clip,
                            self.jitter_clip)
            out = out + noise
        return out
