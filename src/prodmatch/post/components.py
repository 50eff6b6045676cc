"""The stacker's graph step: connected components of the thresholded match graph (up to a size cap)."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .threshold import Matches


def components(matches: Matches, cap: int) -> Matches:
    """Rows in a connected component of at most `cap` rows match the whole component.

    Larger components keep their own edges: chaining through a big component mostly adds false
    matches. Scores of added pairs are 0 (they came from the graph, not the model).
    """
    from scipy.sparse.csgraph import connected_components

    graph = sp.csr_matrix((np.ones(len(matches)), (matches.rows, matches.cols)), shape=(matches.n, matches.n))
    _, label = connected_components(graph, directed=False)
    size = np.bincount(label)
    small = np.flatnonzero(size[label] <= cap)
    order = small[np.argsort(label[small], kind="stable")]
    lab = label[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    comp_size = np.diff(np.r_[starts, len(order)])
    per_member = np.repeat(comp_size, comp_size)  # component size of each member, in `order`
    first = np.repeat(starts, comp_size)  # where each member's component starts in `order`
    # member e pairs with order[first_e : first_e + size_e]
    a = np.repeat(order, per_member)
    within = np.arange(len(a)) - np.repeat(np.cumsum(per_member) - per_member, per_member)
    b = order[np.repeat(first, per_member) + within]
    rows = np.r_[matches.rows, a]
    cols = np.r_[matches.cols, b]
    scores = np.r_[matches.scores, np.zeros(len(a))]
    return Matches.from_pairs(rows, cols, scores, matches.n)
