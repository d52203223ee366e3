"""Latent diffusion conditioned on CosPlace embeddings: training recipe and samplers.

The LSUN-churches LDM recipe (Rombach et al. 2022) on diffusers parts: a frozen
``AutoencoderKL`` first stage, a ``UNet2DConditionModel`` denoiser cross-attending to a
``(B, 1, D)`` CosPlace context (a ``UNet2DModel`` with self-attention only when unconditional),
ε-prediction with an L1 loss and an optional learned per-timestep log-variance, latents scaled
by ``1 / std`` of the first training batch, EMA weights, batch-scaled LR with linear warm-up, and
condition dropout so sampling can use classifier-free guidance.
"""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

from pcgen.errors import ConfigError
from pcgen.image.cosplace import CosPlace
from pcgen.image.optim import adamw_with_warmup, scaled_lr
from pcgen.models.noise_schedule import NoiseSchedule

__all__ = ["LatentDiffusion", "ldm_ema_fn", "logvar_weighted_loss"]


def ldm_ema_fn(decay: float):
    """EMA update with LDM's warm-up: ``d_n = min(decay, (1 + n) / (10 + n))`` (for ``AveragedModel``)."""
    def update(ema_params, params, num_averaged):
        n = float(num_averaged)
        d = min(decay, (1.0 + n) / (10.0 + n))
        torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - d)
    return update


def logvar_weighted_loss(loss_simple: Tensor, logvar_t: Tensor) -> Tensor:
    """LDM's ``mean(loss_t / exp(logvar_t) + logvar_t)``; with ``logvar ≡ 0`` it is ``mean(loss_t)``.

    Args:
        loss_simple: ``(B,)`` per-sample noise-prediction loss.
        logvar_t: ``(B,)`` log-variance of each sample's timestep.
    """
    return (loss_simple / torch.exp(logvar_t) + logvar_t).mean()


