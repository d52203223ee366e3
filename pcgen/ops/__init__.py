"""Point-set primitives: kNN, ball query, farthest point sampling, Chamfer and EMD.

Each public function checks its inputs and documents shapes; underneath it calls the compiled
kernel registered as ``torch.ops.pcgen.*`` (``cuda_ops/``) or, when ``pcgen._C`` is not built, the
pure-torch reference in :mod:`pcgen.ops.reference`. :mod:`pcgen.nn.graph` turns their neighbour
indices into torch-geometric edge indices.
"""

from pcgen.ops.chamfer import ChamferOutput, chamfer
from pcgen.ops.emd import emd
from pcgen.ops.knn import KNN, BallQuery, ball_query, knn, knn_gather
from pcgen.ops.sampling import farthest_point_sample

__all__ = ["KNN", "BallQuery", "ChamferOutput", "ball_query", "chamfer", "emd",
           "farthest_point_sample", "knn", "knn_gather"]
