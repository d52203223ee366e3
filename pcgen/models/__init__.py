"""Generative heads over the shared encoders: VAE, GAN (incl. l-GAN), diffusion, flow matching.

Every head receives its parts (networks, schedules), never a config; each exposes
``loss(batch) -> {name: term}`` (unweighted) and ``sample(num_samples, num_points, context=None,
gap_box=None, generator=None) -> (B, num_points, 3)``. With a :class:`ContextEncoder` a head
generates the points inside a gap from the surrounding cloud. :class:`GapOffsetHead`, :class:`GapFlowHead`,
:class:`GapDiffusionHead`, :class:`GapVAEHead` and :class:`GapGANHead` fill gaps in the gap frame (metres, heights above ground) starting
from copied and interpolated points (:mod:`pcgen.models.gap_head`).
"""

from pcgen.models.conditioning import ContextEncoder, from_box_frame, to_box_frame
from pcgen.models.decoders import FoldingDecoder, MLPDecoder
from pcgen.models.denoiser import PointDenoiser
from pcgen.models.diffusion import DiffusionHead
from pcgen.models.flow_matching import FlowMatchingHead
from pcgen.models.gan import GANHead, LatentMLP, PointDiscriminator
from pcgen.models.gap_diffusion import GapDiffusionHead
from pcgen.models.gap_flow import GapFlowHead
from pcgen.models.gap_gan import GapDiscriminator, GapGANHead
from pcgen.models.gap_offset import GapOffsetHead
from pcgen.models.gap_vae import GapVAEHead
from pcgen.models.noise_schedule import NoiseSchedule
from pcgen.models.vae import VAEHead

__all__ = [
    "VAEHead", "GANHead", "DiffusionHead", "FlowMatchingHead", "GapOffsetHead", "GapFlowHead", "GapDiffusionHead", "GapVAEHead",
    "GapGANHead", "GapDiscriminator",
    "MLPDecoder", "FoldingDecoder", "PointDiscriminator", "LatentMLP", "PointDenoiser",
    "NoiseSchedule", "ContextEncoder", "to_box_frame", "from_box_frame",
]
