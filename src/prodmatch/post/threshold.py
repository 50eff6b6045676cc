"""Match sets (the canonical flat-pair form) and how they are chosen: threshold and Min2.

A `Matches` holds, for n rows, the pairs (row i matches col j) with a score, sorted by
(row, col) with no duplicate pair and every row matching itself (score 1.0). It converts to and
from an n x n CSR matrix, per-row lists, and the ``(n, k)`` neighbour arrays `knn` returns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import DataError


@dataclass(frozen=True, eq=False)
class Matches:
    """Pairs (rows[e], cols[e]) with scores[e]; canonical: sorted by (row, col), unique, self in."""

    rows: np.ndarray
    cols: np.ndarray
    scores: np.ndarray
    n: int

    # ------------------------------------------------------------ construction
    @classmethod
    def from_pairs(cls, rows, cols, scores, n: int) -> "Matches":
        """Canonical form of arbitrary pairs: self pairs added, duplicates keep their best score."""
        n = int(n)
        rows = np.asarray(rows, dtype=np.int64).ravel()
        cols = np.asarray(cols, dtype=np.int64).ravel()
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if not len(rows) == len(cols) == len(scores):
            raise ValueError(f"rows, cols, scores differ in length: {len(rows)}, {len(cols)}, {len(scores)}")
        for name, a in (("rows", rows), ("cols", cols)):
            if len(a) and (a.min() < 0 or a.max() >= n):
                raise DataError(f"{name} must lie in [0, {n}); got values in [{a.min()}, {a.max()}]")
        if not np.isfinite(scores).all():
            raise DataError("match scores contain NaN/inf")
        self_idx = np.arange(n, dtype=np.int64)
        rows = np.concatenate([rows, self_idx])
        cols = np.concatenate([cols, self_idx])
        scores = np.concatenate([scores, np.ones(n)])
        key = rows * n + cols
        order = np.argsort(key, kind="stable")
        key, scores = key[order], scores[order]
        first = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
        if not first.all():  # duplicates: keep the highest score of each pair
            starts = np.flatnonzero(first)
            scores = np.maximum.reduceat(scores, starts)
            key = key[starts]
        rows, cols = key // n, key % n
        scores[rows == cols] = 1.0
        return cls(rows, cols, scores, n)

    @classmethod
    def from_knn(cls, sims, idx) -> "Matches":
        """Every neighbour of a self-search ``(n, k)`` result as a candidate pair."""
        sims, idx = _check_knn(sims, idx)
        n, k = idx.shape
        return cls.from_pairs(np.repeat(np.arange(n), k), idx.ravel(), sims.ravel(), n)

    @classmethod
    def from_csr(cls, matrix) -> "Matches":
        """From an n x n sparse matrix whose stored entries are the pairs (data = score)."""
        m = sp.csr_matrix(matrix)
        if m.shape[0] != m.shape[1]:
            raise DataError(f"match matrix must be square, got {m.shape}")
        coo = m.tocoo()
        return cls.from_pairs(coo.row, coo.col, coo.data, m.shape[0])

    # ------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.rows)

    @property
    def indptr(self) -> np.ndarray:
        """CSR row pointer: row i's pairs are entries indptr[i]:indptr[i+1]."""
        return np.r_[0, np.cumsum(self.sizes())]

    def sizes(self) -> np.ndarray:
        """Matches per row (self included), length n."""
        return np.bincount(self.rows, minlength=self.n)

    def to_csr(self) -> sp.csr_matrix:
        """n x n CSR matrix, data = score (explicit entries even where a score is 0)."""
        return sp.csr_matrix((self.scores, self.cols, self.indptr), shape=(self.n, self.n))

    def to_lists(self) -> list[np.ndarray]:
        """Per-row arrays of matched columns (e.g. to write a submission)."""
        return np.split(self.cols, self.indptr[1:-1])

    def subset(self, keep) -> "Matches":
        """The pairs where `keep` is True; self pairs are always kept."""
        keep = np.asarray(keep, dtype=bool) | (self.rows == self.cols)
        return Matches(self.rows[keep], self.cols[keep], self.scores[keep], self.n)

    def per_row_scores(self, groups, negative_weight: float = 1.0):
        """(f1, precision, recall) per row against truth `groups` (`prodmatch.metrics.per_row_scores`)."""
        from ..metrics import per_row_scores

        return per_row_scores(self.rows, self.cols, groups, negative_weight)

    def pair_set(self) -> set[tuple[int, int]]:
        """Python set of (row, col) pairs, for tests and small comparisons."""
        return set(zip(self.rows.tolist(), self.cols.tolist()))


