"""The shared encoder contract: set function, ragged batches, gradients, conditioning, errors."""

from __future__ import annotations

import pytest
import torch

from pcgen.errors import ShapeError

NAMES = ["pointnet", "pointnet2", "dgcnn"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("train", [False, True])
def test_permutation(name, train, encoder_factory, clouds):
    """Global features are invariant and point features equivariant to reordering each cloud."""
    model = encoder_factory(name, in_channels=5).train(train)
    x = clouds(2, 160, features=2)
    perm = torch.stack([torch.randperm(160, generator=torch.Generator().manual_seed(s)) for s in (3, 4)])
    xp = torch.gather(x, 1, perm[..., None].expand_as(x))
    out, outp = model(x), model(xp)
    torch.testing.assert_close(outp.global_feature, out.global_feature, atol=1e-5, rtol=1e-5)
    expected = torch.gather(out.point_features, 1, perm[..., None].expand_as(out.point_features))
    torch.testing.assert_close(outp.point_features, expected, atol=1e-5, rtol=1e-5)
    # and the outputs are not trivially constant
    assert out.global_feature.std() > 1e-3 and out.point_features.std() > 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_ragged_batch_padding_is_ignored(name, encoder_factory, clouds):
    """Padding content never reaches the outputs (train mode: not even the norm statistics)."""
    model = encoder_factory(name).train()
    x = clouds(3, 128)
    lengths = torch.tensor([128, 90, 17])
    pad = torch.arange(128)[None] >= lengths[:, None]
    a, b = x.clone(), x.clone()
    a[pad] = 1e3 * torch.randn(int(pad.sum()), 3)
    b[pad] = float("nan")
    out_a, out_b = model(a, lengths), model(b, lengths)
    assert out_a.global_feature.shape == (3, model.global_dim)
    assert out_a.point_features.shape == (3, 128, model.point_dim)
    torch.testing.assert_close(out_a.global_feature, out_b.global_feature, atol=0, rtol=0)
    torch.testing.assert_close(out_a.point_features, out_b.point_features, atol=0, rtol=0)
    assert torch.isfinite(out_b.point_features).all()
    assert (out_a.point_features[pad] == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_ragged_cloud_matches_cloud_alone(name, encoder_factory, clouds):
    """In eval mode a short cloud padded inside a batch gives what it gives on its own."""
    model = encoder_factory(name).eval()
    x = clouds(3, 128, seed=5)
    lengths = torch.tensor([128, 90, 17])
    batched = model(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        alone = model(x[i:i + 1, :n])
        torch.testing.assert_close(batched.global_feature[i:i + 1], alone.global_feature, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.point_features[i:i + 1, :n], alone.point_features,
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["film", "concat"])
def test_gradients_reach_every_parameter(name, mode, encoder_factory, clouds, randomize):
    model = encoder_factory(name, in_channels=4, norm="layer", time_dim=8, cond_dim=3,
                            conditioning=mode).train()
    randomize(model)
    x = clouds(3, 96, features=1).requires_grad_()
    out = model(x, torch.tensor([96, 60, 30]), t_emb=torch.randn(3, 8), cond=torch.randn(3, 3))
    g = torch.Generator().manual_seed(2)
    loss = ((out.global_feature * torch.randn(out.global_feature.shape, generator=g)).sum()
            + (out.point_features * torch.randn(out.point_features.shape, generator=g)).sum()
            + model.regularization())
    loss.backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()
            or p.grad.abs().sum() == 0]
    assert not dead, f"no gradient reaches {dead}"
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_conditioning_changes_outputs_per_cloud(name, encoder_factory, clouds, randomize):
    model = encoder_factory(name, time_dim=8).eval()
    x = clouds(2, 64)
    t = torch.randn(2, 8)
    base = model(x, t_emb=t)
    # FiLM starts as the identity: the time input has no effect until trained
    t2 = t.clone()
    t2[1] += 1.0
    torch.testing.assert_close(model(x, t_emb=t2).global_feature, base.global_feature)
    randomize(model)
    base, moved = model(x, t_emb=t), model(x, t_emb=t2)
    torch.testing.assert_close(moved.global_feature[0], base.global_feature[0])  # cloud 0 untouched
    assert (moved.global_feature[1] - base.global_feature[1]).abs().max() > 1e-4


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_input_error(name, encoder_factory, clouds):
    model = encoder_factory(name, time_dim=4)
    x = clouds(2, 32)
    t = torch.zeros(2, 4)
    with pytest.raises(ShapeError, match="in_channels=3"):
        model(clouds(2, 32, features=1), t_emb=t)
    with pytest.raises(ShapeError, match="lengths"):
        model(x, torch.tensor([32, 0]), t_emb=t)
    with pytest.raises(ShapeError, match="lengths"):
        model(x, torch.tensor([33, 5]), t_emb=t)
    with pytest.raises(ShapeError, match=r"\(B, N, 3\)"):
        model(x[0], t_emb=t)
    with pytest.raises(ShapeError, match="t_emb"):
        model(x)
    with pytest.raises(ShapeError, match="t_emb must have shape"):
        model(x, t_emb=torch.zeros(2, 5))
    with pytest.raises(ShapeError, match="cond given"):
        model(x, t_emb=t, cond=torch.zeros(2, 1))


def test_pointnet_regularization_is_orthogonality_penalty(encoder_factory, clouds, randomize):
    model = encoder_factory("pointnet").eval()
    model(clouds(2, 32))
    assert model.regularization().item() == pytest.approx(0.0, abs=1e-10)  # T-Net starts at I
    randomize(model)
    model(clouds(2, 32))
    a = model._feature_transform
    eye = torch.eye(a.shape[-1])
    expected = sum(((eye - m @ m.T) ** 2).sum() for m in a) / len(a)
    assert model.regularization().item() == pytest.approx(expected.item(), rel=1e-5)
    assert expected.item() > 1e-3
    assert encoder_factory("dgcnn").regularization().item() == 0.0
    assert encoder_factory("pointnet2").regularization().item() == 0.0
