"""Fit the two stages on an image folder: the autoencoder, then the LDM on its latents.

Both write one self-contained Lightning checkpoint (weights, optimizer state, preset under
``checkpoint["pcgen_image"]``) through a temporary name, so a crashed run leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from pcgen.atomic import atomic_path
from pcgen.image.autoencoder import AutoencoderModule, build_autoencoder, load_autoencoder
from pcgen.image.callbacks import ImageLogger
from pcgen.image.config import to_plain, build_cosplace, build_ldm
from pcgen.image.cosplace import CosPlace
from pcgen.image.data import ImageFolder

__all__ = ["fit_autoencoder", "fit_ldm", "embed_folder"]


class _WithContext(Dataset):
    """Image items plus their precomputed CosPlace context ``(1, D)``."""

    def __init__(self, images: ImageFolder, contexts: torch.Tensor):
        self.images, self.contexts = images, contexts

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        item = self.images[i]
        item["context"] = self.contexts[i]
        return item


@torch.no_grad()
def embed_folder(cosplace, folder: ImageFolder, chunk: int = 8) -> torch.Tensor:
    """CosPlace contexts ``(N, 1, D)`` of a folder's original (full-resolution) images."""
    pil = [it.image for it in folder.items]
    return torch.cat([cosplace(pil[i:i + chunk]) for i in range(0, len(pil), chunk)])


def _trainer(cfg, max_steps: int, log_dir: Path, callbacks) -> L.Trainer:
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    return L.Trainer(max_steps=max_steps, accelerator="auto", devices=1, logger=False,
                     enable_checkpointing=False, enable_model_summary=False,
                     enable_progress_bar=os.isatty(2), callbacks=callbacks,
                     accumulate_grad_batches=cfg.trainer.accumulate_grad_batches,
                     precision=cfg.trainer.get("precision", "32-true"), log_every_n_steps=10,
                     default_root_dir=str(log_dir))


def _loader(cfg, dataset) -> DataLoader:
    return DataLoader(dataset, batch_size=min(cfg.data.batch_size, len(dataset)), shuffle=True,
                      drop_last=True, num_workers=cfg.data.get("num_workers", 0))


def fit_autoencoder(cfg, images: str | os.PathLike, out: str | os.PathLike, max_steps: int | None = None,
                    log_dir: str | os.PathLike | None = None) -> Path:
    """Train the preset's ``AutoencoderKL`` on ``images``; write its checkpoint to ``out``."""
    out = Path(out)
    log_dir = Path(log_dir) if log_dir else out.parent / "images_autoencoder"
    folder = ImageFolder(images, cfg.data.image_size, flip=cfg.data.get("flip", False))
    ae_cfg = {k: v for k, v in to_plain(cfg.autoencoder).items() if not k.startswith("_")}
    t = cfg.autoencoder_train
    module = AutoencoderModule(build_autoencoder(**ae_cfg), base_lr=t.base_lr, batch_size=t.batch_size,
                               scale_lr=t.scale_lr, kl_weight=t.kl_weight, warmup_steps=t.warmup_steps,
                               config=ae_cfg)
    logger = ImageLogger(log_dir, cfg.trainer.log_every_n_batches, cfg.trainer.log_max_images)
    trainer = _trainer(cfg, max_steps or cfg.trainer.autoencoder_steps, log_dir, [logger])
    loader = DataLoader(folder, batch_size=min(t.batch_size, len(folder)), shuffle=True, drop_last=True,
                        num_workers=cfg.data.get("num_workers", 0))
    trainer.fit(module, loader)
    with atomic_path(out) as tmp:
        trainer.save_checkpoint(tmp)
    return out


def fit_ldm(cfg, images: str | os.PathLike, out: str | os.PathLike, autoencoder: str | os.PathLike,
            max_steps: int | None = None, log_dir: str | os.PathLike | None = None,
            cosplace: CosPlace | None = None) -> Path:
    """Train the LDM of ``cfg`` on ``images`` over the first stage in ``autoencoder``; write ``out``.

    CosPlace contexts are computed once per image (the embedder is frozen), from the full-resolution
    image as CosPlace sees it; horizontal flips are therefore off for conditional training.

    Args:
        cosplace: the preset's embedder if already built (:func:`build_cosplace`, e.g. to check
            its checkpoint before a long first stage); default: built here.
    """
    out = Path(out)
    log_dir = Path(log_dir) if log_dir else out.parent / "images_ldm"
    vae = load_autoencoder(autoencoder)
    if cosplace is None:
        cosplace = build_cosplace(cfg)
    folder = ImageFolder(images, cfg.data.image_size, flip=cosplace is None and cfg.data.get("flip", False))
    model = build_ldm(cfg, autoencoder=vae, cosplace=cosplace)
    dataset = folder if cosplace is None else _WithContext(folder, embed_folder(cosplace, folder))
    logger = ImageLogger(log_dir, cfg.trainer.log_every_n_batches, cfg.trainer.log_max_images,
                         cfg.trainer.log_sample_steps)
    trainer = _trainer(cfg, max_steps or cfg.trainer.ldm_steps, log_dir, [logger])
    trainer.fit(model, _loader(cfg, dataset))
    with atomic_path(out) as tmp:
        trainer.save_checkpoint(tmp)
    return out
