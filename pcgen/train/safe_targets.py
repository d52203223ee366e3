"""Decide whether a checkpoint's saved head config may be given to Hydra's ``instantiate``.

``instantiate`` calls whatever ``_target_`` names, so a downloaded checkpoint could name
``os.system`` or ``pathlib.Path.unlink``; ``torch.load(weights_only=True)`` does not help, the
config is the attack. Before anything is built, every ``_target_`` in the tree (nested dicts,
lists, ``_args_``, ``_partial_`` configs) must be

* a ``torch.nn.Module`` subclass defined in a ``pcgen.models.*`` or ``pcgen.nn.*`` module, found
  by importing only ``pcgen`` modules (so new heads work without a list to maintain), or
* one of the few names in :data:`ALLOWED_TARGETS` (pcgen's own nested-checkpoint loader, torch
  activations, diffusers schedulers), compared as strings without importing anything.

Strings with OmegaConf interpolations (``${...}``) are refused too: resolvers read environment
variables and run registered functions.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from pcgen.errors import CheckpointError

# Exact names outside pcgen.models / pcgen.nn that a saved head may use.
ALLOWED_TARGETS = frozenset({
    "pcgen.train.checkpoint.load_head_only",  # the l-GAN's frozen autoencoder (read through load_head again)
    *(f"torch.nn.{name}" for name in ("ReLU", "LeakyReLU", "GELU", "SiLU", "ELU", "Mish", "Tanh", "Sigmoid",
                                      "Softplus", "Identity")),
    *(f"diffusers.{name}" for name in ("DDPMScheduler", "DDIMScheduler", "EulerDiscreteScheduler",
                                       "FlowMatchEulerDiscreteScheduler")),
})
MODEL_PACKAGES = ("pcgen.models", "pcgen.nn")
# Keys Hydra reads itself; any other ``_x_`` key is unknown and refused.
HYDRA_KEYS = frozenset({"_target_", "_args_", "_partial_", "_recursive_", "_convert_"})
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def _defined_in_models(obj: Any) -> bool:
    module = getattr(obj, "__module__", "") or ""
    return any(module == p or module.startswith(p + ".") for p in MODEL_PACKAGES)


def _static_attr(obj: Any, attr: str) -> Any:
    """``obj.attr`` without running the object's code; a pcgen package's lazy export
    (``_EXPORTS``: name -> pcgen module, imported on first use) is looked up in its module."""
    value = inspect.getattr_static(obj, attr, None)
    exports = inspect.getattr_static(obj, "_EXPORTS", None) if inspect.ismodule(obj) else None
    if value is None and isinstance(exports, dict) and isinstance(exports.get(attr), str) \
            and exports[attr].startswith("pcgen."):
        value = inspect.getattr_static(importlib.import_module(exports[attr]), attr, None)
    return value


def resolve_model_class(target: str) -> type | None:
    """The pcgen model class ``target`` names, or None; imports only ``pcgen`` modules."""
    from torch import nn

    if not _DOTTED.fullmatch(target) or not (target == "pcgen" or target.startswith("pcgen.")):
        return None
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(name)
        except Exception:  # not a module (ImportError) or one that cannot load here
            continue
        for attr in parts[cut:]:
            obj = _static_attr(obj, attr)
            if obj is None:
                return None
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and _defined_in_models(obj):
            return obj
        return None
    return None


def check_targets(cfg: Any, where: str = "head") -> None:
    """Raise ``CheckpointError`` (no path; the caller adds it) unless every target is allowed.

    Args:
        cfg: the saved head config: plain dicts, lists and scalars.
        where: dotted location used in the message.
    """
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if not isinstance(key, str):
                raise CheckpointError(f"head config key {key!r} at {where} is not a string")
            if key.startswith("_") and key.endswith("_") and key not in HYDRA_KEYS:
                raise CheckpointError(f"head config has an unknown Hydra key {key!r} at {where}")
            if key == "_target_":
                if not isinstance(value, str) or not (value in ALLOWED_TARGETS or resolve_model_class(value)):
                    raise CheckpointError(f"refusing to build the head: _target_ {value!r} at {where} is not "
                                          "one of pcgen's model classes")
            elif key == "_partial_" and not isinstance(value, bool):
                raise CheckpointError(f"_partial_ at {where} must be true or false")
            else:
                check_targets(value, f"{where}.{key}")
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            check_targets(value, f"{where}[{i}]")
    elif isinstance(cfg, str):
        if "${" in cfg:
            raise CheckpointError(f"head config at {where} holds an interpolation {cfg[:60]!r}")
    elif cfg is not None and not isinstance(cfg, (bool, int, float)):
        raise CheckpointError(f"head config at {where} holds a {type(cfg).__name__}, not plain data")
