"""First stage: a KL-regularised autoencoder (diffusers ``AutoencoderKL``, f = 8, 4 latent channels).

Training follows LDM's KL autoencoder objective without its perceptual and patch-GAN terms
(those need pretrained VGG weights that are not available offline): per-image summed L1
reconstruction plus ``kl_weight`` × the summed KL of the diagonal-Gaussian posterior, both
averaged over the batch, Adam(0.5, 0.9) at a batch-scaled LR.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch
from diffusers import AutoencoderKL
from torch import Tensor

from pcgen.errors import CheckpointError
from pcgen.image.checkpoint import load_state_strict, read_checkpoint
from pcgen.image.optim import lr_warmup, scaled_lr

__all__ = ["AutoencoderModule", "build_autoencoder", "load_autoencoder", "downsampling_factor"]


def build_autoencoder(**kwargs) -> AutoencoderKL:
    """``AutoencoderKL(**kwargs)`` with list arguments turned into the tuples diffusers expects."""
    return AutoencoderKL(**{k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()})


def downsampling_factor(vae: AutoencoderKL) -> int:
    """Spatial downsampling of the encoder: ``2 ** (len(block_out_channels) - 1)``."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


class AutoencoderModule(L.LightningModule):
    """Lightning training of an ``AutoencoderKL`` on ``{"image": (B, 3, H, W) in [-1, 1]}`` batches.

    Args:
        vae: the autoencoder to train.
        base_lr, batch_size, scale_lr: ``lr = base_lr × batch × accumulation × devices`` if ``scale_lr``.
        kl_weight: weight of the KL term (LDM: 1e-6).
        warmup_steps: linear warm-up (0 = none).
        config: the ``autoencoder`` section of the preset, stored for :func:`load_autoencoder`.
    """

    def __init__(self, vae: AutoencoderKL, *, base_lr: float = 4.5e-6, batch_size: int = 12,
                 scale_lr: bool = True, kl_weight: float = 1e-6, warmup_steps: int = 0,
                 config: dict | None = None):
        super().__init__()
        self.vae = vae
        self.base_lr, self.batch_size, self.scale_lr = base_lr, batch_size, scale_lr
        self.kl_weight, self.warmup_steps = kl_weight, warmup_steps
        self.config = config or {}

    def loss(self, images: Tensor, sample_posterior: bool = True) -> dict[str, Tensor]:
        """``loss`` = rec + kl_weight·kl, with ``rec`` (per-image summed L1) and ``kl`` (per-image sum)."""
        posterior = self.vae.encode(images).latent_dist
        z = posterior.sample() if sample_posterior else posterior.mode()
        recon = self.vae.decode(z).sample
        b = images.shape[0]
        rec = (recon - images).abs().reshape(b, -1).sum(1).mean()
        kl = posterior.kl().mean()
        return {"loss": rec + self.kl_weight * kl, "rec": rec, "kl": kl,
                "l1": (recon - images).abs().mean().detach()}

    def training_step(self, batch, batch_idx):
        terms = self.loss(batch["image"])
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=True,
                      batch_size=batch["image"].shape[0])
        return terms["loss"]

    def configure_optimizers(self):
        trainer = self._trainer
        accumulate = trainer.accumulate_grad_batches if trainer is not None else 1
        devices = (trainer.num_devices * trainer.num_nodes) if trainer is not None else 1
        lr = scaled_lr(self.base_lr, self.batch_size, accumulate, devices, self.scale_lr)
        opt = torch.optim.Adam(self.vae.parameters(), lr=lr, betas=(0.5, 0.9))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_warmup(self.warmup_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["pcgen_image"] = {"kind": "autoencoder", "config": self.config}

    @torch.no_grad()
    def log_images(self, batch: dict, max_images: int = 8, steps: int = 0) -> dict[str, Tensor]:
        x = batch["image"][:max_images]
        return {"inputs": x, "reconstructions": self.vae.decode(self.vae.encode(x).latent_dist.mode()).sample}


def load_autoencoder(path: str | os.PathLike) -> AutoencoderKL:
    """Load a first stage: a pcgen autoencoder checkpoint file or a diffusers ``save_pretrained`` folder.

    Raises:
        CheckpointError: unreadable, another kind of checkpoint, or mismatched keys (named).
    """
    path = Path(path)
    if path.is_dir():
        try:
            return AutoencoderKL.from_pretrained(path, local_files_only=True).eval()
        except Exception as exc:
            raise CheckpointError(f"not a diffusers AutoencoderKL folder ({str(exc).splitlines()[0][:160]})",
                                  path) from None
    ckpt = read_checkpoint(path)
    meta = ckpt.get("pcgen_image") if isinstance(ckpt, dict) else None
    if not meta or meta.get("kind") not in ("autoencoder", "ldm"):
        raise CheckpointError("not a pcgen image autoencoder checkpoint (no pcgen_image autoencoder entry)", path)
    config = meta["config"]
    ae_cfg = config if meta["kind"] == "autoencoder" else config.get("autoencoder", {})
    prefix = "vae." if meta["kind"] == "autoencoder" else "autoencoder."
    ae_cfg = {k: v for k, v in ae_cfg.items() if not k.startswith("_")}
    vae = build_autoencoder(**ae_cfg)
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    load_state_strict(vae, state, "AutoencoderKL", path)
    return vae.eval()
