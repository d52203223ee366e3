"""Training: Lightning modules per head family, EMA, sample renders, data module, checkpoints.

``pcgen.train.run.train(cfg)`` is what ``train.py`` calls after Hydra composes the config;
``pcgen.train.checkpoint.load_head`` rebuilds a trained head for the tasks and the evaluation.
"""

from pcgen.lazy import lazy_names

# name -> module, imported on first use (pcgen.lazy): loading one head imports only its own
_EXPORTS = {
    "GANModule": "pcgen.train.module",
    "HeadModule": "pcgen.train.module",
    "load_head": "pcgen.train.checkpoint",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
