"""The CUDA auction against scipy's exact assignment (runs only where a GPU is present)."""

from __future__ import annotations

import pytest
import torch

from pcgen.ops import emd
from pcgen.ops._ext import has_op

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_auction_within_tolerance(squared, dtype):
    if not has_op("emd_auction", "cuda"):
        pytest.skip("pcgen._C has no CUDA kernel for emd_auction")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 256, 3, generator=g, dtype=dtype)
    y = torch.rand(3, 256, 3, generator=g, dtype=dtype) + 0.2
    exact = emd(x, y, method="exact", squared=squared).double()
    xc, yc = x.cuda().requires_grad_(True), y.cuda()
    out = emd(xc, yc, squared=squared, eps=1e-2, return_assignment=True)
    a = out.assignment.cpu()
    assert all(sorted(r.tolist()) == list(range(256)) for r in a)
    rel = (out.cost.detach().cpu().double() - exact) / exact
    assert (rel > -1e-4).all() and (rel < 1e-2).all()
    out.cost.sum().backward()
    assert torch.isfinite(xc.grad).all()
