"""Generative heads over the shared encoders: VAE, GAN (incl. l-GAN), diffusion, flow matching.

Every head receives its parts (networks, schedules), never a config; each exposes
``loss(batch) -> {name: term}`` (unweighted) and ``sample(num_samples, num_points, context=None,
gap_box=None, generator=None) -> (B, num_points, 3)``. With a :class:`ContextEncoder` a head
generates the points inside a gap from the surrounding cloud. :class:`GapOffsetHead`, :class:`GapFlowHead`,
:class:`GapDiffusionHead`, :class:`GapVAEHead` and :class:`GapGANHead` fill gaps in the gap frame (metres, heights above ground) starting
from copied and interpolated points (:mod:`pcgen.models.gap_head`).
"""

from pcgen.lazy import lazy_names

# name -> module, imported on first use (pcgen.lazy): loading one head imports only its own
_EXPORTS = {
    "ContextEncoder": "pcgen.models.conditioning",
    "DiffusionHead": "pcgen.models.diffusion",
    "FlowMatchingHead": "pcgen.models.flow_matching",
    "FoldingDecoder": "pcgen.models.decoders",
    "GANHead": "pcgen.models.gan",
    "GapDiffusionHead": "pcgen.models.gap_diffusion",
    "GapDiscriminator": "pcgen.models.gap_gan",
    "GapFlowHead": "pcgen.models.gap_flow",
    "GapGANHead": "pcgen.models.gap_gan",
    "GapOffsetHead": "pcgen.models.gap_offset",
    "GapVAEHead": "pcgen.models.gap_vae",
    "LatentMLP": "pcgen.models.gan",
    "MLPDecoder": "pcgen.models.decoders",
    "NoiseSchedule": "pcgen.models.noise_schedule",
    "PointDenoiser": "pcgen.models.denoiser",
    "PointDiscriminator": "pcgen.models.gan",
    "VAEHead": "pcgen.models.vae",
    "from_box_frame": "pcgen.models.conditioning",
    "to_box_frame": "pcgen.models.conditioning",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
