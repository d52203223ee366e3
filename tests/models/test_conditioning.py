"""The gap frame and the context encoder shared by every conditional head."""

from __future__ import annotations

import torch

from pcgen.models import ContextEncoder, from_box_frame, to_box_frame
from pcgen.models._util import regularization

from .conftest import gap_batch, make_encoder


def test_box_frame_round_trip_and_corners():
    box = torch.tensor([[-0.5, 0.0, 0.5, 2.0], [1.0, 1.0, 1.5, 1.2]])
    corners = torch.tensor([[[-0.5, 0.0, 0.3], [0.5, 2.0, -0.1], [0.0, 1.0, 0.0]],
                            [[1.0, 1.0, 0.0], [1.5, 1.2, 0.0], [1.25, 1.1, 9.0]]])
    local = to_box_frame(corners, box)
    expected = torch.tensor([[[-1.0, -1.0, 0.3], [1.0, 1.0, -0.1], [0.0, 0.0, 0.0]],
                             [[-1.0, -1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 9.0]]])
    torch.testing.assert_close(local, expected)
    torch.testing.assert_close(from_box_frame(local, box), corners)
    # outside points are clamped onto the box edge in xy, z untouched
    out = from_box_frame(torch.tensor([[[3.0, -2.0, 5.0]], [[0.0, 0.0, 1.0]]]), box)
    torch.testing.assert_close(out, torch.tensor([[[0.5, 0.0, 5.0]], [[1.25, 1.1, 1.0]]]))


def test_context_encoder_is_translation_invariant_in_xy():
    torch.manual_seed(0)
    enc = ContextEncoder(make_encoder(norm="layer"), out_dim=8, hidden=16)
    b = gap_batch(2, 40, 8)
    shift = torch.tensor([3.0, -1.0])
    moved_ctx = b["context"].clone()
    moved_ctx[..., :2] += shift
    moved_box = b["gap_box"] + shift.repeat(2)
    c, c_moved = enc(b["context"], b["gap_box"]), enc(moved_ctx, moved_box)
    assert c.shape == (2, 8)
    # the shape part of c only sees box-frame coordinates; only the box-position input changes
    enc.fuse[0].weight.data[:, -4:-2] = 0
    torch.testing.assert_close(enc(b["context"], b["gap_box"]), enc(moved_ctx, moved_box), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(c, c_moved)


def test_regularization_collects_only_existing_terms():
    class NoReg(torch.nn.Module):
        def regularization(self):
            return None

    assert regularization(None, NoReg(), torch.nn.Linear(2, 2)) is None
    assert regularization(make_encoder()).item() == 0.0
