"""Read checkpoints and report, in one line, why a state dict does not fit a module."""

from __future__ import annotations

import os
import pickle
from typing import Any, Mapping

import torch
from torch import nn

from pcgen.errors import CheckpointError

__all__ = ["read_checkpoint", "load_state_strict", "describe_mismatch"]


def read_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load`` on CPU with ``weights_only=True``; missing/corrupt files → ``CheckpointError``."""
    if not os.path.isfile(path):
        raise CheckpointError("checkpoint not found", path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError("cannot read checkpoint (not a PyTorch file, or it holds objects other "
                              "than tensors and plain containers)", path) from None
    except Exception as exc:  # zip/EOF/runtime errors have many types; all mean "not a checkpoint"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise CheckpointError(f"cannot read checkpoint ({first[:160]})", path) from None


def _short(names: list[str], limit: int = 4) -> str:
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def describe_mismatch(module: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """One line naming missing, unexpected and wrongly shaped keys, or ``None`` if all fit."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    if missing:
        parts.append(f"missing {_short(missing)}")
    if unexpected:
        parts.append(f"unexpected {_short(unexpected)}")
    if shapes:
        parts.append(f"shape mismatch {_short(shapes, 2)}")
    return "; ".join(parts) or None


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str,
                      path: str | os.PathLike | None = None) -> None:
    """Load ``state`` into ``module`` or raise ``CheckpointError`` naming the mismatched keys."""
    problem = describe_mismatch(module, state)
    if problem:
        raise CheckpointError(f"not a {what} checkpoint: {problem}", path)
    module.load_state_dict(state, strict=True)
