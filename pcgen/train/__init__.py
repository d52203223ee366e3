"""Training: Lightning modules per head family, EMA, sample renders, data module, checkpoints.

``pcgen.train.run.train(cfg)`` is what ``train.py`` calls after Hydra composes the config;
``pcgen.train.checkpoint.load_head`` rebuilds a trained head for the tasks and the evaluation.
"""

from pcgen.train.checkpoint import load_head
from pcgen.train.module import GANModule, HeadModule

__all__ = ["GANModule", "HeadModule", "load_head"]
