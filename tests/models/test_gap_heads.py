"""The gap heads share one start, one conditioner and one pairing; each moves points its own way."""

from __future__ import annotations

import re
import tempfile

import pytest
import torch

from pcgen.models.gap_head import example_batch, paired_truth
from pcgen.train.run import build_module, compose_config

TINY = ["experiment=gap_fill", "model.width=8", "model.head.hidden=8", "logger=none", "data.caches=[unused]"]


def tiny_head(kind: str, *extra: str):
    cfg = compose_config([*TINY, f"model={kind}", f"loss={kind}", *extra], root=tempfile.mkdtemp())
    return build_module(cfg).head


def toy_batch(n: int = 40, m: int = 30, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ex = {"source": torch.rand(n, 3, generator=g) * torch.tensor([8.0, 8.0, 10.0]) - torch.tensor([4.0, 4.0, 0.0]),
          "context": torch.rand(200, 3, generator=g) * torch.tensor([20.0, 20.0, 12.0]) - torch.tensor([10.0, 10.0, 0]),
          "context_ground": (torch.rand(200, generator=g) < 0.4).float(),
          "cond": torch.zeros(6), "half": torch.tensor([4.0, 4.0]), "z_max": 12.0,
          "truth": torch.rand(m, 3, generator=g) * torch.tensor([8.0, 8.0, 10.0]) - torch.tensor([4.0, 4.0, 0.0])}
    return example_batch([{k: (v.numpy() if torch.is_tensor(v) else v) for k, v in ex.items()}])


def test_pairing_is_a_matching_onto_the_truth():
    truth = torch.tensor([[[0.0, 0, 0], [10, 0, 0], [0, 10, 0], [10, 10, 5]]])
    x = truth[:, [3, 1, 0, 2]] + 0.1  # a shuffled, slightly moved copy
    out = paired_truth(x, torch.tensor([4]), truth, torch.tensor([4]))
    torch.testing.assert_close(out, x - 0.1)
    # more start points than true ones: every true point is used, the rest repeat true points
    x6 = torch.cat([x, x[:, :2] + 0.2], 1)
    out6 = paired_truth(x6, torch.tensor([6]), truth, torch.tensor([4]), torch.Generator().manual_seed(0))
    rows = {tuple(r) for r in out6[0].tolist()}
    assert rows == {tuple(r) for r in truth[0].tolist()}


def test_untrained_flow_stays_at_its_start_and_a_constant_velocity_moves_it_by_its_scale():
    head = tiny_head("gap_flow", "model.head.steps=3")
    batch = toy_batch()
    start = head.start(batch, torch.Generator().manual_seed(1))
    torch.testing.assert_close(head.transport(start, batch, None), start)
    with torch.no_grad():
        head.velocity[-1].bias.copy_(torch.tensor([0.5, -0.25, 1.0]))
    moved = head.transport(start, batch, None)
    torch.testing.assert_close(moved - start, torch.tensor([1.0, -0.5, 4.0]).expand_as(start))


def test_diffusion_samples_from_its_start_step_in_its_step_count():
    head = tiny_head("gap_diffusion", "model.head.start_step=300", "model.head.steps=6")
    steps = head.timesteps(head.scheduler())
    assert len(steps) == 6 and steps[0] == 299 and steps == sorted(steps, reverse=True) and steps[-1] >= 0


def test_diffusion_with_a_perfect_noise_predictor_lands_on_the_target():
    head = tiny_head("gap_diffusion")
    batch = toy_batch()
    start = head.start(batch, torch.Generator().manual_seed(2))
    target = torch.tensor([0.8, -0.6, 1.5])  # residual units, inside clip_sample

    def oracle(anchor, r, t, batch):  # the ε that makes r a noised copy of the target
        abar = head.schedule.alphas_cumprod[t].to(r.dtype)[:, None, None]
        return (r - abar.sqrt() * target) / (1 - abar).sqrt()

    head._eps = oracle
    out = head.transport(start, batch, torch.Generator().manual_seed(3))
    torch.testing.assert_close(out - start, (target * head.residual_scale).expand_as(start), atol=1e-4, rtol=0)


def test_vae_code_comes_from_the_true_points_and_costs_no_kl_at_the_prior():
    head = tiny_head("gap_vae", "model.head.latent_dim=4")
    batch = toy_batch()
    mean, logvar = head.encode(batch)
    assert mean.shape == logvar.shape == (1, 4)
    moved = dict(batch, points=batch["points"] + torch.tensor([0.0, 0.0, 5.0]))
    assert not torch.allclose(head.encode(moved)[0], mean)  # another truth, another code
    with torch.no_grad():  # a posterior that always says N(0, I) costs nothing
        head.posterior[-1].weight.zero_()
        head.posterior[-1].bias.zero_()
    assert head.loss(batch)["kl"].item() == 0.0


def test_vae_fill_depends_on_the_drawn_code_and_repeats_for_a_seed():
    head = tiny_head("gap_vae", "model.head.latent_dim=4")
    batch = toy_batch()
    with torch.no_grad():
        torch.nn.init.normal_(head.offset[-1].weight, std=0.5)
    start = head.start(batch, torch.Generator().manual_seed(1))
    a = head.transport(start, batch, torch.Generator().manual_seed(2))
    b = head.transport(start, batch, torch.Generator().manual_seed(2))
    c = head.transport(start, batch, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 1e-3
    z = torch.randn(1, 4, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, head.refine(start, batch, z)[-1])


def test_gan_players_split_the_parameters_and_start_from_even_odds():
    import math

    head = tiny_head("gap_gan", "model.head.discriminator.conditioner.width=8")
    gen, disc = list(head.generator_parameters()), list(head.discriminator_parameters())
    assert {id(p) for p in gen}.isdisjoint({id(p) for p in disc})
    assert len(gen) + len(disc) == len(list(head.parameters()))
    batch = toy_batch()
    with torch.no_grad():  # a discriminator that says 0 (even odds) for every point
        head.discriminator.score.weight.zero_()
        head.discriminator.score.bias.zero_()
    assert math.isclose(head.discriminator_loss(batch)["disc_adv"].item(), 2 * math.log(2), rel_tol=1e-6)
    torch.manual_seed(4)
    terms = head.generator_loss(batch)
    torch.manual_seed(4)
    plain = head.fit_terms(head.refine(head.start(batch, None), batch), batch)
    assert math.isclose(terms["gen_adv"].item(), math.log(2), rel_tol=1e-6)
    for name in ("chamfer", "chamfer_passes", "height_w1"):
        torch.testing.assert_close(terms[name], plain[name])


def test_turns_round_trip_and_turn_a_quarter_counterclockwise():
    from pcgen.models.gap_head import SYMMETRIES, turn_xy, unturn_xy

    p = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(turn_xy(p, 1, False), torch.tensor([[-2.0, 1.0, 3.0]]))
    torch.testing.assert_close(turn_xy(p, 2, True), torch.tensor([[1.0, -2.0, 3.0]]))
    q = torch.randn(2, 9, 3)
    assert len(set(SYMMETRIES)) == 8
    for k, m in SYMMETRIES:
        torch.testing.assert_close(unturn_xy(turn_xy(q, k, m), k, m), q)


def _randomized(head):
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return head.eval()


def test_with_all_eight_turns_a_fill_turns_with_its_gap():
    """Averaged over the gap's 8 symmetries, the moves do not depend on how the gap is oriented:
    turning the context and the start turns the fill, to float precision. One turn does not."""
    from pcgen.models.gap_head import turn_xy

    head = _randomized(tiny_head("gap_offset", "model.head.turns=8"))
    batch = toy_batch(seed=3)
    start = head.start(batch, torch.Generator().manual_seed(2))
    turned = dict(batch, context=turn_xy(batch["context"], 1, True))
    with torch.no_grad():
        fill = head.refine(start, batch)[-1]
        fill_turned = head.refine(turn_xy(start, 1, True), turned)[-1]
        torch.testing.assert_close(fill_turned, turn_xy(fill, 1, True), atol=1e-4, rtol=0)
        head.turns = 1
        plain = head.refine(start, batch)[-1]
        plain_turned = head.refine(turn_xy(start, 1, True), turned)[-1]
    assert (plain_turned - turn_xy(plain, 1, True)).abs().max() > 1e-2
    assert (fill - plain).abs().max() > 1e-2  # the average is not the one-turn fill


def test_turns_apply_only_when_sampling():
    head = _randomized(tiny_head("gap_offset", "model.head.turns=4"))
    batch = toy_batch(seed=4)
    start = head.start(batch, torch.Generator().manual_seed(0))
    head.train()
    with torch.no_grad():
        trained_view = head.refine(start, batch)[-1]
        head.turns = 1
        one = head.refine(start, batch)[-1]
    torch.testing.assert_close(trained_view, one)


def test_a_bad_turn_count_is_refused():
    import pytest

    from pcgen.errors import ConfigError

    with pytest.raises(ConfigError, match="model.head.turns"):
        tiny_head("gap_offset", "model.head.turns=3")


def _raising_moves_the_query(ctx: list, raised: int, **conditioner) -> bool:
    """Whether raising context point ``raised`` to 4 m changes the features of a query at the origin."""
    from pcgen.nn import GapConditioner

    x, ctx = torch.zeros(1, 1, 3), torch.tensor([ctx], dtype=torch.float32)
    lifted = ctx.clone()
    lifted[0, raised, 2] = 4.0
    m = ctx.shape[1]
    x_len, ground, ctx_len, cond = torch.tensor([1]), torch.zeros(1, m), torch.tensor([m]), torch.zeros(1, 6)
    torch.manual_seed(0)
    net = GapConditioner(width=16, k_context=1, k_self=1, **conditioner).eval()
    with torch.no_grad():
        before = net(x, x_len, ctx, ground, ctx_len, cond)
        after = net(x, x_len, lifted, ground, ctx_len, cond)
    return bool((after - before).abs().max() > 1e-4)


def test_the_context_encoder_lets_a_point_read_its_context_neighbours_surroundings():
    """The query at the origin reads its two nearest context points (±0.5 m). A point 1.2 m out
    is no neighbour of the query's, but is one of the nearest context point's: raising it changes
    the query's features only when the context is encoded first."""
    ctx = [[0.5, 0, 1], [-0.5, 0, 1], [1.2, 0, 1], [-4.0, 3.0, 1]]
    assert not _raising_moves_the_query(ctx, 2, k_encode=0)
    assert _raising_moves_the_query(ctx, 2, k_encode=2)


def test_a_dilated_second_layer_reads_context_points_further_out_for_the_same_count():
    """With k = 1 the second layer reads two context points: the two nearest (0.5 and 1 m out),
    or with dilation 3 the 1st and the 4th nearest of six (0.5 and 2 m). Raising the point 2 m out
    changes the query's features only with the dilation."""
    ctx = [[r, 0.0, 1.0] for r in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5)]
    assert not _raising_moves_the_query(ctx, 3, dilation=1)
    assert _raising_moves_the_query(ctx, 3, dilation=3)


def test_a_head_reads_its_start_points_kinds_only_when_told_to():
    """With ``source_kind`` a point's move depends on whether it started as a surface sample or a
    copy (the conditioner has one more input); without it, the kinds in the batch are ignored.
    A head that needs the kinds refuses a batch without them."""
    import pytest

    from pcgen.errors import ConfigError

    batch = toy_batch(seed=5)
    copies = dict(batch, source_kind=torch.zeros_like(batch["source"][..., 0]))
    surface = dict(batch, source_kind=torch.ones_like(batch["source"][..., 0]))
    for reads, extra in ((True, ["model.head.source_kind=true"]), (False, [])):
        head = _randomized(tiny_head("gap_offset", *extra))
        assert head.conditioner.embed[0].in_features == 3 + 2 + reads  # xyz, pass id, kind
        start = head.start(batch, torch.Generator().manual_seed(1))
        with torch.no_grad():
            moved = (head.refine(start, copies)[-1] - head.refine(start, surface)[-1]).abs().max()
        assert (moved > 1e-3) == reads
    batch.pop("source_kind", None)
    with pytest.raises(ConfigError, match="kind"):
        head = _randomized(tiny_head("gap_offset", "model.head.source_kind=true"))
        head.refine(head.start(batch, None), batch)


def test_the_matched_distance_charges_a_fill_that_piles_onto_one_true_point():
    """Chamfer lets every fill point sit on one of two true crowns and still scores the far
    direction only; the one-to-one matching charges half the points the crowns' distance.
    A shifted copy costs exactly its shift."""
    from pcgen.models.gap_head import matched_distance

    truth = torch.tensor([[[0.0, 0, 10]] * 4 + [[6.0, 0, 10]] * 4])
    piled = torch.tensor([[[0.0, 0, 10]] * 7 + [[6.0, 0, 10]]])
    lengths = torch.tensor([8])
    assert abs(float(matched_distance(piled, lengths, truth, lengths)) - 3 * 6.0 / 8) < 0.06
    shifted = truth + torch.tensor([0.0, 0.0, 1.5])
    assert abs(float(matched_distance(shifted, lengths, truth, lengths)) - 1.5) < 0.02
    # on subsets each side draws its own points, so a shifted copy can cost more than its shift
    assert float(matched_distance(shifted, lengths, truth, lengths, points=4)) >= 1.5 - 0.02


def test_the_emd_term_is_computed_only_when_the_loss_weighs_it():
    from pcgen.losses import WeightedLoss

    batch = toy_batch(seed=6)
    head = tiny_head("gap_offset", "model.head.emd_points=16")
    terms = head.loss(batch)
    assert callable(terms["emd"])  # a term the loss may never ask for
    plain = WeightedLoss({"chamfer": 1.0})(terms)
    assert "emd" not in plain.terms
    out = WeightedLoss({"chamfer": 1.0, "emd": 0.5})(terms)
    # an untrained head leaves the noised start in place: 16 of its points against 16 true ones
    # sit farther apart, one to one, than the Chamfer's nearest neighbours
    emd, cd = float(out.terms["emd"]), float(out.terms["chamfer"])
    assert emd > cd > 0
    assert abs(float(out.total.detach()) - (cd + 0.5 * emd)) < 1e-5


@pytest.mark.parametrize("kind, override, says", [
    ("gap_offset", "model.head.iterations=0", "model.head.iterations must be >= 1"),
    ("gap_offset", "model.head.hidden=0", "model.head.hidden must be >= 1"),
    ("gap_offset", "model.head.emd_points=0", "model.head.emd_points must be >= 1"),
    ("gap_offset", "model.head.max_offset=[2,2,-6]", "model.head.max_offset (z) must be > 0"),
    ("gap_offset", "model.head.max_offset=[2,2]", "model.head.max_offset must be 3 numbers"),
    ("gap_offset", "model.head.source_noise=-0.3", "model.head.source_noise must be >= 0"),
    ("gap_flow", "model.head.source_noise=nan", "model.head.source_noise must be >= 0"),
    ("gap_offset", "model.head.conditioner.k_context=0", "model.head.conditioner.k_context must be >= 1"),
    ("gap_vae", "model.head.latent_dim=0", "model.head.latent_dim must be >= 1"),
    ("gap_vae", "model.head.free_bits=-1", "model.head.free_bits must be >= 0"),
])
def test_a_gap_head_refuses_a_number_it_cannot_use(kind, override, says):
    """Each of these was a traceback at step 0 (no pass, a negative subset) or trained a head that
    could not move (a zero-width MLP, a negative reach flips every move)."""
    from pcgen.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(says)):
        tiny_head(kind, override)
