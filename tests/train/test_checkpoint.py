"""load_head: rebuilds the trained head; every unusable file is a CheckpointError naming it."""

from __future__ import annotations


import pytest
import torch

from pcgen.errors import CheckpointError


@pytest.fixture(scope="module")
def vae_ckpt(make_cfg, tmp_path_factory):
    """A VAE checkpoint after two real optimizer steps (made once for this module)."""
    from pcgen.train.run import train

    root = tmp_path_factory.mktemp("vae_run")
    cfg = make_cfg("vae", "pointnet", ["trainer.max_steps=2", "callbacks.last.every_n_train_steps=2",
                                       "callbacks.best.every_n_train_steps=2",
                                       "callbacks.samples.every_n_steps=0"],
                   root=root, callbacks="default")
    result = train(cfg, root=root)
    return root / "checkpoints" / "last.ckpt", result


def test_load_head_rebuilds_ema_weights(vae_ckpt):
    from pcgen.models import VAEHead
    from pcgen.train.checkpoint import load_head

    path, _ = vae_ckpt
    head, meta = load_head(path, expect="vae")
    assert isinstance(head, VAEHead) and not head.training
    assert meta["kind"] == "vae" and meta["ema"] is True and meta["global_step"] == 2
    assert meta["data"]["num_points"] == 64 and meta["data"]["normalize"] == "sphere"
    state = torch.load(path, weights_only=True)["state_dict"]
    for key, value in head.state_dict().items():
        assert torch.equal(value, state["ema.module." + key]), key
    live, meta_live = load_head(path, use_ema=False)
    assert meta_live["ema"] is False
    assert any(not torch.equal(v, state["ema.module." + k]) for k, v in live.state_dict().items()
               if v.dtype.is_floating_point)
    out = head.sample(3, 64, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 64, 3) and torch.isfinite(out).all()


def test_missing_file(tmp_path):
    from pcgen.train.checkpoint import load_head

    with pytest.raises(CheckpointError, match="not found") as err:
        load_head(tmp_path / "nope.ckpt")
    assert err.value.path == str(tmp_path / "nope.ckpt")


def test_not_a_torch_file(tmp_path):
    from pcgen.train.checkpoint import load_head

    bad = tmp_path / "text.ckpt"
    bad.write_text("this is not a checkpoint\n")
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint") as err:
        load_head(bad)
    assert err.value.path == str(bad)
    assert len(str(err.value)) < len(str(bad)) + 150  # one sentence from torch, not its advice


def test_truncated_checkpoint(vae_ckpt, tmp_path):
    from pcgen.train.checkpoint import load_head

    path, _ = vae_ckpt
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_head(cut)
    assert err.value.path == str(cut)


def test_torch_file_that_is_not_pcgen(tmp_path):
    from pcgen.train.checkpoint import load_head

    other = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="not a pcgen training checkpoint"):
        load_head(other)


def test_other_head_kind(vae_ckpt):
    from pcgen.train.checkpoint import load_head

    path, _ = vae_ckpt
    with pytest.raises(CheckpointError, match="holds a vae head, expected diffusion") as err:
        load_head(path, expect="diffusion")
    assert err.value.path == str(path)


def test_resume_rejects_other_kind_and_missing(vae_ckpt, make_cfg, tmp_path):
    from pcgen.train.run import train

    path, _ = vae_ckpt
    cfg = make_cfg("diffusion", "pointnet", [f"resume={path}", "trainer.max_steps=1"], root=tmp_path)
    with pytest.raises(CheckpointError, match="holds a vae head but model=diffusion"):
        train(cfg, root=tmp_path)
    cfg = make_cfg("vae", "pointnet", [f"resume={tmp_path / 'gone.ckpt'}"], root=tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        train(cfg, root=tmp_path)
    assert not (tmp_path / "checkpoints").exists()
