"""Callbacks: periodic sample renders (PNG + LAZ in the run folder) and the step checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from pcgen.train.render import render_clouds


class StepCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, plus ``last.ckpt`` at the end of every fit.

    With ``every_n_train_steps`` the last save can fall short of the final step
    (``max_steps=7``, every 5: step 5), and the endless step loader never ends an epoch, so
    Lightning saves nothing more; resuming would repeat steps. ``save_last`` here also means
    "the step training stopped at" (max_steps, max_time or an early stop).
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # _should_skip_saving_checkpoint: sanity check, fast_dev_run, or this step already saved.
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)


def _tile_crs(data, name: str | None):
    """The CRS of the training tile ``name`` (a sample LAZ lies where that tile does, so a GIS
    should place it there); None when the data is not read from tile files."""
    files = getattr(getattr(data, "dataset", data), "files", None)  # a Subset wraps the dataset
    path = next((f for f in files or () if f.name == name), None)
    if path is None:
        return None
    import laspy

    from pcgen.io.cloud import parse_crs

    try:
        with laspy.open(path) as reader:
            return parse_crs(reader.header)
    except (OSError, ValueError, laspy.LaspyException):
        return None


class SampleRenderer(L.Callback):
    """Every ``every_n_steps`` optimizer steps, sample from the EMA head and save what it made.

    Writes ``<run>/samples/step_XXXXXXX.png`` (top and side views) and one LAZ per sample,
    mapped back to real-world coordinates with a training tile's centre and scale so the files
    open next to the source data in any LiDAR viewer. Gap-filling heads are sampled on the
    context and gap of fixed training examples, and their LAZ carries a ``generated`` flag.

    Args:
        every_n_steps: render period in ``trainer.global_step`` units (0 disables).
        num_samples: clouds per render.
        num_points: points per generated cloud (default: the training batch's).
        out_dir: folder; default ``<trainer.log_dir or default_root_dir>/samples``.
        write_laz: also write LAZ files through ``pcgen.io``.
        seed: seed of the sampling noise, fixed so renders are comparable across steps.
        sample_kwargs: extra keyword arguments of ``head.sample`` (e.g. ``steps=50``).
    """

    def __init__(self, every_n_steps: int = 500, num_samples: int = 4, num_points: int | None = None,
                 out_dir: str | None = None, write_laz: bool = True, seed: int = 0,
                 sample_kwargs: dict[str, Any] | None = None):
        self.every_n_steps = int(every_n_steps)
        self.num_samples = int(num_samples)
        self.num_points = num_points
        self.out_dir = out_dir
        self.write_laz = write_laz
        self.seed = seed
        self.sample_kwargs = dict(sample_kwargs or {})
        self._last_step = -1

    def _folder(self, trainer: L.Trainer) -> Path:
        if self.out_dir:
            return Path(self.out_dir)
        return Path(trainer.log_dir or trainer.default_root_dir) / "samples"

    def _reference(self, trainer: L.Trainer) -> tuple[dict[str, Any], np.ndarray, float]:
        """A few fixed training items plus the centre/scale that undo their normalization."""
        data = trainer.datamodule.train_set
        items = [data[i % len(data)] for i in range(self.num_samples)]
        tiles = getattr(trainer.datamodule, "tiles", None)
        ref = tiles[0] if tiles is not None else items[0]
        center = np.asarray(ref.get("center", np.zeros(3)), dtype=np.float64)
        scale = float(np.asarray(ref.get("scale", 1.0)))
        batch = {k: torch.as_tensor(np.stack([np.asarray(it[k]) for it in items]))
                 for k in items[0] if k in ("context", "gap_box", "points")}
        self._crs = _tile_crs(data, ref.get("tile"))
        return batch, center, scale

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if (self.every_n_steps <= 0 or step == 0 or step % self.every_n_steps
                or step == self._last_step or not trainer.is_global_zero):
            return
        self._last_step = step
        self.render(trainer, pl_module, step)

    @torch.no_grad()
    def render(self, trainer: L.Trainer, pl_module: L.LightningModule, step: int) -> Path:
        """Sample, then write the PNG (and LAZ files); returns the PNG path."""
        head = pl_module.sampling_head()
        ref, center, scale = self._reference(trainer)
        num_points = self.num_points or int(ref["points"].shape[1])
        device = pl_module.device
        context = ref["context"].to(device).float() if "context" in ref else None
        gap_box = ref["gap_box"].to(device).float() if "gap_box" in ref else None
        gen = torch.Generator(device=device).manual_seed(self.seed)
        was_training = head.training
        head.eval()
        try:
            clouds = head.sample(self.num_samples, num_points, context=context, gap_box=gap_box,
                                 generator=gen, **self.sample_kwargs)
        finally:
            head.train(was_training)
        clouds = clouds.float().cpu().numpy()
        ctx_np = None if context is None else context.cpu().numpy()
        folder = self._folder(trainer)
        png = folder / f"step_{step:07d}.png"
        # A real training example in the first column: the eye needs the target next to samples.
        real = ref["points"][0].float().numpy()
        shown = [real, *clouds]
        contexts = None if ctx_np is None else [ctx_np[0], *ctx_np]
        labels = ["real (training)"] + [f"sample {i}" for i in range(len(clouds))]
        render_clouds(shown, png, contexts=contexts, title=f"step {step}", labels=labels)
        if self.write_laz:
            self._write_laz(folder, step, clouds, ctx_np, center, scale)
        return png

    def _write_laz(self, folder: Path, step: int, clouds: np.ndarray, contexts: np.ndarray | None,
                   center: np.ndarray, scale: float) -> None:
        from pcgen import io

        for i, xyz in enumerate(clouds):
            parts = [xyz.astype(np.float64)]
            flags = [np.ones(len(xyz), np.uint8)]
            if contexts is not None:
                parts.append(contexts[i].astype(np.float64))
                flags.append(np.zeros(len(contexts[i]), np.uint8))
            real = np.concatenate(parts) * scale + center
            cloud = io.PointCloud(xyz=real, crs=getattr(self, "_crs", None))
            cloud.add_extra_dimension("generated", np.uint8, np.concatenate(flags),
                                      description="1 = generated by pcgen")
            io.write(cloud, folder / f"step_{step:07d}_{i}.laz")
