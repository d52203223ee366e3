"""Turn image tensors into PNG grids and side-by-side sheets (written atomically)."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from pcgen.atomic import atomic_path

__all__ = ["to_uint8", "grid", "save_png"]


def to_uint8(x: Tensor) -> np.ndarray:
    """``(3, H, W)`` or ``(B, 3, H, W)`` in [-1, 1] → ``(H, W, 3)`` / ``(B, H, W, 3)`` uint8."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).numpy()


def grid(rows: Sequence[Sequence[Tensor]], pad: int = 2) -> np.ndarray:
    """Tile ``rows`` of ``(3, H, W)`` [-1, 1] images (each resized to the first's size) into one uint8 array."""
    first = rows[0][0]
    h, w = first.shape[-2:]
    ncol = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            if img.shape[-2:] != (h, w):
                img = torch.nn.functional.interpolate(img[None].float(), size=(h, w), mode="bilinear",
                                                      antialias=True, align_corners=False)[0]
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y:y + h, x:x + w] = to_uint8(img)
    return out


def save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 ``(H, W)`` / ``(H, W, 3)`` array as PNG through a temporary name."""
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
