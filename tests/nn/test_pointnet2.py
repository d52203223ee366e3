"""PointNet++ parts: centroid sampling, interpolation, and float64 gradcheck of one level."""

from __future__ import annotations

import pytest
import torch

from pcgen.nn.batching import Packing
from pcgen.nn.pointnet2 import (PointNet2Encoder, SetAbstraction, centroid_counts, interpolate_features,
                                sample_centroids)


def test_centroid_counts():
    lengths = torch.tensor([100, 30, 1])
    assert centroid_counts(lengths, 50).tolist() == [50, 30, 1]
    assert centroid_counts(lengths, 0.25).tolist() == [25, 8, 1]
    with pytest.raises(ValueError):
        centroid_counts(lengths, 1.5)


def test_sample_centroids_start_far_from_mean_and_ignore_order(clouds):
    x = clouds(2, 200)
    lengths = torch.tensor([200, 120])
    x[1, 120:] = 0.0
    idx = sample_centroids(x, lengths, 16)
    for b, n in enumerate(lengths.tolist()):
        pts = x[b, :n]
        far = ((pts - pts.mean(0)) ** 2).sum(-1).argmax()
        assert idx[b, 0] == far
        assert (idx[b] < n).all() and len(set(idx[b].tolist())) == 16
    perm = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    idx_p = sample_centroids(x[:1, perm], lengths[:1], 16)
    assert torch.equal(perm[idx_p[0]], idx[0])
    # more centroids asked than points: -1 past the cloud's length
    short = sample_centroids(x[1:], torch.tensor([5]), 8)
    assert (short[0, 5:] == -1).all() and sorted(short[0, :5].tolist()) == list(range(5))


def test_interpolation_exact_at_coarse_points_and_midpoints():
    pos = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [0.0, 5, 0]])
    feats = torch.tensor([[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]])
    coarse = Packing.from_lengths(torch.tensor([3]), 3)
    fine_pos = torch.tensor([[1.0, 0, 0], [0.5, 0, 0]])
    fine = Packing.from_lengths(torch.tensor([2]), 2)
    out = interpolate_features(feats, pos, coarse, fine_pos, fine, k=2)
    torch.testing.assert_close(out, torch.tensor([[3.0, 2.0], [2.0, 1.0]]))
    # fewer coarse points than k in a second cloud: the missing neighbours get no weight
    pos2 = torch.cat([pos, torch.tensor([[7.0, 7, 7]])])
    feats2 = torch.cat([feats, torch.tensor([[-4.0, 4.0]])])
    coarse2 = Packing.from_lengths(torch.tensor([3, 1]), 3)
    fine2 = Packing.from_lengths(torch.tensor([2, 1]), 2)
    out2 = interpolate_features(feats2, pos2, coarse2, torch.cat([fine_pos, torch.zeros(1, 3)]), fine2, k=2)
    torch.testing.assert_close(out2[2], torch.tensor([-4.0, 4.0]))


def test_set_abstraction_gradcheck_float64(clouds):
    torch.manual_seed(0)
    sa = SetAbstraction(1, 4, radii=[0.7, 1.2], neighbors=[3, 6], channels=[[4, 3], [2]],
                        norm="none").double()
    x = clouds(2, 12, features=1, seed=3, dtype=torch.float64)
    packing = Packing.from_lengths(torch.tensor([12, 8]), 12)
    rows = packing.pack(x)
    pos = rows[:, :3].clone().requires_grad_()
    feats = rows[:, 3:].clone().requires_grad_()
    out, pos_c, cpack = sa(feats, pos, packing)
    assert out.shape == (8, 5) and pos_c.shape == (8, 3) and cpack.lengths.tolist() == [4, 4]
    torch.autograd.gradcheck(lambda f, p: sa(f, p, packing)[0], (feats, pos), eps=1e-6, atol=1e-6)


def test_interpolation_gradcheck_float64(clouds):
    coarse = Packing.from_lengths(torch.tensor([6, 4]), 6)
    fine = Packing.from_lengths(torch.tensor([9, 7]), 9)
    pos = coarse.pack(clouds(2, 6, seed=1, dtype=torch.float64)).requires_grad_()
    feats = torch.randn(10, 3, dtype=torch.float64, requires_grad=True)
    pos_f = fine.pack(clouds(2, 9, seed=2, dtype=torch.float64)).requires_grad_()
    torch.autograd.gradcheck(lambda f, p, q: interpolate_features(f, p, coarse, q, fine, k=3),
                             (feats, pos, pos_f), eps=1e-6, atol=1e-6)


def test_msg_levels_concatenate_scales_and_reject_bad_specs():
    enc = PointNet2Encoder(sa_levels=[{"num_centroids": 0.5, "radii": [0.2, 0.4], "neighbors": [8, 16],
                                       "channels": [[8, 16], [8, 24]]}],
                           global_channels=(32,), fp_channels=((16,),))
    assert enc.sa[0].out_channels == 40 and enc.global_dim == 32 and enc.point_dim == 16
    with pytest.raises(ValueError, match="one entry per scale"):
        PointNet2Encoder(sa_levels=[{"num_centroids": 8, "radii": [0.2, 0.4], "neighbors": [8],
                                     "channels": [[8]]}], fp_channels=((16,),))
    with pytest.raises(ValueError, match="fp_channels"):
        PointNet2Encoder(sa_levels=[{"num_centroids": 8, "radius": 0.2, "neighbors": 8, "channels": [8]}],
                         fp_channels=((16,), (16,)))