# ---------------------------------------------------------------- threshold + Min2 on knn arrays
def threshold_matches(sims, idx, t: float) -> Matches:
    """A row matches its neighbours with similarity >= t, and itself."""
    return min2(sims, idx, t, None)


def min2(sims, idx, t: float, t_min2: float | None) -> Matches:
    """Threshold matches; a row left alone also gets its nearest other neighbour if its sim >= t_min2.

    Groups have at least 2 members, so a lone row most likely belongs with its nearest neighbour;
    t_min2 (< t) guards precision. ``t_min2=None`` is plain thresholding. Ties: first in the list.
    """
    _check_min2(t, t_min2)
    sims, idx = _check_knn(sims, idx)
    n = len(idx)
    is_self = idx == np.arange(n)[:, None]
    keep = (sims >= np.float64(t)) | is_self  # compare in float64 like `select`
    if t_min2 is not None and idx.shape[1]:  # empty lists (k = 0): nobody has a neighbour to add
        other = ~is_self
        alone = ~(keep & other).any(1)
        best = np.where(other, sims, -np.inf).argmax(1)
        best_sim = sims[np.arange(n), best]
        add = np.flatnonzero(alone & other.any(1) & (best_sim >= np.float64(t_min2)))
        keep[add, best[add]] = True
    r = np.broadcast_to(np.arange(n)[:, None], idx.shape)
    return Matches.from_pairs(r[keep], idx[keep], sims[keep], n)


# ---------------------------------------------------------------- the same on candidate Matches
def select(candidates: Matches, t: float, t_min2: float | None = None) -> Matches:
    """Threshold (and Min2) on candidate pairs with scores, e.g. a similarity union."""
    _check_min2(t, t_min2)
    c = candidates
    is_self = c.rows == c.cols
    keep = (c.scores >= t) | is_self
    if t_min2 is not None:
        other = np.flatnonzero(~is_self)
        ro, so = c.rows[other], c.scores[other]
        if len(other):
            starts = np.flatnonzero(np.r_[True, ro[1:] != ro[:-1]])
            seg_max = np.maximum.reduceat(so, starts)
            lens = np.diff(np.r_[starts, len(ro)])
            hit = np.flatnonzero(so == np.repeat(seg_max, lens))  # entries equal to their row's max
            first = hit[np.r_[True, ro[hit][1:] != ro[hit][:-1]]]  # lowest col among ties
            has_other = np.bincount(c.rows[keep & ~is_self], minlength=c.n) > 0
            best_row, best_score = ro[first], so[first]
            add = ~has_other[best_row] & (best_score >= t_min2)
            keep[other[first[add]]] = True
    return Matches(c.rows[keep], c.cols[keep], c.scores[keep], c.n)


def _check_min2(t, t_min2) -> None:
    if t_min2 is not None and t_min2 > t:
        raise ValueError(f"t_min2 ({t_min2}) must not exceed t ({t}): Min2 lowers the bar for lone rows")


def _check_knn(sims, idx):
    sims, idx = np.asarray(sims), np.asarray(idx)
    if sims.ndim != 2 or sims.shape != idx.shape:
        raise DataError(f"sims and idx must be (n, k) arrays of one shape, got {sims.shape} and {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= len(idx)):
        raise DataError(f"neighbour indices must lie in [0, {len(idx)}) (a self-search result)")
    return sims, idx.astype(np.int64, copy=False)
