"""Load the compiled kernels (``pcgen._C``) once; say so once when they are missing.

The extension registers its ops with torch's dispatcher under the ``pcgen`` namespace
(``torch.ops.pcgen.knn`` ...). When it was not built (``PCGEN_NO_EXT=1`` or a failed build),
every public op falls back to its pure-torch reference in :mod:`pcgen.ops.reference`,
which is correct but slower and, for large clouds, chunked rather than indexed.
"""

from __future__ import annotations

import functools
import os
import warnings

import torch


@functools.lru_cache(maxsize=None)
def _load() -> bool:
    if os.environ.get("PCGEN_FORCE_REFERENCE") == "1":
        return False
    try:
        import pcgen._C  # noqa: F401  (registers torch.ops.pcgen.*)
    except ImportError as exc:
        warnings.warn(f"pcgen._C is not built ({exc}); pcgen.ops uses its pure-torch references. "
                      "Build it with `python setup.py build_ext --inplace`.", RuntimeWarning,
                      stacklevel=3)
        return False
    return True


def has_op(name: str, device: torch.device | str = "cpu") -> bool:
    """True when the compiled op ``pcgen::name`` exists and has a kernel for ``device``."""
    if not _load():
        return False
    if not hasattr(torch.ops.pcgen, name):
        return False
    dev = torch.device(device).type
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(dev)
    if key is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"pcgen::{name}", key)
