"""Rebuild a trained head from a training checkpoint, without the Hydra run that produced it.

Training saves the head's own config (``_target_`` tree) and its kind in the checkpoint's
``hyper_parameters``; :func:`load_head` checks every ``_target_`` against pcgen's own model
classes (:mod:`pcgen.train.safe_targets`: a checkpoint must never run code), instantiates the
config and loads the EMA weights when the run kept them (they sample better), else the live
weights. Every way a file can be unusable
is a ``CheckpointError`` naming the file, so ``pcgen fill`` and ``pcgen evaluate`` report it in
one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pcgen.errors import CheckpointError
from pcgen.train.safe_targets import check_targets

EMA_PREFIX = "ema.module."
HEAD_PREFIX = "head."
# A head config may nest another checkpoint (the l-GAN's autoencoder); a chain this deep is a loop.
MAX_NESTING = 4
_nesting = 0


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a pcgen training checkpoint as a dict, or raise ``CheckpointError`` naming the file."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError("checkpoint not found", path)
    if not path.is_file():
        raise CheckpointError("checkpoint path is not a file", path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... here
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason.split(". ")[0].rstrip(".")  # torch's first sentence; the rest is advice
        if len(reason) < 8:  # a bare code or byte ("101") says nothing without its kind
            reason = f"{type(exc).__name__}: {reason}"
        raise CheckpointError(f"not a readable torch checkpoint (truncated or corrupt?): "
                              f"{reason[:120]}", path) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError("not a pcgen training checkpoint (no state_dict)", path)
    hp = ckpt.get("hyper_parameters") or {}
    if "kind" not in hp or "head" not in hp:
        raise CheckpointError("not a pcgen training checkpoint (no head kind/config saved)", path)
    return ckpt


def load_head(path: str | os.PathLike, map_location: Any = "cpu", expect: str | None = None,
              use_ema: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the head saved in a checkpoint and load its weights.

    Args:
        path: a ``.ckpt`` written by ``train.py`` (``<run>/checkpoints/last.ckpt`` or ``best``).
        map_location: device for the tensors, as in ``torch.load``.
        expect: head kind the caller needs (``"vae"``, ``"gan"``, ``"diffusion"``,
            ``"flow_matching"``); another kind raises ``CheckpointError``.
        use_ema: load the EMA average when the checkpoint has one.

    Returns:
        ``(head, meta)``: the head in eval mode, and a dict with ``kind``, ``head_config``,
        ``data`` (normalization, points per sample, conditional), ``global_step``, ``ema``
        (whether EMA weights were loaded) and ``path``.

    Raises:
        CheckpointError: missing, unreadable, not from pcgen, another head kind, or weights that
            do not fit the saved config.
    """
    from hydra.utils import instantiate

    path = Path(path)
    ckpt = read_checkpoint(path, map_location)
    hp = ckpt["hyper_parameters"]
    kind = hp["kind"]
    if expect is not None and kind != expect:
        raise CheckpointError(f"checkpoint holds a {kind} head, expected {expect}", path)
    global _nesting
    if not isinstance(hp["head"], dict):
        raise CheckpointError("saved head config is not a mapping", path)
    try:
        check_targets(hp["head"])
    except CheckpointError as exc:
        raise CheckpointError(exc.message, path) from None
    if _nesting >= MAX_NESTING:
        raise CheckpointError(f"head config nests checkpoints more than {MAX_NESTING} deep", path)
    _nesting += 1
    try:
        head = instantiate(hp["head"])
    except CheckpointError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"cannot rebuild the {kind} head from its saved config: {first[:200]}",
                              path) from None
    finally:
        _nesting -= 1
    if not isinstance(head, nn.Module):
        raise CheckpointError(f"saved head config builds a {type(head).__name__}, not a model", path)
    state = ckpt["state_dict"]
    has_ema = use_ema and any(k.startswith(EMA_PREFIX) for k in state)
    prefix = EMA_PREFIX if has_ema else HEAD_PREFIX
    weights = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise CheckpointError("checkpoint has no head weights", path)
    try:
        head.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"weights do not fit the saved {kind} config: {first}", path) from None
    head.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    head.eval()
    meta = {
        "kind": kind,
        "head_config": hp["head"],
        "data": hp.get("data", {}),
        "global_step": int(ckpt.get("global_step", 0)),
        "ema": has_ema,
        "path": str(path),
    }
    return head, meta


def load_head_only(path: str | os.PathLike, expect: str | None = None,
                   map_location: Any = "cpu") -> nn.Module:
    """:func:`load_head` without the metadata: a ``_target_`` for configs that nest a trained
    head (the l-GAN's frozen autoencoder)."""
    return load_head(path, map_location=map_location, expect=expect)[0]
