"""Find, open and tensorise the images the image track trains on and explains.

Unreadable files are skipped with a warning that names them (one bad JPEG should not sink a
run), and an empty result is an ``InputError`` naming the folder. Grayscale, palette and RGBA
images are converted to RGB (alpha is dropped; composite first if that matters to you).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from pcgen.errors import InputError

__all__ = ["IMAGE_SUFFIXES", "image_names", "list_images", "open_rgb", "load_images", "to_unit_tensor",
           "resize_center_crop", "ImageFolder", "LoadedImage"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def image_stem(path: Path, root: Path) -> str:
    """An output name for an image found under ``root``, unique across its subfolders
    (``a/img.png`` and ``b/img.png`` become ``a__img`` and ``b__img``)."""
    path, root = Path(path), Path(root)
    rel = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    return "__".join(rel.with_suffix("").parts)


def image_names(paths: list[Path], root: str | os.PathLike) -> list[str]:
    """:func:`image_stem` of each image, checked to be unique.

    Two images whose names differ only in their suffix (``x.jpg`` and ``x.png``) would write
    each other's outputs; they are refused rather than renamed, so every output keeps the
    plain name of its source.

    Raises:
        InputError: two images give the same name (both are named).
    """
    seen: dict[str, Path] = {}
    names = []
    for path in paths:
        name = image_stem(path, Path(root))
        if name in seen:
            raise InputError(f"{seen[name]} and {path} would both be written as {name!r}; "
                             "rename one or move it to another folder")
        seen[name] = path
        names.append(name)
    return names


def list_images(root: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Every file under ``root`` whose suffix looks like an image, sorted by path.

    Raises:
        InputError: ``root`` is missing or holds no file with an image suffix.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("image folder not found", root)
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in root.glob(pattern)
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder", root)
    return files


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """Open one image fully (not lazily) as RGB; raise ``InputError`` if PIL cannot decode it."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"not a readable image ({exc.__class__.__name__})", path) from None


@dataclass
class LoadedImage:
    path: Path
    image: Image.Image


def load_images(root: str | os.PathLike, skipped: list[Path] | None = None) -> list[LoadedImage]:
    """Open every image under ``root``, skipping unreadable ones with a warning naming each.

    Args:
        skipped: if given, the paths of skipped files are appended to it.

    Raises:
        InputError: no image in the folder could be read.
    """
    loaded, bad = [], []
    for path in list_images(root):
        try:
            loaded.append(LoadedImage(path, open_rgb(path)))
        except InputError:
            bad.append(path)
    if skipped is not None:
        skipped.extend(bad)
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable image(s): {', '.join(str(p) for p in bad)}",
                      stacklevel=2)
    if not loaded:
        raise InputError(f"none of the {len(bad)} image file(s) could be read", root)
    return loaded


def to_unit_tensor(image: Image.Image | np.ndarray) -> Tensor:
    """RGB image or ``(H, W[, C])`` uint8 array → float tensor ``(3, H, W)`` in [0, 1]."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise InputError(f"expected an (H, W), (H, W, 1|3|4) image array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        x = torch.from_numpy(np.array(arr, copy=True)).float() / 255.0
    elif np.issubdtype(arr.dtype, np.floating):
        if arr.size and (np.nanmin(arr) < 0 or np.nanmax(arr) > 1 or np.isnan(arr).any()):
            raise InputError("float image arrays must hold values in [0, 1]")
        x = torch.from_numpy(np.array(arr, dtype=np.float32, copy=True))
    else:
        raise InputError(f"image arrays must be uint8 or float in [0, 1], got {arr.dtype}")
    x = x.permute(2, 0, 1)
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    return x[:3].contiguous()


def resize_center_crop(x: Tensor, size: int) -> Tensor:
    """Resize the shorter side to ``size`` (antialiased bilinear), then centre-crop ``size²``.

    Args:
        x: ``(B, C, H, W)`` or ``(C, H, W)`` float tensor.
    Returns:
        ``(B, C, size, size)`` or ``(C, size, size)``.
    """
    squeeze = x.dim() == 3
    if squeeze:
        x = x[None]
    h, w = x.shape[-2:]
    if min(h, w) != size:
        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear",
                                            antialias=True, align_corners=False)
        h, w = nh, nw
    top, left = (h - size) // 2, (w - size) // 2
    x = x[..., top:top + size, left:left + size]
    return x[0] if squeeze else x


class ImageFolder(Dataset):
    """Images of a folder as ``{"image": (3, S, S) in [-1, 1], "index": int}`` items.

    Decoded once and kept in memory at training resolution (the folders this track targets are
    hundreds to thousands of images, and CPU decoding would otherwise dominate a step).

    Args:
        root: folder searched recursively for images.
        size: side ``S`` of the square training image (resize shorter side, centre crop).
        flip: random horizontal flips (off when embeddings are precomputed per image).
    """

    def __init__(self, root: str | os.PathLike, size: int, flip: bool = False):
        self.items = load_images(root)
        self.paths = [it.path for it in self.items]
        self.size = size
        self.flip = flip
        self.images = torch.stack([resize_center_crop(to_unit_tensor(it.image), size)
                                   for it in self.items]) * 2 - 1

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        x = self.images[i]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return {"image": x, "index": i}
