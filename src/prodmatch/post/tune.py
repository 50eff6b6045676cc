"""Threshold curves: row-F1/P/R of `select(candidates, t, t_min2)` for every grid point at once.

For candidate pairs with scores, a row's predicted set at threshold t is itself plus its pairs
with score >= t; Min2 adds the row's best other pair when it is alone at t and that score is
>= t_min2. Bucketing each score on the grid and taking cumulative sums gives the whole
(t, t_min2) surface in O(pairs + rows x grid), so nested threshold tuning costs milliseconds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..metrics import Scores, row_group_sizes, threshold_grid  # noqa: F401  (threshold_grid: re-exported)
from .threshold import Matches

DEFAULT_GRID = threshold_grid()


@dataclass(frozen=True)
class Curve:
    """Sums over one pool's rows of F1, precision and recall on a threshold grid.

    ``base[m][g]``: metric m summed over rows at t = grid[g] without Min2; ``min2_gain[m][b]``:
    what Min2 adds for the rows whose best other score falls in bucket b (grid[b] <= s < grid[b+1]).
    """

    grid: np.ndarray
    n_rows: int
    base: dict[str, np.ndarray]
    min2_gain: dict[str, np.ndarray]

    def sums(self, ti: int, t2i: int | None = None) -> dict[str, float]:
        """Metric sums at t = grid[ti] and t_min2 = grid[t2i] (None: no Min2); t2i <= ti."""
        out = {}
        for m, base in self.base.items():
            value = base[ti]
            if t2i is not None and t2i < ti:  # rows alone at t whose best lies in [grid[t2i], grid[ti])
                value += self.min2_gain[m][t2i:ti].sum()
            out[m] = float(value)
        return out

    def surface(self, metric: str = "f1") -> np.ndarray:
        """(G, G) metric sum at [ti, t2i] for t2i <= ti (Min2 threshold up to t); -inf above."""
        g = len(self.grid)
        cum = np.r_[0.0, np.cumsum(self.min2_gain[metric])]
        ti, t2i = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
        out = self.base[metric][:, None] + cum[ti] - cum[t2i]
        out[t2i > ti] = -np.inf
        return out


def curve(candidates: Matches, groups, grid=DEFAULT_GRID, rows_mask=None, negative_weight: float = 1.0) -> Curve:
    """The `Curve` of candidate pairs (scores) against truth `groups` (one label per row).

    `rows_mask` restricts the sums to some rows (e.g. one fold's rows of a pool searched whole).
    `negative_weight` w counts each wrong pair w times: the expected row-F1 in a pool with w times
    the distractors of this one (`density_weight`), whose groups are the same size.
    """
    grid = np.asarray(grid, dtype=np.float64)
    groups = np.asarray(groups)
    mask = np.ones(candidates.n, bool) if rows_mask is None else np.asarray(rows_mask, bool)
    n, g = candidates.n, len(grid)
    c = candidates
    other = (c.rows != c.cols) & mask[c.rows]  # only the summed rows' pairs matter
    rows, cols, scores = c.rows[other], c.cols[other], c.scores[other]
    true = groups[rows] == groups[cols]
    bucket = np.searchsorted(grid, scores, side="right") - 1  # largest g with grid[g] <= score
    listed = bucket >= 0
    members = np.flatnonzero(mask)
    local = np.full(n, -1, np.int64)
    local[members] = np.arange(len(members))
    at = local[rows]

    def per_row_counts(weights) -> np.ndarray:
        flat = np.bincount(at[listed] * g + bucket[listed], weights=weights[listed], minlength=len(members) * g)
        return np.cumsum(flat.reshape(len(members), g)[:, ::-1], axis=1)[:, ::-1]  # pairs with score >= grid[t]

    n_true = row_group_sizes(groups)
    pred = 1.0 + per_row_counts(np.where(true, 1.0, float(negative_weight)))
    hits = 1.0 + per_row_counts(true.astype(np.float64))
    t_col = n_true[members][:, None].astype(np.float64)
    base = {
        "f1": (2 * hits / (pred + t_col)).sum(0),
        "precision": (hits / pred).sum(0),
        "recall": (hits / t_col).sum(0),
    }
    best_bucket, best_true = _best_other(candidates, rows, scores, true, bucket)
    has = (best_bucket >= 0) & mask
    b, y, tt = best_bucket[has], best_true[has].astype(np.float64), n_true[has].astype(np.float64)
    # alone: {self}, hits 1; with Min2: {self, best}, hits 1 + y
    gain = {
        "f1": 2 * (1 + y) / (2 + tt) - 2 / (1 + tt),
        "precision": (1 + y) / 2 - 1,
        "recall": y / tt,
    }
    min2_gain = {m: np.bincount(b, weights=v, minlength=g) for m, v in gain.items()}
    return Curve(grid, int(mask.sum()), base, min2_gain)


def _best_other(c: Matches, rows, scores, true, bucket):
    """Per row: grid bucket of its best other pair (ties: lowest col, as `select`) and its truth."""
    best_bucket = np.full(c.n, -1, np.int64)
    best_true = np.zeros(c.n, bool)
    if len(rows):
        order = np.lexsort((np.arange(len(rows)), -scores, rows))  # per row: best score, then lowest col
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        best_bucket[rows[first]] = bucket[first]
        best_true[rows[first]] = true[first]
    return best_bucket, best_true


def density_weight(pool_rows: int, test_rows: int | None) -> float:
    """How many times a test pool of `test_rows` outnumbers a CV pool of `pool_rows` in distractors
    per row: (test_rows - 1) / (pool_rows - 1); 1 without a test size.

    Why: a row's wrong candidates above a threshold grow with the pool it is searched in, its true
    ones do not (a group is whole in either pool), so thresholds tuned on a fold of a 1,499-row
    train set are too loose for a 3,058-row test set.
    """
    if not test_rows or pool_rows < 2:
        return 1.0
    return (int(test_rows) - 1) / (int(pool_rows) - 1)


# test sizes a bundle carries thresholds for: 256 .. 262,144 rows, a factor 2 apart (predict
# takes the nearest in log size: at most a factor sqrt(2) off)
SIZE_GRID = tuple(2**e for e in range(8, 19))


def size_table(curves_at, n_rows: int, *, min2: bool, sizes=SIZE_GRID) -> list[dict]:
    """Thresholds tuned for each test size: ``[{"rows", "t", "t_min2", "f1"}]``, where
    ``curves_at(rows)`` gives the parts' curves weighted for that size (`density_weight`) and f1
    is their mean row-F1 at those thresholds (in-sample: thresholds and score on the same rows)."""
    table = []
    for rows in sorted({int(r) for r in sizes}):
        curves = curves_at(rows)
        ti, t2i = best_thresholds(curves, min2=min2)
        grid = curves[0].grid
        f1 = sum(c.sums(ti, t2i)["f1"] for c in curves) / max(1, n_rows)
        table.append({"rows": rows, "t": float(grid[ti]), "t_min2": None if t2i is None else float(grid[t2i]),
                      "f1": round(float(f1), 4)})
    return table


def thresholds_for(table, rows: int) -> dict:
    """The `size_table` entry nearest to `rows` in log size (the test set predict meets)."""
    if not table:
        raise ValueError("empty size table")
    return min(table, key=lambda e: (abs(np.log(max(rows, 1)) - np.log(e["rows"])), e["rows"]))


def best_thresholds(curves, *, min2: bool) -> tuple[int, int | None]:
    """Grid indices (t, t_min2) maximising summed F1 over `curves` (one per pool); ties: lowest t."""
    curves = list(curves)
    if not curves:
        raise ValueError("need at least one curve to tune on")
    if not min2:
        total = sum(c.base["f1"] for c in curves)
        return int(np.argmax(total)), None
    total = sum(c.surface("f1") for c in curves)
    ti, t2i = np.unravel_index(int(np.argmax(total)), total.shape)
    return int(ti), int(t2i)


def nested_thresholds(curves, *, min2: bool) -> list[tuple[int, int | None]]:
    """For each curve (a fold), the grid indices tuned on all the other curves."""
    curves = list(curves)
    if len(curves) < 2:
        raise ValueError("nested tuning needs at least two folds")
    return [best_thresholds(curves[:f] + curves[f + 1 :], min2=min2) for f in range(len(curves))]


def nested_sums(curves, *, min2: bool) -> tuple[dict[str, float], list[tuple[int, int | None]]]:
    """Metric sums over every fold's rows, each fold at thresholds tuned on the others."""
    chosen = nested_thresholds(curves, min2=min2)
    totals = {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    for c, (ti, t2i) in zip(curves, chosen):
        for m, v in c.sums(ti, t2i).items():
            totals[m] += v
    return totals, chosen


def best_row_threshold(rows, cols, sims, groups, thresholds=None) -> tuple[float, Scores]:
    """Threshold t maximising mean row-F1 when a row matches itself and every j with sim >= t.

    Candidate pairs (e.g. a KNN list) may or may not contain self pairs: self is always matched;
    a pair listed twice counts once. One pass over the pairs scores every threshold at once
    (`prodmatch.post.tune.curve`), so a whole grid costs about as much as one threshold. Ties go
    to the threshold that comes first in `thresholds`.
    """
    groups = np.asarray(groups)
    thresholds = threshold_grid() if thresholds is None else np.asarray(thresholds, dtype=np.float64).ravel()
    if len(thresholds) == 0:
        raise ValueError("need at least one threshold")
    grid, position = np.unique(thresholds, return_inverse=True)
    candidates = Matches.from_pairs(rows, cols, sims, len(groups))
    sums = curve(candidates, groups, grid).base
    f1 = sums["f1"][position]
    # first of the best in the given order; sums that differ in the last bits (the same F1 added
    # up in another order) are ties
    best = int(np.flatnonzero(f1 >= f1.max() - 1e-9 * max(1.0, abs(float(f1.max()))))[0])
    n = max(len(groups), 1)
    g = position[best]
    return float(thresholds[best]), Scores(float(sums["f1"][g] / n), float(sums["precision"][g] / n),
                                           float(sums["recall"][g] / n))
