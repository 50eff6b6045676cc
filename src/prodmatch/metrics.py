"""Competition metrics: Shopee mean row-F1 (+P/R), pair P/R/F1 (CCKS), best-threshold search.

Everything works on flat pair arrays (row i predicts column j), vectorised with bincount /
cumsum, so scoring 70,000 rows x 50 neighbours takes milliseconds, not a Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, preview


@dataclass(frozen=True)
class Scores:
    """F1 with its precision and recall (means over rows for Shopee, over pairs for CCKS)."""

    f1: float
    precision: float
    recall: float

    def __str__(self) -> str:
        return f"f1={self.f1:.4f} precision={self.precision:.4f} recall={self.recall:.4f}"


# ---------------------------------------------------------------- Shopee: mean row F1
def row_scores(rows, cols, groups) -> Scores:
    """Mean row-F1/P/R of predicted pairs against truth groups (a row's truth includes itself).

    `rows`, `cols`: predicted pairs as index arrays (duplicates are counted once);
    `groups`: label per row. A row with no prediction scores F1 = precision = 0.
    """
    f1, precision, recall = per_row_scores(rows, cols, groups)
    return Scores(float(f1.mean()), float(precision.mean()), float(recall.mean()))


def per_row_scores(rows, cols, groups, negative_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(f1, precision, recall) arrays, one value per row, for `row_scores`; each wrong match
    counts `negative_weight` times (the expected score in a denser pool: `post.tune.density_weight`)."""
    groups = np.asarray(groups)
    n = len(groups)
    rows, cols = _unique_pairs(np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64), n)
    hits = np.bincount(rows, weights=groups[rows] == groups[cols], minlength=n)
    n_pred = hits + negative_weight * (np.bincount(rows, minlength=n) - hits)
    n_true = row_group_sizes(groups)
    precision = np.divide(hits, n_pred, out=np.zeros(n), where=n_pred > 0)
    return 2 * hits / (n_pred + n_true), precision, hits / n_true


def threshold_grid(low: float = 0.05, step: float = 0.01, fine_from: float = 0.99, fine_step: float = 0.001) -> np.ndarray:
    """Thresholds low..1 by `step`, then by `fine_step` above `fine_from`: a union of several
    models, or a barely trained encoder, piles its similarities up just below 1, where a coarse
    grid cannot separate them."""
    coarse = np.arange(low, fine_from - 1e-9, step)
    fine = np.arange(fine_from, 1.0 + 1e-9, fine_step)
    return np.unique(np.round(np.r_[coarse, fine], 6))


def _unique_pairs(rows, cols, n):
    # sort + diff: np.unique is ~15x slower on millions of int64 keys (numpy 2.4)
    keys = np.sort(rows * n + cols)
    keys = keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys
    return keys // n, keys % n


def row_group_sizes(groups) -> np.ndarray:
    """Size of each row's group (the row's true match-set size)."""
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return counts[inverse]


# ---------------------------------------------------------------- pairs: CCKS F1 of label 1
def pair_scores(y_true, y_pred) -> Scores:
    """Precision / recall / F1 of the positive class (0 where undefined)."""
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    tp = float(np.sum(y_true & y_pred))
    precision = tp / y_pred.sum() if y_pred.any() else 0.0
    recall = tp / y_true.sum() if y_true.any() else 0.0
    f1 = 2 * tp / (y_pred.sum() + y_true.sum()) if (y_pred.any() or y_true.any()) else 0.0
    return Scores(float(f1), float(precision), float(recall))


def best_pair_threshold(y_true, scores) -> tuple[float, Scores]:
    """Threshold t maximising pair F1 of ``score >= t``, over every distinct score (exact)."""
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        raise DataError("no pairs to choose a threshold on")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], y_true[order]
    tp = np.cumsum(y)
    n_pred = np.arange(1, len(s) + 1)
    last_of_value = np.r_[s[1:] != s[:-1], True]  # cut only between distinct scores
    tp, n_pred, cuts = tp[last_of_value], n_pred[last_of_value], s[last_of_value]
    n_pos = y.sum()
    f1 = 2 * tp / (n_pred + n_pos)
    k = int(np.argmax(f1))
    precision = tp[k] / n_pred[k]
    recall = tp[k] / n_pos if n_pos else 0.0
    return float(cuts[k]), Scores(float(f1[k]), float(precision), float(recall))


# ---------------------------------------------------------------- submission files
def read_submission(path) -> pd.DataFrame:
    """A Shopee submission (``posting_id,matches``) as strings; clear error on a bad file."""
    from .data.shopee import read_csv_strict

    sub = read_csv_strict(path, "submission")
    missing = {"posting_id", "matches"} - set(sub.columns)
    if missing:
        raise DataError(f"{path}: submission needs columns posting_id,matches; missing {sorted(missing)}")
    return sub


def score_submission(truth: pd.DataFrame, submission: pd.DataFrame) -> Scores:
    """Mean row-F1/P/R of a submission against a frame with posting_id and label_group.

    Every truth posting must have exactly one submission row and every id named must exist.
    """
    ids = pd.Index(truth["posting_id"].astype(str))
    sub_ids = submission["posting_id"].astype(str)
    dup = sub_ids[sub_ids.duplicated()].unique()
    if len(dup):
        raise DataError(f"submission repeats posting_id(s): {preview(dup)}")
    unknown = sub_ids[~sub_ids.isin(ids)]
    if len(unknown):
        raise DataError(f"submission has {len(unknown)} posting_id(s) not in the truth: {preview(unknown)}")
    absent = ids[~ids.isin(sub_ids)]
    if len(absent):
        raise DataError(f"submission lacks {len(absent)} posting_id(s): {preview(absent)}")
    pairs = pd.DataFrame({"row": ids.get_indexer(sub_ids), "match": submission["matches"].astype(str).str.split()})
    pairs = pairs.explode("match").dropna()
    cols = ids.get_indexer(pairs["match"])
    if (cols < 0).any():
        raise DataError(f"submission matches name unknown posting_id(s): {preview(pairs['match'][cols < 0].unique())}")
    return row_scores(pairs["row"].to_numpy(np.int64), cols, truth["label_group"].to_numpy())


def read_truth(path) -> pd.DataFrame:
    """posting_id + label_group from train.csv or a synthetic test_truth.csv."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: truth file missing or empty")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV ({err})") from None
    missing = {"posting_id", "label_group"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: truth needs posting_id and label_group; missing {sorted(missing)}")
    from .data.shopee import check_single_line_rows, checked_labels

    check_single_line_rows(frame, path)
    ids = frame["posting_id"].str.strip()
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise DataError(f"{path}: {len(dup)} duplicate posting_id(s) in the truth: {preview(dup)}")
    return pd.DataFrame({"posting_id": ids, "label_group": checked_labels(frame["label_group"], ids, path)})


def matches_frame(posting_ids: pd.Series, rows, cols) -> pd.DataFrame:
    """posting_id + space-joined matched ids (self first, then the rest in id order)."""
    ids = np.asarray(posting_ids, dtype=object)
    n = len(ids)
    rows = np.concatenate([np.arange(n), rows])
    cols = np.concatenate([np.arange(n), cols])
    pairs = pd.DataFrame({"row": rows, "col": cols, "self": rows == cols}).drop_duplicates(["row", "col"])
    pairs = pairs.sort_values(["row", "self", "col"], ascending=[True, False, True])
    joined = pd.Series(ids[pairs["col"].to_numpy()]).groupby(pairs["row"].to_numpy()).agg(" ".join)
    return pd.DataFrame({"posting_id": ids, "matches": joined.reindex(range(n)).to_numpy()})
