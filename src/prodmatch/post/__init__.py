"""Post-processing on neighbour lists and match sets: threshold + Min2, neighbourhood blending,
similarity union, unit-mismatch filter, chisel. All vectorised over pairs (numpy / scipy.sparse).

Neighbour results are the ``(n, k)`` arrays of `prodmatch.neighbors.knn`; match sets are
`Matches` (flat pairs sorted by (row, col), self always in), convertible to CSR and per-row lists.
"""
from .blend import blend, iterative_blend, neighbourhood_blend
from .chisel import allowed_counts, chisel
from .threshold import Matches, min2, select, threshold_matches
from .union import candidate_pairs, pair_similarities, similarity_union, union_scores
from .units import conflict, conflicts, extract, pair_conflicts

__all__ = [
    "Matches", "threshold_matches", "min2", "select",
    "blend", "neighbourhood_blend", "iterative_blend",
    "candidate_pairs", "pair_similarities", "union_scores", "similarity_union",
    "extract", "conflict", "conflicts", "pair_conflicts",
    "allowed_counts", "chisel",
]
