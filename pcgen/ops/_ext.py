"""Load the compiled kernels (``pcgen._C``) once; say so once when they are missing.

The extension registers its ops with torch's dispatcher under the ``pcgen`` namespace
(``torch.ops.pcgen.knn`` ...). When it was not built (``PCGEN_NO_EXT=1`` or a failed build),
every public op falls back to its pure-torch reference in :mod:`pcgen.ops.reference`,
which is correct but slower and, for large clouds, chunked rather than indexed.
Set ``PCGEN_FORCE_REFERENCE=1`` to use the references even when the kernels are built.
"""

from __future__ import annotations

import os
import warnings

import torch

_OPS = ("knn", "ball_query", "knn_backward", "farthest_point_sample", "emd_auction")
_kernels: set[tuple[str, str]] | None = None  # (op name, device type) pairs with a kernel
_warned = False


def _load() -> set[tuple[str, str]]:
    global _kernels, _warned
    if _kernels is not None:
        return _kernels
    _kernels = set()
    if os.environ.get("PCGEN_FORCE_REFERENCE") == "1":
        return _kernels
    try:
        import pcgen._C  # noqa: F401  (registers torch.ops.pcgen.*)
    except ImportError as exc:
        if not _warned:
            _warned = True
            warnings.warn(f"pcgen._C is not built ({exc}); pcgen.ops uses its pure-torch "
                          "references. Build it with `python setup.py build_ext --inplace`.",
                          RuntimeWarning, stacklevel=3)
        return _kernels
    from pcgen.ops._register import register

    register()
    for name in _OPS:
        if not hasattr(torch.ops.pcgen, name):
            continue
        for dev, key in (("cpu", "CPU"), ("cuda", "CUDA")):
            if torch._C._dispatch_has_kernel_for_dispatch_key(f"pcgen::{name}", key):
                _kernels.add((name, dev))
    return _kernels


def has_op(name: str, device: torch.device | str = "cpu") -> bool:
    """True when the compiled op ``pcgen::name`` has a kernel for ``device``."""
    dev = device.type if isinstance(device, torch.device) else torch.device(device).type
    return (name, dev) in _load()


_load()  # at import, so torch.compile traces a plain set lookup
