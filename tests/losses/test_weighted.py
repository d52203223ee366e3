"""WeightedLoss composition and the weight schedules (KL annealing)."""

from __future__ import annotations

import pytest
import torch

from pcgen.errors import ConfigError
from pcgen.losses import Constant, Cosine, LinearWarmup, WeightedLoss


def test_schedules_values():
    assert Constant()(123) == 1.0 and Constant(0.3)(0) == 0.3
    warm = LinearWarmup(steps=100, delay=10)
    assert [warm(s) for s in (0, 10, 60, 110, 10_000)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    cyc = LinearWarmup(steps=10, cycles=3)
    assert [cyc(s) for s in (0, 5, 10, 15, 25, 30, 99)] == [0.0, 0.5, 0.0, 0.5, 0.5, 1.0, 1.0]
    cos = Cosine(steps=100, start=1.0, end=0.0)
    assert cos(0) == pytest.approx(1.0) and cos(50) == pytest.approx(0.5) and cos(100) == pytest.approx(0.0)
    assert cos(25) == pytest.approx(0.5 * (1 + 2**-0.5))
    with pytest.raises(ConfigError):
        LinearWarmup(steps=0)
    with pytest.raises(ConfigError):
        Cosine(steps=10, delay=-1)


def test_weighted_sum_and_terms():
    loss = WeightedLoss({"chamfer": 1.0, "kl": (0.5, LinearWarmup(steps=10)), "emd": {"weight": 2.0}})
    values = {"chamfer": torch.tensor(3.0, requires_grad=True), "kl": torch.tensor(4.0),
              "emd": torch.tensor(1.0), "regularization": torch.tensor(7.0)}
    out0 = loss(values, step=0)
    assert out0.total.item() == pytest.approx(3.0 + 0.0 + 2.0)
    out5 = loss(values, step=5)
    assert out5.total.item() == pytest.approx(3.0 + 0.25 * 4.0 + 2.0)
    assert out5.weights == {"chamfer": 1.0, "kl": 0.25, "emd": 2.0}
    # every returned term is reported (detached), summed or not
    assert set(out5.terms) == {"chamfer", "kl", "emd", "regularization"}
    assert not out5.terms["chamfer"].requires_grad
    out5.total.backward()
    assert values["chamfer"].grad.item() == 1.0


def test_missing_terms():
    loss = WeightedLoss({"gen_adv": 1.0, "disc_adv": 1.0, "gradient_penalty": 10.0})
    with pytest.raises(ConfigError, match="gradient_penalty"):
        loss({"gen_adv": torch.tensor(1.0), "disc_adv": torch.tensor(1.0)})
    lenient = WeightedLoss({"gen_adv": 1.0, "disc_adv": 1.0, "gradient_penalty": 10.0}, require_all=False)
    d = lenient({"disc_adv": torch.tensor(1.0), "gradient_penalty": torch.tensor(0.5)})
    assert d.total.item() == pytest.approx(6.0) and set(d.weights) == {"disc_adv", "gradient_penalty"}
    with pytest.raises(ConfigError):
        lenient({"velocity": torch.tensor(1.0)})


def test_bad_specs():
    with pytest.raises(ConfigError):
        WeightedLoss({})
    with pytest.raises(ConfigError):
        WeightedLoss({"kl": "heavy"})
    with pytest.raises(ConfigError):
        WeightedLoss({"kl": {"weight": 1.0, "warmup": 10}})


def test_hydra_instantiates_a_scheduled_loss():
    from hydra.utils import instantiate

    loss = instantiate({"_target_": "pcgen.losses.WeightedLoss", "terms": {
        "chamfer": 1.0,
        "kl": {"weight": 0.01, "schedule": {"_target_": "pcgen.losses.LinearWarmup", "steps": 100}},
        "emd": [2.0, None]}})
    assert loss.weight("kl", 50) == pytest.approx(0.005) and loss.weight("emd", 0) == 2.0
    out = loss({"chamfer": torch.tensor(1.0), "kl": torch.tensor(10.0), "emd": torch.tensor(1.0)}, step=100)
    assert out.total.item() == pytest.approx(1.0 + 0.1 + 2.0)


def test_schedules_that_cannot_run_are_refused_when_built():
    with pytest.raises(ConfigError, match="steps >= 1"):  # int(0.5) = 0 divided every call by zero
        Cosine(steps=0.5)
    with pytest.raises(ConfigError, match="'kl': a schedule is a step -> float callable"):
        WeightedLoss({"kl": (1e-3, "linear")})  # failed at the first step with a TypeError
    with pytest.raises(ConfigError, match="'kl': a schedule"):
        WeightedLoss({"kl": {"weight": 1e-3, "schedule": 5}})


def test_a_callable_term_is_computed_only_when_weighed():
    calls = []

    def costly():
        calls.append(1)
        return torch.tensor(2.0)

    values = {"chamfer": torch.tensor(3.0), "emd": costly}
    out = WeightedLoss({"chamfer": 1.0})(values)
    assert calls == [] and set(out.terms) == {"chamfer"} and out.total.item() == 3.0
    out = WeightedLoss({"chamfer": 1.0, "emd": 0.5})(values)
    assert calls == [1] and out.terms["emd"].item() == 2.0 and out.total.item() == 4.0


@pytest.mark.parametrize("spec", [-1.0, float("nan"), float("inf"), {"weight": -0.5}, (float("nan"), None)])
def test_a_weight_that_is_negative_or_not_finite_is_refused(spec):
    with pytest.raises(ConfigError, match="'emd': the weight must be a finite number >= 0"):
        WeightedLoss({"chamfer": 1.0, "emd": spec})
