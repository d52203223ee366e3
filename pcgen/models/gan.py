"""Point-GAN: a generator from noise to points (or, as l-GAN, to a frozen autoencoder's latents)
and a discriminator; non-saturating or WGAN-GP objectives for manual (two-optimizer) training."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError
from pcgen.losses import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    gradient_penalty,
    reconstruction_terms,
)
from pcgen.losses.reconstruction import EMDMethod, check_kinds
from pcgen.models._util import module_device, regularization
from pcgen.models.conditioning import ContextEncoder, finish_samples, prepare_batch, prepare_sampling
from pcgen.models.decoders import mlp
from pcgen.models.vae import VAEHead

GANLoss = Literal["ns", "wgan-gp"]


class PointDiscriminator(nn.Module):
    """A ``pcgen.nn`` encoder plus a linear score on its global feature (and the condition).

    Args:
        encoder: built with ``cond_dim=0``; the condition joins after pooling.
        cond_dim: C of the condition vector (0 when unconditional).
    """

    def __init__(self, encoder: nn.Module, cond_dim: int = 0):
        super().__init__()
        self.encoder, self.cond_dim = encoder, cond_dim
        self.score = nn.Linear(encoder.global_dim + cond_dim, 1)

    def forward(self, points: Tensor, cond: Tensor | None = None) -> Tensor:
        """Args: points (B, N, 3), cond (B, C) or None. Returns: (B,) scores/logits."""
        feat = self.encoder(points).global_feature
        if cond is not None:
            feat = torch.cat([feat, cond], dim=-1)
        return self.score(feat).squeeze(-1)

    def regularization(self) -> Tensor | None:
        return regularization(self.encoder)


class LatentMLP(nn.Module):
    """MLP on vectors: the l-GAN generator (noise → latent) and discriminator (latent → score).

    Args:
        in_dim: input size (plus the condition size when conditional).
        out_dim: output size (1 for a discriminator).
        hidden: hidden widths.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.latent_dim, self.out_dim = in_dim, out_dim
        self.net = mlp([in_dim, *hidden, out_dim], activation=lambda: nn.LeakyReLU(0.2))

    def forward(self, x: Tensor, cond_or_points=None) -> Tensor:
        """Generator use: ``forward(z (B, in_dim), num_points)`` → (B, out_dim); discriminator
        use: ``forward(latent (B, L), cond (B, C) | None)`` → (B,) when out_dim == 1."""
        if isinstance(cond_or_points, Tensor):
            x = torch.cat([x, cond_or_points], dim=-1)
        out = self.net(x)
        return out.squeeze(-1) if self.out_dim == 1 else out


