"""Every head runs on every pcgen.nn encoder (PointNet++, DGCNN; PointNet is covered elsewhere),
including the WGAN-GP double backward and conditional flow matching."""

from __future__ import annotations

import pytest
import torch

from pcgen.models import (
    ContextEncoder,
    DiffusionHead,
    FlowMatchingHead,
    FoldingDecoder,
    GANHead,
    NoiseSchedule,
    PointDenoiser,
    PointDiscriminator,
    VAEHead,
)
from pcgen.nn import DGCNNEncoder, PointNet2Encoder

from .conftest import gap_batch


def small(cls, **kw):
    if cls is DGCNNEncoder:
        return DGCNNEncoder(k=8, edge_channels=((16,), (16,)), emb_channels=32, point_channels=(32,), **kw)
    return PointNet2Encoder(sa_levels=({"num_centroids": 16, "radii": [0.5], "neighbors": [8],
                                        "channels": [[16, 32]]},),
                            global_channels=(32,), fp_channels=((32,),), **kw)


@pytest.mark.parametrize("cls", [PointNet2Encoder, DGCNNEncoder])
def test_heads_on_encoder(cls):
    torch.manual_seed(0)
    points = {"points": torch.rand(4, 48, 3) * 2 - 1}
    gaps = gap_batch(4, 64, 48)
    heads = [
        (VAEHead(small(cls), FoldingDecoder(8), latent_dim=8), points),
        (GANHead(FoldingDecoder(8), PointDiscriminator(small(cls, norm="layer")), noise_dim=8, loss="wgan-gp"), points),
        (DiffusionHead(PointDenoiser(small(cls, time_dim=16), time_dim=16), NoiseSchedule("linear", 100), steps=3), points),
        (FlowMatchingHead(PointDenoiser(small(cls, time_dim=16, cond_dim=16), time_dim=16, cond_dim=16),
                          context_encoder=ContextEncoder(small(cls), out_dim=16), steps=2), gaps),
    ]
    for head, batch in heads:
        terms = ({**head.discriminator_loss(batch), **head.generator_loss(batch)}
                 if isinstance(head, GANHead) else head.loss(batch))
        assert all(torch.isfinite(v) for v in terms.values())
        sum(terms.values()).backward()
        grads = [p.grad for p in head.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
        cond = {"context": batch["context"][:2], "gap_box": batch["gap_box"][:2]} if "context" in batch else {}
        assert head.eval().sample(2, 48, **cond).shape == (2, 48, 3)
