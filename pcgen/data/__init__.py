"""Tiling and model-ready samples: `tile_files`, `TileDataset`, transforms.

Names are imported lazily so ``pcgen tile`` does not pay for torch.
"""

from __future__ import annotations

from pcgen.lazy import lazy_names

_EXPORTS = {
    "tile_files": "pcgen.data.tiling",
    "TileOptions": "pcgen.data.tiling",
    "TileDataset": "pcgen.data.dataset",
    "Normalization": "pcgen.data.transforms",
    "Augment": "pcgen.data.transforms",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