class GANHead(nn.Module):
    """Point-cloud GAN, in point space (r-GAN) or in a frozen autoencoder's latent space (l-GAN).

    The trainer uses manual optimization with two optimizers over
    :meth:`generator_parameters` and :meth:`discriminator_parameters`, calling
    :meth:`discriminator_loss` then :meth:`generator_loss` each step.

    Terms: generator "gen_adv" (+ "chamfer"/"emd" against the true gap points when conditional
    and asked for); discriminator "disc_adv" (+ "gradient_penalty" for WGAN-GP). With
    ``loss="ns"`` scores are logits; with "wgan-gp" they are critic values.

    Args:
        generator: point space: ``forward(z (B, noise_dim + C), num_points) -> (B, N, 3)`` (an
            ``MLPDecoder``/``FoldingDecoder``); latent space: a :class:`LatentMLP` to the
            autoencoder's latent size.
        discriminator: :class:`PointDiscriminator` (point space) or :class:`LatentMLP` with
            out_dim=1 (latent space); takes ``(x, cond)``.
        noise_dim: size of the generator's noise z.
        loss: "ns" (non-saturating) or "wgan-gp".
        context_encoder: point-space conditional GAN (gap filling); trained with the generator,
            the discriminator sees its output detached.
        autoencoder: a trained :class:`VAEHead` whose latent space the GAN models (l-GAN); it is
            frozen and its own context encoder provides the condition.
        reconstruction: "chamfer"/"emd" terms for conditional point-space generation.
        emd_method: ``pcgen.ops.emd`` solver.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, noise_dim: int = 128,
                 loss: GANLoss = "ns", context_encoder: ContextEncoder | None = None,
                 autoencoder: VAEHead | None = None, reconstruction: tuple[str, ...] = (),
                 emd_method: EMDMethod = "auction"):
        super().__init__()
        if loss not in ("ns", "wgan-gp"):
            raise ConfigError(f"GAN loss must be 'ns' or 'wgan-gp', got {loss!r}")
        if autoencoder is not None and context_encoder is not None:
            raise ConfigError("an l-GAN takes its condition from the autoencoder; pass no context_encoder")
        self.generator, self.discriminator = generator, discriminator
        self.context_encoder, self.autoencoder = context_encoder, autoencoder
        self.noise_dim, self.loss_type, self.emd_method = noise_dim, loss, emd_method
        self.reconstruction = check_kinds(reconstruction)
        conditional = context_encoder is not None or (autoencoder is not None and autoencoder.context_encoder is not None)
        if self.reconstruction and (autoencoder is not None or not conditional):
            raise ConfigError("reconstruction terms need a conditional point-space GAN (ground-truth gap points)")
        cond_dim = (context_encoder.out_dim if context_encoder is not None
                    else autoencoder.cond_dim if autoencoder is not None else 0)
        gen_in = getattr(generator, "latent_dim", noise_dim + cond_dim)
        if gen_in != noise_dim + cond_dim:
            raise ConfigError(f"generator takes {gen_in} inputs but noise_dim + cond_dim = {noise_dim} + {cond_dim}")
        if autoencoder is not None:
            autoencoder.requires_grad_(False)
            autoencoder.eval()

    # -- parameter groups for the two optimizers --------------------------------------------
    def generator_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.generator.parameters()
        if self.context_encoder is not None:
            yield from self.context_encoder.parameters()

    def discriminator_parameters(self) -> Iterator[nn.Parameter]:
        yield from self.discriminator.parameters()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.autoencoder is not None:
            self.autoencoder.eval()  # frozen: no dropout/batch-norm updates in the l-GAN's AE
        return self

    # -- internals ---------------------------------------------------------------------------
    def _real(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        if self.autoencoder is not None:
            with torch.no_grad():
                return self.autoencoder.encode_batch(batch)
        return prepare_batch(self.context_encoder, batch)

    def _generate(self, num_samples: int, num_points: int, cond: Tensor | None,
                  generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(num_samples, self.noise_dim, generator=generator, device=module_device(self))
        return self.generator(z if cond is None else torch.cat([z, cond], dim=-1), num_points)

    # -- losses ------------------------------------------------------------------------------
    def generator_loss(self, batch: dict) -> dict[str, Tensor]:
        """Generator terms on one batch: {"gen_adv", ["chamfer"/"emd"]}."""
        real, cond = self._real(batch)
        fake = self._generate(real.shape[0], real.shape[1] if real.dim() == 3 else 0, cond)
        d_cond = None if cond is None else cond.detach()
        kind = "ns" if self.loss_type == "ns" else "wgan"
        terms = {"gen_adv": generator_adversarial_loss(self.discriminator(fake, d_cond), kind)}
        terms.update(reconstruction_terms(fake, real, self.reconstruction, self.emd_method))
        return terms

    def discriminator_loss(self, batch: dict) -> dict[str, Tensor]:
        """Discriminator terms on one batch: {"disc_adv", ["gradient_penalty"], ["regularization"]}."""
        real, cond = self._real(batch)
        cond = None if cond is None else cond.detach()
        with torch.no_grad():
            fake = self._generate(real.shape[0], real.shape[1] if real.dim() == 3 else 0, cond)
        kind = "ns" if self.loss_type == "ns" else "wgan"
        terms = {"disc_adv": discriminator_adversarial_loss(
            self.discriminator(real, cond), self.discriminator(fake, cond), kind)}
        if self.loss_type == "wgan-gp":
            terms["gradient_penalty"] = gradient_penalty(lambda x: self.discriminator(x, cond), real, fake)
        reg = regularization(self.discriminator)
        if reg is not None:
            terms["regularization"] = reg
        return terms

    def loss(self, batch: dict) -> dict[str, Tensor]:
        """Both players' terms in one dict (validation logging; training uses the two calls)."""
        return {**self.discriminator_loss(batch), **self.generator_loss(batch)}

    @torch.no_grad()
    def sample(self, num_samples: int, num_points: int, context: Tensor | None = None,
               gap_box: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Generate (B, num_points, 3) clouds (inside the gap box when conditional)."""
        if self.autoencoder is not None:
            cond = self.autoencoder.condition(num_samples, context, gap_box)
            z = self._generate(num_samples, num_points, cond, generator)
            return self.autoencoder.finish(self.autoencoder.decode(z, num_points, cond), gap_box)
        cond = prepare_sampling(self.context_encoder, num_samples, context, gap_box)
        points = self._generate(num_samples, num_points, cond, generator)
        return finish_samples(self.context_encoder, points, gap_box)


__all__ = ["GANHead", "PointDiscriminator", "LatentMLP"]
