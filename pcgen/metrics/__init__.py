"""Point-cloud generation metrics: MMD, COV, 1-NNA (Chamfer and EMD), occupancy JSD, precision/recall.

``evaluate_sets(generated, reference)`` computes all of them; the pieces are public too. See
``docs/metrics.md`` for the protocol (normalization, which Chamfer and EMD, tie rules) and
:class:`MetricFrame` for tiles in metres with heights above ground.
"""

from pcgen.metrics.distances import pair_distances, pairwise_distances
from pcgen.metrics.frame import MetricFrame
from pcgen.metrics.jsd import jensen_shannon_divergence, occupancy, occupancy_jsd
from pcgen.metrics.normalize import normalize_clouds
from pcgen.metrics.scores import coverage, minimum_matching_distance, one_nn_accuracy, precision_recall
from pcgen.metrics.suite import evaluate_sets

__all__ = ["MetricFrame", "coverage", "evaluate_sets", "jensen_shannon_divergence", "minimum_matching_distance",
           "normalize_clouds", "occupancy", "occupancy_jsd", "one_nn_accuracy", "pair_distances",
           "pairwise_distances", "precision_recall"]
