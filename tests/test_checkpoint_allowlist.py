"""Issue 14, class 2: loading a checkpoint never runs code named by its saved config.

Each crafted checkpoint names a dangerous callable as a ``_target_`` somewhere in the head
config; ``pcgen fill --ckpt`` must refuse it in one line, exit 2, before anything is built, and
the victim files must be untouched (nothing deleted, nothing created).
"""

from __future__ import annotations

import os
import sys
import types

import pytest
import torch
from torch import nn

from pcgen import datadir
from pcgen.cli import main
from pcgen.errors import CheckpointError
from pcgen.train.checkpoint import load_head
from pcgen.train.safe_targets import check_targets, resolve_model_class


def _ckpt(path, head):
    torch.save({"state_dict": {"head.w": torch.zeros(1)}, "hyper_parameters": {"kind": "vae", "head": head}},
               path)
    return path


def _attacks(tmp):
    victim, made = str(tmp / "victim.txt"), str(tmp / "made.txt")
    benign = {"_target_": "pcgen.nn.PointNetEncoder", "in_channels": 3}
    return {
        "Path.unlink": {"_target_": "pathlib.Path.unlink", "_args_": [{"_target_": "pathlib.Path",
                                                                         "_args_": [victim]}]},
        "builtins.open": {"_target_": "builtins.open", "_args_": [made, "w"]},
        "Path.touch": {"_target_": "pathlib.Path.touch", "self": {"_target_": "pathlib.Path", "_args_": [made]}},
        "numpy.save": {"_target_": "numpy.save", "_args_": [made, [1, 2, 3]]},
        "torch.save": {"_target_": "torch.save", "_args_": [[1], made]},
        "os.system": {"_target_": "os.system", "_args_": [f"touch {made}; rm -f {victim}"]},
        "nested in _args_": {"_target_": "pcgen.models.VAEHead",
                             "_args_": [benign, {"_target_": "os.system", "_args_": [f"touch {made}"]}]},
        "nested dict": {"_target_": "pcgen.models.DiffusionHead",
                        "net": {"_target_": "pcgen.models.PointDenoiser",
                                "encoder": {"_target_": "os.system", "command": f"touch {made}"}}},
        "_partial_": {"_target_": "pcgen.models.VAEHead",
                      "encoder": {"_target_": "os.remove", "_partial_": True, "path": victim}},
        "reached through a pcgen module": {"_target_": "pcgen.train.checkpoint.torch.save",
                                           "_args_": [[1], made]},
        "torch class re-exported by pcgen.nn": {"_target_": "pcgen.nn.blocks.nn.Linear", "_args_": [3, 3]},
        "pcgen class outside models/nn": {"_target_": "pcgen.train.ema.EMA"},
        "interpolation": {"_target_": "pcgen.models.VAEHead", "name": "${oc.env:HOME}"},
        "unknown hydra key": {"_target_": "pcgen.models.VAEHead", "_x_": 1},
        "target not a string": {"_target_": ["os", "system"]},
    }


@pytest.mark.parametrize("attack", list(_attacks(__import__("pathlib").Path("/x"))))
def test_crafted_checkpoint_is_refused_before_anything_runs(tmp_path, capsys, attack):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    ckpt = _ckpt(tmp_path / "evil.ckpt", _attacks(tmp_path)[attack])
    src = datadir.lidar_file("simple.las")
    before = sorted(os.listdir(tmp_path))
    assert main(["fill", str(src), str(tmp_path / "out.las"), "--ckpt", str(ckpt)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("pcgen fill: error:") and "evil.ckpt" in err, err
    assert "cannot rebuild" not in err, err  # refused by the allow-list, before Hydra saw it
    assert victim.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == before  # made.txt never created, no output


def test_load_head_raises_checkpoint_error(tmp_path):
    ckpt = _ckpt(tmp_path / "evil.ckpt", {"_target_": "os.system", "_args_": ["true"]})
    with pytest.raises(CheckpointError, match=r"evil.ckpt: refusing to build the head: _target_ 'os.system'"):
        load_head(ckpt)


def test_head_that_is_not_a_model_is_refused(tmp_path):
    ckpt = _ckpt(tmp_path / "p.ckpt", {"_target_": "pcgen.nn.PointNetEncoder", "_partial_": True})
    with pytest.raises(CheckpointError, match="not a model"):
        load_head(ckpt)


def test_every_shipped_config_target_is_allowed():
    """The model and encoder groups that train heads only use allowed targets."""
    from omegaconf import OmegaConf

    root = __import__("pathlib").Path(__file__).resolve().parent.parent / "pcgen" / "conf"
    found = 0
    for group in ("model", "encoder"):
        for path in sorted((root / group).glob("*.yaml")):
            cfg = OmegaConf.to_container(OmegaConf.load(path))
            targets = []

            def walk(node):
                if isinstance(node, dict):
                    if isinstance(node.get("_target_"), str):
                        targets.append(node["_target_"])
                    for v in node.values():
                        walk(v)
                elif isinstance(node, list):
                    for v in node:
                        walk(v)
            walk(cfg.get("head", cfg))
            for t in targets:
                check_targets({"_target_": t})
                found += 1
    assert found >= 10


def test_the_shipped_checkpoint_still_loads():
    from pcgen.tasks.generators import DEFAULT_CHECKPOINT

    head, meta = load_head(DEFAULT_CHECKPOINT)
    assert isinstance(head, nn.Module) and not head.training and meta["head_config"]["_target_"].startswith("pcgen.")


def test_a_new_head_module_is_allowed_without_a_list(monkeypatch):
    mod = types.ModuleType("pcgen.models.brand_new_head")

    class BrandNewHead(nn.Module):
        pass

    class NotAModule:
        pass

    BrandNewHead.__module__ = NotAModule.__module__ = mod.__name__
    mod.BrandNewHead, mod.NotAModule = BrandNewHead, NotAModule
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    assert resolve_model_class("pcgen.models.brand_new_head.BrandNewHead") is BrandNewHead
    check_targets({"_target_": "pcgen.models.brand_new_head.BrandNewHead"})
    with pytest.raises(CheckpointError):
        check_targets({"_target_": "pcgen.models.brand_new_head.NotAModule"})
    # only pcgen modules are ever imported to decide
    assert resolve_model_class("os.path.join") is None
    assert "evil_not_imported" not in sys.modules
    assert resolve_model_class("evil_not_imported.Head") is None and "evil_not_imported" not in sys.modules


def test_a_package_name_resolves_through_its_lazy_table_only(monkeypatch):
    import pcgen.models
    from pcgen.models.gap_offset import GapOffsetHead

    monkeypatch.delitem(vars(pcgen.models), "GapOffsetHead", raising=False)  # not imported yet
    assert resolve_model_class("pcgen.models.GapOffsetHead") is GapOffsetHead
    assert resolve_model_class("pcgen.models.NoSuchHead") is None
    # a table entry naming a module outside pcgen is never imported
    monkeypatch.setitem(pcgen.models._EXPORTS, "Evil", "evil_lazy_target")
    assert resolve_model_class("pcgen.models.Evil") is None and "evil_lazy_target" not in sys.modules
