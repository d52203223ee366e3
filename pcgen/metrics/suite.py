"""All generation metrics for two sets of clouds in one call (what ``pcgen evaluate`` reports)."""

from __future__ import annotations

from typing import Sequence

import torch

from pcgen.errors import ShapeError
from pcgen.metrics.distances import Metric, pairwise_distances
from pcgen.metrics.jsd import MAX_RESOLUTION, occupancy_jsd
from pcgen.metrics.normalize import Normalize, normalize_clouds
from pcgen.metrics.scores import coverage, minimum_matching_distance, one_nn_accuracy, precision_recall
from pcgen.ops._checks import check_finite
from pcgen.options import check_flag, check_range


def check_metric_settings(chunk, emd_eps, emd_squared, jsd_resolution, pr_k) -> None:
    """Refuse a setting that would crash later or quietly change the report (``pr_k=0`` reported
    zeros); ``pcgen evaluate`` calls this before it reads any cloud."""
    check_range("chunk", chunk, 1, 1_000_000, integer=True)
    check_range("emd_eps", emd_eps, 0.0, 1.0, open_low=True)
    check_flag("emd_squared", emd_squared)
    check_range("jsd_resolution", jsd_resolution, 2, MAX_RESOLUTION, integer=True)
    check_range("pr_k", pr_k, 1, 1000, integer=True)


def evaluate_sets(generated: torch.Tensor, reference: torch.Tensor,
                  metrics: Sequence[Metric] = ("chamfer", "emd"), normalize: Normalize = "box",
                  chunk: int = 256, emd_eps: float = 1e-2, emd_squared: bool = False,
                  jsd_resolution: int = 28, pr_k: int = 3, progress: bool = False,
                  jsd_bounds=None) -> dict:
    """MMD, COV, 1-NNA and precision/recall per distance, plus the occupancy JSD.

    Args:
        generated: (G, N, 3) clouds; reference: (R, N, 3) clouds (same N for EMD).
        metrics: distances to use (``"chamfer"``, ``"emd"``).
        normalize: per-cloud normalization applied to both sets first (see
            :mod:`pcgen.metrics.normalize`).
        chunk: pairs per distance call (memory knob).
        emd_eps: auction tolerance (relative; the EMD is within it of the optimum).
        emd_squared: EMD of squared distances instead of plain ones.
        jsd_resolution: voxels per axis of the JSD grid.
        jsd_bounds: (low (3,), high (3,)) box of the JSD grid; None is [-1, 1]^3. Clouds in the
            metre frame (``normalize="none"``) pass :meth:`pcgen.metrics.frame.MetricFrame.bounds`.
        pr_k: k of the precision/recall k-NN balls.
    Returns:
        ``{"num_generated", "num_reference", "settings": {...}, "jsd", "chamfer": {"mmd", "cov",
        "1nna", "precision", "recall"}, "emd": {...}}``.
    """
    for name, t in (("generated", generated), ("reference", reference)):
        if t.dim() != 3 or t.shape[-1] != 3 or t.shape[0] < 2 or t.shape[1] < 1:
            raise ShapeError(f"{name} clouds must be (K >= 2, N >= 1, 3), got {tuple(t.shape)}")
    if "emd" in metrics and generated.shape[1] != reference.shape[1]:
        raise ShapeError(f"EMD needs clouds of equal size: generated have {generated.shape[1]} "
                         f"points, reference {reference.shape[1]}")
    check_metric_settings(chunk, emd_eps, emd_squared, jsd_resolution, pr_k)
    if jsd_bounds is None:
        jsd_box = "[-1,1]^3"
    else:
        lo, hi = (tuple(float(v) for v in torch.as_tensor(c, dtype=torch.float64).expand(3)) for c in jsd_bounds)
        jsd_box = " x ".join(f"[{a:g},{b:g}]" for a, b in zip(lo, hi))
    gen = normalize_clouds(generated.float(), normalize)
    ref = normalize_clouds(reference.float(), normalize)
    check_finite("generated clouds", gen)
    check_finite("reference clouds", ref)
    report = {
        "num_generated": int(gen.shape[0]),
        "num_reference": int(ref.shape[0]),
        "num_points": int(gen.shape[1]),
        "settings": {"normalize": normalize, "chamfer": "squared, mean over points, both directions summed",
                     "emd": f"auction, {'squared' if emd_squared else 'plain'} distances, "
                            f"mean over points, within {emd_eps:g} of optimal",
                     "jsd": f"bits, {jsd_resolution}^3 voxels over {jsd_box}", "pr_k": pr_k,
                     "1nna_ties": "exact copies and equal distances score 1/2"},
        "jsd": occupancy_jsd(gen, ref, jsd_resolution, jsd_bounds),
    }
    kw = {"emd_eps": emd_eps, "emd_squared": emd_squared}
    for metric in metrics:
        d_gr = pairwise_distances(gen, ref, metric, chunk, progress=progress, **kw)
        d_gg = pairwise_distances(gen, gen, metric, chunk, symmetric=True, progress=progress, **kw)
        d_rr = pairwise_distances(ref, ref, metric, chunk, symmetric=True, progress=progress, **kw)
        precision, recall = precision_recall(d_gg, d_gr, d_rr, pr_k)
        report[metric] = {
            "mmd": minimum_matching_distance(d_gr),
            "cov": coverage(d_gr),
            "1nna": one_nn_accuracy(d_gg, d_gr, d_rr),
            "precision": precision,
            "recall": recall,
        }
    return report