class LatentDiffusion(L.LightningModule):
    """LDM over a frozen KL autoencoder, optionally conditioned on a frozen CosPlace embedder.

    Args:
        autoencoder: first stage; frozen here (train it with ``AutoencoderModule`` first).
        unet: ``UNet2DConditionModel`` (conditional, ``cross_attention_dim = D``) or ``UNet2DModel``.
        cosplace: frozen embedder giving ``(B, 1, D)`` contexts, or ``None`` for unconditional.
        timesteps, linear_start, linear_end: the noise schedule, LDM's "linear" (linear in √β:
            ``NoiseSchedule("sqrt_linear", spacing="leading")``, no clipping of latents).
        learn_logvar, logvar_init: per-timestep log-variance in the loss (learned or fixed).
        scale_by_std: set ``scale_factor = 1 / std(z)`` from the first training batch, once.
        scale_factor: initial latent scale (used as is when ``scale_by_std`` is off).
        cond_drop_prob: probability of replacing a context by the learned null context.
        base_lr, scale_lr, batch_size: ``lr = base_lr × batch × accumulation × devices`` if ``scale_lr``.
        warmup_steps, warmup_start: linear LR warm-up from ``warmup_start × lr``.
        ema_decay: EMA decay of the denoiser weights; ``None`` turns EMA off.
        config: the preset this model was built from, stored in checkpoints for :func:`load_ldm`.
    """

    def __init__(self, autoencoder: AutoencoderKL, unet: nn.Module, cosplace: CosPlace | None = None, *,
                 timesteps: int = 1000, linear_start: float = 0.0015, linear_end: float = 0.0155,
                 learn_logvar: bool = False, logvar_init: float = 0.0, scale_by_std: bool = True,
                 scale_factor: float = 1.0, cond_drop_prob: float = 0.1, base_lr: float = 5e-5,
                 scale_lr: bool = True, batch_size: int = 96, warmup_steps: int = 10000,
                 warmup_start: float = 1e-6, ema_decay: float | None = 0.9999, config: dict | None = None):
        super().__init__()
        self.conditional = isinstance(unet, UNet2DConditionModel)
        if self.conditional != (cosplace is not None):
            raise ConfigError("a UNet2DConditionModel needs a CosPlace embedder and a UNet2DModel none")
        if self.conditional and unet.config.cross_attention_dim != cosplace.fc_output_dim:
            raise ConfigError(f"unet cross_attention_dim {unet.config.cross_attention_dim} != "
                              f"CosPlace fc_output_dim {cosplace.fc_output_dim}")
        self.autoencoder = autoencoder.eval().requires_grad_(False)
        self.unet = unet
        self.cosplace = cosplace.freeze() if cosplace is not None else None
        self.config = config or {}
        self.timesteps = timesteps
        self.schedule = NoiseSchedule("sqrt_linear", timesteps, linear_start, linear_end, clip_sample=None,
                                      spacing="leading")
        logvar = torch.full((timesteps,), float(logvar_init))
        if learn_logvar:
            self.logvar = nn.Parameter(logvar)
        else:
            self.register_buffer("logvar", logvar)
        self.scale_by_std = scale_by_std
        # Buffers so the factor (and whether it was set) travel with every checkpoint.
        self.register_buffer("scale_factor", torch.tensor(float(scale_factor)))
        self.register_buffer("scale_factor_set", torch.tensor(not scale_by_std))
        if self.conditional:
            self.null_context = nn.Parameter(torch.zeros(1, 1, cosplace.fc_output_dim))
        self.cond_drop_prob = cond_drop_prob
        self.base_lr, self.scale_lr, self.batch_size = base_lr, scale_lr, batch_size
        self.warmup_steps, self.warmup_start = warmup_steps, warmup_start
        self.ema = None
        if ema_decay is not None:
            self.ema = AveragedModel(unet, multi_avg_fn=ldm_ema_fn(ema_decay), use_buffers=False)
            self.ema.requires_grad_(False)

    # -- modes: the frozen parts stay in eval mode whatever Lightning does -------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.autoencoder.eval()
        if self.cosplace is not None:
            self.cosplace.eval()
        if self.ema is not None:
            self.ema.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        params = list(self.unet.parameters())
        if isinstance(self.logvar, nn.Parameter):
            params.append(self.logvar)
        if self.conditional:
            params.append(self.null_context)
        return params

    # -- latents ---------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` in [-1, 1] → scaled latents ``(B, 4, H/8, W/8)`` (a posterior sample)."""
        z = self.autoencoder.encode(images).latent_dist.sample()
        return z * self.scale_factor

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """Scaled latents → images ``(B, 3, H, W)`` clamped to [-1, 1]."""
        return self.autoencoder.decode(latents / self.scale_factor).sample.clamp(-1, 1)

    @torch.no_grad()
    def embed(self, images) -> Tensor | None:
        """CosPlace context ``(B, 1, D)`` of any input CosPlace accepts; ``None`` if unconditional."""
        return None if self.cosplace is None else self.cosplace(images)

    @torch.no_grad()
    def set_scale_factor(self, images: Tensor) -> None:
        """``scale_factor = 1 / std`` of the unscaled latents of ``images``; only the first call counts."""
        if bool(self.scale_factor_set):
            return
        z = self.autoencoder.encode(images).latent_dist.sample()
        self.scale_factor.fill_(1.0 / z.flatten().std().item())
        self.scale_factor_set.fill_(True)

    # -- training --------------------------------------------------------------------------
    def denoise(self, x: Tensor, t: Tensor, context: Tensor | None, use_ema: bool = False) -> Tensor:
        """ε prediction ``(B, 4, h, w)`` of the (EMA) U-Net for noisy latents ``x`` at steps ``t``."""
        net = self.ema.module if (use_ema and self.ema is not None) else self.unet
        if self.conditional:
            return net(x, t, encoder_hidden_states=context).sample
        return net(x, t).sample

    def _contexts(self, batch: dict) -> Tensor | None:
        if not self.conditional:
            return None
        ctx = batch.get("context")
        if ctx is None:
            ctx = self.embed(batch["image"])
        ctx = ctx.to(self.null_context.dtype)
        if self.training and self.cond_drop_prob > 0:
            drop = torch.rand(ctx.shape[0], 1, 1, device=ctx.device) < self.cond_drop_prob
            ctx = torch.where(drop, self.null_context.expand_as(ctx), ctx)
        return ctx

    def loss(self, batch: dict, t: Tensor | None = None, noise: Tensor | None = None) -> dict[str, Tensor]:
        """Named loss terms of one batch ``{"image": (B, 3, H, W) [-1, 1], "context"?: (B, 1, D)}``.

        Returns ``loss`` (optimised), ``loss_simple`` (mean L1 ε error) and ``logvar`` (mean over t).
        """
        z = self.encode(batch["image"])
        b = z.shape[0]
        if t is None:
            t = torch.randint(0, self.timesteps, (b,), device=z.device)
        if noise is None:
            noise = torch.randn_like(z)
        eps = self.denoise(self.schedule.add_noise(z, noise, t), t, self._contexts(batch))
        loss_simple = (eps - noise).abs().mean(dim=(1, 2, 3))
        logvar_t = self.logvar[t]
        return {"loss": logvar_weighted_loss(loss_simple, logvar_t),
                "loss_simple": loss_simple.mean(), "logvar": logvar_t.mean().detach()}

    def on_train_batch_start(self, batch, batch_idx):
        if self.scale_by_std:
            self.set_scale_factor(batch["image"])

    def training_step(self, batch, batch_idx):
        terms = self.loss(batch)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=True,
                      batch_size=batch["image"].shape[0])
        self.log("train/scale_factor", self.scale_factor, batch_size=batch["image"].shape[0])
        return terms["loss"]

    def optimizer_step(self, *args, **kwargs):
        super().optimizer_step(*args, **kwargs)
        if self.ema is not None:
            self.ema.update_parameters(self.unet)

    def configure_optimizers(self):
        trainer = self._trainer
        accumulate = trainer.accumulate_grad_batches if trainer is not None else 1
        devices = (trainer.num_devices * trainer.num_nodes) if trainer is not None else 1
        lr = scaled_lr(self.base_lr, self.batch_size, accumulate, devices, self.scale_lr)
        return adamw_with_warmup(self.trainable_parameters(), lr, self.warmup_steps, self.warmup_start)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["pcgen_image"] = {"kind": "ldm", "config": self.config}

    # -- sampling --------------------------------------------------------------------------
    def check_sampling(self, sampler: str, steps: int, eta: float, guidance_scale: float) -> None:
        """Raise ``ConfigError`` naming the first sampling setting :meth:`sample` cannot use.

        ``eta`` is DDIM's η in [0, 1] (0 deterministic, 1 ≈ DDPM's variance; above 1 the noise
        can outgrow the step and the update takes the root of a negative number) and applies to
        DDIM only; ``guidance_scale`` is in [0, 1000] (1 = off).
        """
        from pcgen.options import check_range

        if sampler not in ("ddpm", "ddim"):
            raise ConfigError(f"sampler must be 'ddpm' or 'ddim', got {sampler!r}")
        top = self.timesteps - (sampler == "ddim")
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= top:
            raise ConfigError(f"steps must be a whole number in [1, {top}] for {sampler}, got {steps!r}")
        check_range("eta", eta, 0.0, 1.0)
        if eta != 0 and sampler != "ddim":
            raise ConfigError(f"eta applies to the ddim sampler only, got eta {eta:g} with {sampler}")
        check_range("guidance_scale", guidance_scale, 0.0, 1000.0)

    @torch.no_grad()
    def sample(self, num_samples: int | None = None, context: Tensor | None = None, *,
               sampler: Literal["ddim", "ddpm"] = "ddim", steps: int = 50, eta: float = 0.0,
               guidance_scale: float = 1.0, use_ema: bool = True, generator: torch.Generator | None = None,
               progress: bool = False) -> Tensor:
        """Generate images ``(B, 3, H, W)`` in [-1, 1].

        Args:
            num_samples: ``B`` for unconditional sampling (or to repeat a single context).
            context: ``(B, 1, D)`` CosPlace embeddings; required by conditional models.
            sampler: ``"ddim"`` (``eta`` = 0 deterministic, 1 ≈ DDPM) or ``"ddpm"`` (ancestral).
            steps: number of denoising steps: up to ``timesteps`` for DDPM, ``timesteps − 1`` for
                DDIM (its leading spacing is offset by one, as in LDM, so a full count would ask
                for step ``timesteps``, one past the schedule).
            guidance_scale: classifier-free guidance ``s``: ``ε_u + s (ε_c − ε_u)``; 1 = plain conditional.
            use_ema: sample with the EMA weights when present.

        Raises:
            ConfigError: a setting :meth:`check_sampling` refuses, ``num_samples`` below 1 or not a
                whole number, or ``num_samples`` other than 1 or the number of contexts given.
        """
        self.check_sampling(sampler, steps, eta, guidance_scale)
        if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, int)
                                        or num_samples < 1):
            raise ConfigError(f"num_samples must be a whole number >= 1, got {num_samples!r}")
        if self.conditional:
            if context is None:
                if guidance_scale != 1.0 or num_samples is None:
                    raise ConfigError("a conditional model needs CosPlace contexts to sample from")
                context = self.null_context.expand(num_samples, -1, -1)
            elif num_samples is not None and context.shape[0] == 1:
                context = context.expand(num_samples, -1, -1)
            elif num_samples is not None and context.shape[0] != num_samples:
                raise ConfigError(f"num_samples {num_samples} does not match the {context.shape[0]} contexts "
                                  "given (give one context to repeat, or num_samples None)")
            context = context.to(self.device, self.null_context.dtype)
            b = context.shape[0]
        else:
            if context is not None:
                raise ConfigError("an unconditional model takes no contexts")
            if num_samples is None:
                raise ConfigError("num_samples is required for an unconditional model")
            b = num_samples
        sched = self.schedule.ddpm() if sampler == "ddpm" else self.schedule.ddim()
        sched.set_timesteps(steps)
        size = self.unet.config.sample_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        x = torch.randn((b, self.unet.config.in_channels, *size), generator=generator,
                        device=self.device if generator is None else generator.device).to(self.device)
        use_cfg = self.conditional and guidance_scale != 1.0
        timesteps = sched.timesteps
        if progress:
            from tqdm import tqdm

            timesteps = tqdm(timesteps, desc=f"{sampler}-{steps}", leave=False)
        for t in timesteps:
            tt = torch.full((b,), int(t), device=self.device, dtype=torch.long)
            if use_cfg:
                eps_c, eps_u = self.denoise(torch.cat([x, x]), torch.cat([tt, tt]),
                                            torch.cat([context, self.null_context.expand_as(context)]),
                                            use_ema).chunk(2)
                eps = eps_u + guidance_scale * (eps_c - eps_u)
            else:
                eps = self.denoise(x, tt, context, use_ema)
            kwargs = {"eta": eta} if sampler == "ddim" else {}
            x = sched.step(eps, t, x, generator=generator, **kwargs).prev_sample
        return self.decode(x)

    @torch.no_grad()
    def log_images(self, batch: dict, max_images: int = 8, steps: int = 50) -> dict[str, Tensor]:
        """Inputs, first-stage reconstructions and samples (from the batch's contexts) for the logger."""
        x = batch["image"][:max_images]
        out = {"inputs": x, "reconstructions": self.decode(self.encode(x))}
        ctx = None
        if self.conditional:
            ctx = batch.get("context")
            ctx = self.embed(x) if ctx is None else ctx[:max_images]
        out["samples"] = self.sample(None if ctx is not None else x.shape[0], ctx, steps=steps)
        return out
