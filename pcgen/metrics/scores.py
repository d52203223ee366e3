"""MMD, COV, 1-NNA and precision/recall from cloud-to-cloud distance matrices.

Definitions follow PointFlow (Yang et al. 2019) for MMD, COV and 1-NNA, and Kynkäänniemi et al.
(2019) for precision/recall, with clouds as the samples and Chamfer or EMD as the distance
(no feature network). Matrices: ``d_gr`` (G, R) generated-to-reference, ``d_gg`` (G, G),
``d_rr`` (R, R).
"""

from __future__ import annotations

import torch


def minimum_matching_distance(d_gr: torch.Tensor) -> float:
    """MMD: for each reference cloud the distance to its closest generated cloud, averaged.

    Args:
        d_gr: (G, R). Returns: float (lower is better, 0 when every reference is generated).
    """
    return float(d_gr.min(0).values.mean())


def coverage(d_gr: torch.Tensor) -> float:
    """COV: fraction of reference clouds that are the nearest reference of some generated cloud.

    Args:
        d_gr: (G, R). Returns: float in [1/R, 1] (higher is better).
    """
    return float(d_gr.argmin(1).unique().numel() / d_gr.shape[1])


def one_nn_accuracy(d_gg: torch.Tensor, d_gr: torch.Tensor, d_rr: torch.Tensor,
                    atol: float = 0.0) -> float:
    """1-NNA: leave-one-out accuracy of the 1-nearest-neighbour classifier telling G from R.

    0.5 means the sets are indistinguishable, 1.0 fully separated. Tie rule: a cloud whose
    nearest cloud of the *other* set is an exact copy (distance <= ``atol``) cannot be told
    apart from it and scores 1/2, as does a cloud whose nearest same-set and other-set distances
    are equal; so two identical sets score exactly 0.5 (PointFlow's top-k rule would give 0).

    Args:
        d_gg: (G, G), d_gr: (G, R), d_rr: (R, R). Returns: float in [0, 1].
    """
    inf = torch.tensor(float("inf"), dtype=torch.float64)

    def scores(d_same, d_other):
        d_same = d_same.double().clone()
        d_same.fill_diagonal_(inf)
        same = d_same.min(1).values
        other = d_other.double().min(1).values
        s = (same < other).double()
        s[same == other] = 0.5
        s[other <= atol] = 0.5
        return s

    s = torch.cat([scores(d_gg, d_gr), scores(d_rr, d_gr.T)])
    return float(s.mean())


def precision_recall(d_gg: torch.Tensor, d_gr: torch.Tensor, d_rr: torch.Tensor,
                     k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al.): k-NN balls as manifold estimates.

    Precision: fraction of generated clouds inside the k-NN ball of some reference cloud
    (realism); recall: fraction of reference clouds inside the k-NN ball of some generated
    cloud (diversity). Balls include their boundary.

    Args:
        d_gg: (G, G), d_gr: (G, R), d_rr: (R, R); k: neighbours (self excluded).
    Returns:
        (precision, recall), floats in [0, 1].
    Raises:
        ValueError: ``k`` is not a whole number >= 1 (k = 0 gave balls of radius 0: (0, 0)).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")

    def radii(d):
        d = d.double().clone()
        d.fill_diagonal_(float("inf"))
        kk = min(k, d.shape[0] - 1)
        if kk < 1:
            return torch.zeros(d.shape[0], dtype=torch.float64)
        return d.topk(kk, dim=1, largest=False).values[:, -1]

    r_ref, r_gen = radii(d_rr), radii(d_gg)
    d = d_gr.double()
    precision = (d <= r_ref[None, :]).any(1).double().mean()
    recall = (d <= r_gen[:, None]).any(0).double().mean()
    return float(precision), float(recall)
