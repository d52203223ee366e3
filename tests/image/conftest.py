"""Image-track fixtures: one thread (much faster than two on a shared 2-core box), real photos."""

from __future__ import annotations

import shutil

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread(single_thread):
    """Every test in this folder runs on one torch thread (see tests/conftest.py)."""


@pytest.fixture(scope="session")
def photos(data_dir):
    """The 18 shared street-level photos (database/ + queries/)."""
    return data_dir / "images"


@pytest.fixture(scope="session")
def few_photos(photos, tmp_path_factory):
    """Three shared photos copied to a temporary folder (explain and CLI tests)."""
    out = tmp_path_factory.mktemp("few_photos")
    for name in ("db1.jpg", "db2.jpg", "db15.jpg"):
        shutil.copy(photos / "database" / name, out / name)
    return out


@pytest.fixture(scope="session")
def tiny_run(photos, tmp_path_factory):
    """A tiny autoencoder (40 steps) and LDM (6 steps) trained by the real pipeline on the photos."""
    from pcgen.image.config import load_preset
    from pcgen.image.train import fit_autoencoder, fit_ldm

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # session-scoped, so restore it: later folders (ops) keep their threads
    try:
        torch.manual_seed(0)
        out = tmp_path_factory.mktemp("tiny_run")
        cfg = load_preset("tiny", ["trainer.log_every_n_batches=4", "trainer.log_sample_steps=3"])
        ae = fit_autoencoder(cfg, photos, out / "autoencoder.ckpt", max_steps=40, log_dir=out / "ae_images")
        ldm = fit_ldm(cfg, photos, out / "ldm.ckpt", ae, max_steps=6, log_dir=out / "ldm_images")
    finally:
        torch.set_num_threads(before)
    return {"dir": out, "autoencoder": ae, "ldm": ldm, "cfg": cfg}
