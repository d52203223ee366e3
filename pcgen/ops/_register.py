"""Python-side registrations for the compiled ops: fake (meta) kernels and autograd.

The C++/CUDA kernels only compute forward results; shapes for ``torch.compile`` and
gradients live here, once for every device. The gradient of the squared distances
``d[b,n,j] = |p1[b,n] - p2[b, idx[b,n,j]]|^2`` needs only ``idx``, so the backward is
a few torch ops (a gather and an index_add) and itself differentiable.
"""

from __future__ import annotations

import torch

from pcgen.ops.reference import gather_points


def _knn_fake(p1, p2, lengths1, lengths2, k, *rest):
    B, N, _ = p1.shape
    return p1.new_empty(B, N, k), p1.new_empty(B, N, k, dtype=torch.int64)


def _fps_fake(points, lengths, n, start_idx):
    return points.new_empty(points.shape[0], n, dtype=torch.int64)


def _knn_setup(ctx, inputs, output):
    p1, p2 = inputs[0], inputs[1]
    ctx.save_for_backward(p1, p2, output[1])


def knn_backward_from_idx(p1, p2, idx, grad_dists):
    """Gradients of squared neighbour distances w.r.t. ``p1`` (B,N,D) and ``p2`` (B,M,D)."""
    valid = (idx >= 0).to(p1.dtype)
    diff = (p1.unsqueeze(2) - gather_points(p2, idx)) * valid.unsqueeze(-1)
    g = 2.0 * grad_dists.unsqueeze(-1) * diff  # (B, N, k, D)
    grad_p1 = g.sum(2)
    B, N, k, D = g.shape
    flat = (idx.clamp_min(0) + torch.arange(B, device=idx.device).view(B, 1, 1) * p2.shape[1])
    grad_p2 = torch.zeros(B * p2.shape[1], D, dtype=p2.dtype, device=p2.device)
    grad_p2 = grad_p2.index_add(0, flat.reshape(-1), -g.reshape(-1, D))
    return grad_p1, grad_p2.view_as(p2)


def _knn_backward(ctx, grad_dists, grad_idx):
    p1, p2, idx = ctx.saved_tensors
    if grad_dists is None:
        return (None,) * 5
    if not torch.is_grad_enabled() and _has_backward_kernel(p1.device.type):
        # one fused pass; the torch-op version below stays for double backward and devices
        # without a kernel (on a GPU those few ops are cheap)
        gp1, gp2 = torch.ops.pcgen.knn_backward(p1, p2, idx, grad_dists)
    else:
        gp1, gp2 = knn_backward_from_idx(p1, p2, idx, grad_dists)
    return gp1, gp2, None, None, None


def _has_backward_kernel(device_type: str) -> bool:
    from pcgen.ops._ext import has_op

    return has_op("knn_backward", device_type)


def _ball_backward(ctx, grad_dists, grad_idx):
    return _knn_backward(ctx, grad_dists, grad_idx) + (None,)


def register() -> None:
    """Attach fake kernels and autograd to whichever ``pcgen::*`` ops the extension defined."""
    ops = torch.ops.pcgen
    if hasattr(ops, "knn"):
        torch.library.register_fake("pcgen::knn")(_knn_fake)
        torch.library.register_autograd("pcgen::knn", _knn_backward, setup_context=_knn_setup)
    if hasattr(ops, "ball_query"):
        torch.library.register_fake("pcgen::ball_query")(_knn_fake)
        torch.library.register_autograd("pcgen::ball_query", _ball_backward,
                                        setup_context=_knn_setup)
    if hasattr(ops, "knn_backward"):
        torch.library.register_fake("pcgen::knn_backward")(
            lambda p1, p2, idx, grad: (torch.empty_like(p1), torch.empty_like(p2)))
    if hasattr(ops, "farthest_point_sample"):
        torch.library.register_fake("pcgen::farthest_point_sample")(_fps_fake)
