"""Small helpers shared by the heads (device lookup, optional encoder regularizer)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def module_device(module: nn.Module) -> torch.device:
    """Device of a module's first parameter or buffer (CPU when it has none)."""
    for t in module.parameters():
        return t.device
    for t in module.buffers():
        return t.device
    return torch.device("cpu")


def regularization(*modules: nn.Module | None) -> Tensor | None:
    """Sum of ``regularization()`` over the modules that define one (PointNet's orthogonality term).

    Returns None when no module has a regularizer, so heads only report terms that exist.
    """
    terms = [m.regularization() for m in modules if m is not None and hasattr(m, "regularization")]
    terms = [t if isinstance(t, Tensor) else torch.as_tensor(float(t)) for t in terms if t is not None]
    if not terms:
        return None
    return torch.stack([t.reshape(()) for t in terms]).sum()
