"""Lightning callback that renders a module's ``log_images`` to PNG every N training batches."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch

from pcgen.image.render import grid, save_png

__all__ = ["ImageLogger"]


class ImageLogger(L.Callback):
    """Every ``every_n_batches`` global steps, write ``<key>_gs-XXXXXX.png`` grids of at most ``max_images``.

    The module must provide ``log_images(batch, max_images, steps) -> {name: (B, 3, H, W) in [-1, 1]}``
    (inputs, reconstructions, samples). Rendering runs in eval mode without gradients and restores
    the training mode afterwards.

    Args:
        out_dir: folder for the PNGs (created).
        every_n_batches: logging period in training batches, counted across epochs (LDM's ``batch_frequency``).
        max_images: images per grid, at most 8.
        sample_steps: DDIM steps for the sample grid.
    """

    def __init__(self, out_dir: str | os.PathLike, every_n_batches: int = 5000, max_images: int = 8,
                 sample_steps: int = 50):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.every = max(1, int(every_n_batches))
        self.max_images = max(1, min(8, int(max_images)))
        self.sample_steps = sample_steps
        self.written: list[Path] = []
        self._batches = 0  # batches seen across epochs (batch_idx restarts every epoch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        seen, self._batches = self._batches, self._batches + 1
        if seen % self.every or not hasattr(pl_module, "log_images"):
            return
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            images = pl_module.log_images(batch, self.max_images, self.sample_steps)
        pl_module.train(was_training)
        for key, x in images.items():
            path = self.out_dir / f"{key}_gs-{step:06d}_b-{batch_idx:06d}.png"
            save_png(grid([list(x)]), path)
            self.written.append(path)
