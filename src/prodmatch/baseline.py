"""Threshold baselines (TF-IDF titles, phash images): the floor every later model must beat.

Pairs above a similarity threshold are found by chunked products, so memory stays bounded by
``chunk x n`` instead of ``n x n``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .encoders.phash import phash_codes, phash_similarity
from .encoders.tfidf import TfidfConfig, tfidf_embed
from .metrics import Scores, best_row_threshold

CHUNK = 2048


def sparse_pairs_above(x: sp.csr_matrix, threshold: float, chunk: int = CHUNK):
    """(rows, cols, sims) of every pair with cosine >= threshold among unit rows of `x`, self included."""
    rows, cols, sims = [], [], []
    xt = x.T.tocsc()
    for start in range(0, x.shape[0], chunk):
        block = (x[start:start + chunk] @ xt).tocoo()
        keep = block.data >= threshold
        rows.append(block.row[keep] + start)
        cols.append(block.col[keep])
        sims.append(block.data[keep])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    self_missing = np.setdiff1d(np.arange(x.shape[0]), rows[rows == cols])  # empty titles
    return (np.concatenate([rows, self_missing]), np.concatenate([cols, self_missing]),
            np.concatenate([*sims, np.ones(len(self_missing), np.float32)]))


def phash_pairs_above(hex_hashes, threshold: float, chunk: int = CHUNK):
    """(rows, cols, sims) with phash similarity >= threshold, self included."""
    codes = phash_codes(hex_hashes)
    rows, cols, sims = [], [], []
    for start in range(0, len(codes), chunk):
        sim = phash_similarity(codes[start:start + chunk, None], codes[None, :])
        r, c = np.nonzero(sim >= threshold)
        rows.append(r + start)
        cols.append(c)
        sims.append(sim[r, c])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)


@dataclass(frozen=True)
class BaselineResult:
    method: str
    threshold: float
    scores: Scores


def candidate_pairs(frame: pd.DataFrame, method: str, floor: float):
    """Pairs above `floor` for a baseline method: ``tfidf``, ``tfidf-char`` or ``phash``."""
    if method == "phash":
        return phash_pairs_above(frame["image_phash"], floor)
    config = TfidfConfig.char() if method == "tfidf-char" else TfidfConfig()
    return sparse_pairs_above(tfidf_embed(frame["title"], config), floor)


BASELINE_GRIDS = {
    "tfidf": np.round(np.arange(0.05, 1.0, 0.01), 2),
    "tfidf-char": np.round(np.arange(0.05, 1.0, 0.01), 2),
    "phash": np.round(1 - np.arange(0, 25) / 64, 4),
}


def tune_baseline(frame: pd.DataFrame, method: str) -> BaselineResult:
    """Best threshold for `method` on a labelled frame (optimistic: tuned on the rows it scores)."""
    grid = BASELINE_GRIDS[method]
    rows, cols, sims = candidate_pairs(frame, method, float(grid.min()))
    t, scores = best_row_threshold(rows, cols, sims, frame["label_group"].to_numpy(), grid)
    return BaselineResult(method, t, scores)


def predict_matches(frame: pd.DataFrame, method: str, threshold: float) -> pd.DataFrame:
    """Submission frame (posting_id, matches) for `method` at `threshold`; self always included."""
    rows, cols, _ = candidate_pairs(frame, method, threshold)
    return matches_frame(frame["posting_id"], rows, cols)


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
