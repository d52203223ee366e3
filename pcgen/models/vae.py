"""Point-VAE: encoder → (mean, log-variance) → reparameterized z → decoder to N points."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError
from pcgen.losses import kl_loss, reconstruction_terms
from pcgen.losses.reconstruction import EMDMethod, check_kinds
from pcgen.models._util import module_device, regularization
from pcgen.models.conditioning import ContextEncoder, finish_samples, prepare_batch, prepare_sampling


class VAEHead(nn.Module):
    """Variational autoencoder over point sets, optionally conditioned on a gap's context.

    Terms of ``loss``: the reconstruction distances asked for ("chamfer" and/or "emd"), "kl"
    (closed-form KL to N(0, I), summed over latent dims, with ``free_bits`` nats per dim as a
    floor), and "regularization" when the encoder has one. β is the weight the trainer's
    :class:`pcgen.losses.WeightedLoss` puts on "kl" (with a warm-up schedule for annealing).

    When conditional, both the posterior q(z | x, c) (via the encoder's ``cond`` input) and the
    decoder p(x | z, c) see c; the prior stays N(0, I), so sampling is z ~ N(0, I) plus c.

    Args:
        encoder: a ``pcgen.nn`` encoder; built with ``cond_dim = context_encoder.out_dim`` when
            conditional, else 0.
        decoder: ``forward(z (B, latent_dim + C), num_points) -> (B, N, 3)`` (see ``decoders.py``).
        latent_dim: size of z.
        context_encoder: makes the head conditional (gap filling); None for unconditional.
        reconstruction: which distances to report, any of "chamfer", "emd".
        free_bits: per-dimension KL floor in nats.
        emd_method: ``pcgen.ops.emd`` solver for the "emd" term.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int = 128,
                 context_encoder: ContextEncoder | None = None,
                 reconstruction: tuple[str, ...] = ("chamfer",), free_bits: float = 0.0,
                 emd_method: EMDMethod = "auction"):
        super().__init__()
        self.encoder, self.decoder, self.context_encoder = encoder, decoder, context_encoder
        self.latent_dim = latent_dim
        self.cond_dim = context_encoder.out_dim if context_encoder is not None else 0
        self.reconstruction = check_kinds(reconstruction)
        if not self.reconstruction:
            raise ConfigError("VAEHead needs at least one reconstruction term ('chamfer' or 'emd')")
        if free_bits < 0:
            raise ConfigError(f"free_bits must be >= 0, got {free_bits}")
        dec_in = getattr(decoder, "latent_dim", latent_dim + self.cond_dim)
        if dec_in != latent_dim + self.cond_dim:
            raise ConfigError(f"decoder takes {dec_in} inputs but latent_dim + cond_dim = "
                              f"{latent_dim} + {self.cond_dim}")
        self.free_bits, self.emd_method = free_bits, emd_method
        self.to_stats = nn.Linear(encoder.global_dim, 2 * latent_dim)

    def posterior(self, points: Tensor, cond: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """q(z | x, c) in the head's working frame.

        Args:
            points: (B, N, 3).
            cond: (B, C) or None.

        Returns:
            mean (B, L), logvar (B, L).
        """
        feat = self.encoder(points, cond=cond).global_feature
        mean, logvar = self.to_stats(feat).chunk(2, dim=-1)
        return mean, logvar.clamp(-30.0, 20.0)  # keeps exp() finite early in training

    def decode(self, z: Tensor, num_points: int, cond: Tensor | None = None) -> Tensor:
        """p(x | z, c) mean: (B, L) → (B, num_points, 3) in the working frame."""
        return self.decoder(z if cond is None else torch.cat([z, cond], dim=-1), num_points)

    def encode_batch(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        """Deterministic latent (posterior mean) of a batch and its condition, for l-GAN.

        Returns:
            z (B, L), c (B, C) or None.
        """
        points, cond = prepare_batch(self.context_encoder, batch)
        return self.posterior(points, cond)[0], cond

    def condition(self, num_samples: int, context: Tensor | None, gap_box: Tensor | None) -> Tensor | None:
        """The condition vector c for sampling (None when unconditional)."""
        return prepare_sampling(self.context_encoder, num_samples, context, gap_box)

    def finish(self, points: Tensor, gap_box: Tensor | None) -> Tensor:
        """Map decoded points back to the caller's frame (into the gap box when conditional)."""
        return finish_samples(self.context_encoder, points, gap_box)

    def loss(self, batch: dict) -> dict[str, Tensor]:
        """Named, unweighted ELBO terms.

        Args:
            batch: {"points": (B, N, 3)} (+ "context" (B, M, 3), "gap_box" (B, 4) when conditional).

        Returns:
            {"chamfer"/"emd": (), "kl": (), ["regularization": ()]}.
        """
        points, cond = prepare_batch(self.context_encoder, batch)
        mean, logvar = self.posterior(points, cond)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        recon = self.decode(z, points.shape[1], cond)
        terms = reconstruction_terms(recon, points, self.reconstruction, self.emd_method)
        terms["kl"] = kl_loss(mean, logvar, self.free_bits)
        reg = regularization(self.encoder, getattr(self.context_encoder, "encoder", None))
        if reg is not None:
            terms["regularization"] = reg
        return terms

    @torch.no_grad()
    def sample(self, num_samples: int, num_points: int, context: Tensor | None = None,
               gap_box: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Decode z ~ N(0, I).

        Args:
            num_samples: B.
            num_points: N per cloud.
            context: (B, M, 3) partial cloud (conditional heads only).
            gap_box: (B, 4) gap (xmin, ymin, xmax, ymax) in the same frame.
            generator: RNG for z (on the head's device).

        Returns:
            (B, N, 3); conditional samples lie inside the gap box in xy.
        """
        cond = self.condition(num_samples, context, gap_box)
        z = torch.randn(num_samples, self.latent_dim, generator=generator, device=module_device(self))
        return self.finish(self.decode(z, num_points, cond), gap_box)


__all__ = ["VAEHead"]
