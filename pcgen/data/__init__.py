"""Tiling and model-ready samples: `tile_files`, `TileDataset`, transforms.

Names are imported lazily so ``pcgen tile`` does not pay for torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "tile_files": "pcgen.data.tiling",
    "TileOptions": "pcgen.data.tiling",
    "TileDataset": "pcgen.data.dataset",
    "Normalization": "pcgen.data.transforms",
    "Augment": "pcgen.data.transforms",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pcgen.data' has no attribute {name!r}")
