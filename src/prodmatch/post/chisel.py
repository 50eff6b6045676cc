"""Chisel: trim match sets so their size distribution matches train's group-size distribution.

Train and test groups are assumed to be alike in size, so a row in a group of size s should end
with s matches. From the largest size down, when more rows hold >= p matches than the target
allows, the rows holding exactly p whose p-th match is weakest lose it. Only removes; self stays;
the result hits the target's counts exactly wherever the sets were large enough.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from .threshold import Matches


def allowed_counts(target_sizes, n: int) -> np.ndarray:
    """``a[p]``: how many of n rows may hold >= p matches under the target (one size per group).

    A group of size s gives s rows with s matches; counts are rounded half up.
    """
    sizes = np.asarray(target_sizes, dtype=np.int64).ravel()
    if len(sizes) == 0 or sizes.min() < 1:
        raise DataError("target_sizes must be a non-empty list of group sizes >= 1")
    rows_per_size = np.bincount(sizes, weights=sizes.astype(np.float64))  # rows whose set has size s
    at_least = np.cumsum(rows_per_size[::-1])[::-1] / rows_per_size.sum()  # fraction with size >= p
    return np.floor(n * at_least + 0.5 + 1e-9).astype(np.int64)


def chisel(matches: Matches, target_sizes) -> Matches:
    """Remove the weakest matches until, for every p, rows with >= p matches fit the target.

    Ties between rows' p-th scores cut the lower row index first.
    """
    m = matches
    n = m.n
    allow = allowed_counts(target_sizes, n)
    is_self = m.rows == m.cols
    order = np.lexsort((m.cols, -m.scores, ~is_self, m.rows))  # per row: self, then strongest first
    scores = m.scores[order]
    size = m.sizes()
    start = np.r_[0, np.cumsum(size)[:-1]]
    for p in range(int(size.max(initial=1)), 1, -1):
        limit = allow[p] if p < len(allow) else 0
        excess = int(np.count_nonzero(size >= p)) - limit
        if excess > 0:
            # cut among rows holding exactly p: larger rows already earned their size at p + 1
            # (and excess <= their number, since the count of >= p+1 fits a limit <= this one)
            exact = np.flatnonzero(size == p)
            pth = scores[start[exact] + p - 1]
            cut = exact[np.lexsort((exact, pth))[:excess]]
            size[cut] = p - 1
    rank = np.arange(len(order)) - start[m.rows[order]]
    keep = np.zeros(len(order), bool)
    keep[order] = rank < size[m.rows[order]]
    return Matches(m.rows[keep], m.cols[keep], m.scores[keep], n)
