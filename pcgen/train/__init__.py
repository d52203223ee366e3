"""Training: Lightning modules per head family, EMA, sample renders, data module, checkpoints.

``pcgen.train.run.train(cfg)`` is what ``train.py`` calls after Hydra composes the config;
``pcgen.train.checkpoint.load_head`` rebuilds a trained head for the tasks and the evaluation.
"""

import importlib

# name -> module; each is imported on first use, so loading one head does not import every
# model family's libraries (Lightning, diffusers, torch-geometric: seconds per process)
_EXPORTS = {
    "GANModule": "pcgen.train.module",
    "HeadModule": "pcgen.train.module",
    "load_head": "pcgen.train.checkpoint",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
