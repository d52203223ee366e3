"""Shared blocks: timestep embedding values, FiLM, the MLP builder, packing."""

from __future__ import annotations

import math

import pytest
import torch

from pcgen.errors import ShapeError
from pcgen.nn.batching import Packing, check_points
from pcgen.nn.blocks import FiLM, shared_mlp, timestep_embedding


def test_timestep_embedding_values():
    t = torch.tensor([0.0, 10.0])
    emb = timestep_embedding(t, 8)
    assert emb.shape == (2, 8)
    freqs = torch.exp(-math.log(10000.0) * torch.arange(4) / 4)
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(10 * freqs), torch.sin(10 * freqs)]))
    torch.testing.assert_close(emb[0], torch.cat([torch.ones(4), torch.zeros(4)]))
    with pytest.raises(ShapeError):
        timestep_embedding(torch.zeros(2, 2), 8)


def test_film_is_identity_at_init_then_per_cloud():
    film = FiLM(4, 3)
    x = torch.randn(5, 3)
    batch = torch.tensor([0, 0, 1, 1, 1])
    c = torch.randn(2, 4)
    torch.testing.assert_close(film(x, c, batch), x)
    with torch.no_grad():
        film.proj.bias.copy_(torch.tensor([1.0, 0, 0, 0.5, 0, 0]))  # scale ch0 by 2, shift ch0 by .5
    y = film(x, c, batch)
    torch.testing.assert_close(y[:, 0], 2 * x[:, 0] + 0.5)
    torch.testing.assert_close(y[:, 1:], x[:, 1:])


def test_shared_mlp_norms_act_per_point():
    x = torch.randn(7, 4)
    for norm in ("layer", "none"):
        mlp = shared_mlp([4, 8, 2], norm=norm, last_act=False).eval()
        torch.testing.assert_close(mlp(x)[:3], mlp(x[:3]))  # a row's output ignores the other rows
    assert (shared_mlp([4, 8], act="relu")(x) >= 0).all()
    with pytest.raises(ValueError):
        shared_mlp([4])


def test_packing_round_trip_and_rows():
    lengths = torch.tensor([3, 1, 2])
    p = Packing.from_lengths(lengths, 3)
    x = torch.arange(18.0).view(3, 3, 2)
    rows = p.pack(x)
    assert rows.shape == (6, 2) and p.batch.tolist() == [0, 0, 0, 1, 2, 2]
    back = p.unpack(rows)
    assert torch.equal(back[p.mask], x[p.mask]) and (back[~p.mask] == 0).all()
    assert p.to_rows(torch.tensor([[2], [0], [-1]])).tolist() == [[2], [3], [-1]]


def test_check_points_errors():
    with pytest.raises(ShapeError, match="floating"):
        check_points(torch.zeros(1, 4, 3, dtype=torch.long), None, 3)
    with pytest.raises(ShapeError, match="integers"):
        check_points(torch.zeros(1, 4, 3), torch.tensor([2.0]), 3)
    with pytest.raises(ShapeError, match="shape"):
        check_points(torch.zeros(2, 4, 3), torch.tensor([2]), 3)
    assert check_points(torch.zeros(2, 4, 3), None, 3).lengths.tolist() == [4, 4]


def test_check_points_names_a_dtype_other_than_the_weights_and_takes_list_lengths():
    """float64 points into a float32 encoder failed deep inside with 'mat1 and mat2 must have the
    same dtype'; lengths as a list raised an AttributeError."""
    layer = torch.nn.Linear(3, 4)
    with pytest.raises(ShapeError, match="points are torch.float64 but the encoder's weights are torch.float32"):
        check_points(torch.zeros(2, 4, 3, dtype=torch.float64), None, 3, layer)
    assert check_points(torch.zeros(2, 4, 3), [4, 2], 3, layer).lengths.tolist() == [4, 2]
