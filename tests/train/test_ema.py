"""EMA warm-up: early updates follow the live weights closely, later ones use the configured decay."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pcgen.train.ema import make_ema, update_ema, warmup_decay


def test_warmup_decay_values():
    assert warmup_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warmup_decay(0.999, 90) == pytest.approx(0.91)
    assert warmup_decay(0.999, 10_000) == 0.999
    assert warmup_decay(0.5, 100) == 0.5


def test_ema_follows_the_warmup_formula():
    net = nn.Linear(1, 1, bias=False)
    ema = make_ema(net, decay=0.999)
    expected = None
    for step in range(5):
        with torch.no_grad():
            net.weight.fill_(float(step + 1))
        update_ema(ema, net)
        w = float(step + 1)
        if expected is None:
            expected = w  # the first update copies
        else:
            d = warmup_decay(0.999, step)  # `step` updates were averaged before this one
            expected = d * expected + (1 - d) * w
        assert ema.module.weight.item() == pytest.approx(expected, rel=1e-6)
    # a fixed 0.999 would still sit near the first weight (1.0); the warm-up has moved well past it
    assert ema.module.weight.item() > 3.0
