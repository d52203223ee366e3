"""Named loss terms and their weighted, scheduled sum.

The term functions are pure tensor maths over ``pcgen.ops`` (nothing here imports a model), so
heads call them to produce named, unweighted terms and :class:`WeightedLoss` turns those into
the objective from config. Nothing here logs; the trainer logs ``LossOutput.terms``.
"""

from pcgen.losses.adversarial import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    gradient_penalty,
)
from pcgen.losses.denoising import noise_prediction_loss, velocity_loss
from pcgen.losses.kl import kl_loss, kl_normal
from pcgen.losses.reconstruction import chamfer_loss, emd_loss, reconstruction_terms
from pcgen.losses.regularizers import latent_l2, orthogonality_loss
from pcgen.losses.warmup import Constant, Cosine, LinearWarmup
from pcgen.losses.weighted import LossOutput, WeightedLoss

__all__ = [
    "chamfer_loss", "emd_loss", "reconstruction_terms",
    "kl_normal", "kl_loss",
    "generator_adversarial_loss", "discriminator_adversarial_loss", "gradient_penalty",
    "noise_prediction_loss", "velocity_loss",
    "orthogonality_loss", "latent_l2",
    "Constant", "LinearWarmup", "Cosine",
    "WeightedLoss", "LossOutput",
]
