"""DDP on CPU: two gloo processes launched by Lightning from ``python train.py trainer=ddp``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]


def test_ddp_two_gloo_processes(tiny_tiles, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "train.py"), "model=diffusion", "encoder=pointnet",
           "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_steps=2",
           "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
           "callbacks=default", "callbacks.last.every_n_train_steps=2",
           "callbacks.best.every_n_train_steps=2", "callbacks.samples.every_n_steps=0",
           "logger=none", f"data.tile_dir={tiny_tiles}", "data.dataset.num_points=64",
           "data.batch_size=2", "encoder.local_channels=[16]", "encoder.global_channels=[16,32]",
           "encoder.point_channels=[16]", "model.time_dim=16", "model.head.net.hidden=16",
           f"hydra.run.dir={run}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2
    assert ckpt["pcgen"]["batches_seen"] == 2
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stderr + proc.stdout
