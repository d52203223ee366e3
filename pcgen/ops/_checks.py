"""Input checks shared by the public ops: shapes, dtypes, lengths.

Bad tensors are the caller's bug (:class:`~pcgen.errors.ShapeError`, traceback kept); a bad
scalar option such as ``k`` is a configuration value (:class:`~pcgen.errors.ConfigError`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pcgen.errors import ConfigError, ShapeError


def check_points(name: str, p: torch.Tensor) -> None:
    if not isinstance(p, torch.Tensor) or p.dim() != 3:
        shape = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
        raise ShapeError(f"{name} must be a (B, N, D) tensor, got {shape}")
    if p.dtype not in (torch.float32, torch.float64):
        raise ShapeError(f"{name} must be float32 or float64, got {p.dtype}")


def check_pair(p1: torch.Tensor, p2: torch.Tensor, names=("p1", "p2")) -> None:
    check_points(names[0], p1)
    check_points(names[1], p2)
    if p1.shape[0] != p2.shape[0] or p1.shape[2] != p2.shape[2]:
        raise ShapeError(f"{names[0]} {tuple(p1.shape)} and {names[1]} {tuple(p2.shape)} must share "
                         "batch size and point dimension")
    if p1.dtype != p2.dtype or p1.device != p2.device:
        raise ShapeError(f"{names[0]} and {names[1]} must share dtype and device")


def check_finite(name: str, p: torch.Tensor) -> None:
    """Refuse NaN or infinite coordinates, and points so spread out that squared distances
    overflow (float32 past about 1e19): the EMD auction never settles on them (it hung, or
    crashed in the kernel), and Chamfer turns them into NaN."""
    if p.numel() == 0 or torch.compiler.is_compiling():
        return
    if not torch.isfinite(p).all():
        raise ShapeError(f"{name} hold NaN or infinite coordinates")
    span = (p.amax((0, 1)) - p.amin((0, 1))).double()
    if not float((span ** 2).sum()) < torch.finfo(p.dtype).max / 16:
        raise ShapeError(f"{name} span {span.max().item():.3g} units: squared distances overflow {p.dtype}")


def as_lengths(name: str, lengths, p: torch.Tensor) -> torch.Tensor:
    """Lengths as an int64 (B,) tensor on ``p``'s device; ``None`` means every cloud is full."""
    B, N = p.shape[0], p.shape[1]
    if lengths is None:
        return torch.full((B,), N, dtype=torch.int64, device=p.device)
    lengths = torch.as_tensor(lengths, device=p.device)
    if lengths.shape != (B,) or lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ShapeError(f"{name} must be an integer (B,) = ({B},) tensor, got {tuple(lengths.shape)} "
                         f"{lengths.dtype}")
    lengths = lengths.to(torch.int64)
    if not torch.compiler.is_compiling() and B and (int(lengths.min()) < 0 or int(lengths.max()) > N):
        raise ShapeError(f"{name} must lie in [0, {N}]")
    return lengths


def whole_number(name: str, value, low: int) -> int:
    """``value`` as an int when it is a whole number >= ``low`` (an int, a numpy integer or an
    integral float; not a bool or a string), else a ConfigError naming ``name``."""
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer, np.floating))
    if not ok or not math.isfinite(value) or int(value) != value or value < low:
        raise ConfigError(f"{name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def check_k(k: int) -> int:
    return whole_number("k", k, 1)


def check_radius(radius) -> float:
    ok = not isinstance(radius, (bool, np.bool_)) and isinstance(radius, (int, float, np.integer, np.floating))
    if not ok or not math.isfinite(radius) or not radius > 0:
        raise ConfigError(f"radius must be a finite number > 0, got {radius!r}")
    return float(radius)
