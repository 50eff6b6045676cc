"""Threshold baselines (TF-IDF titles, phash images): the floor every later model must beat.

Candidates are each row's exact top-K neighbours (K = 50, Shopee's largest group), never every
pair above a low similarity: at 34,250 rows that list holds hundreds of millions of pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .encoders.phash import phash_codes
from .encoders.tfidf import TfidfConfig, tfidf_embed
from .metrics import Scores, best_row_threshold

NEIGHBOURS = 50  # a Shopee group has at most 50 postings, so top-50 (self included) loses none


def baseline_embedding(frame: pd.DataFrame, method: str):
    """The frame's representation for a baseline method: phash codes or a TF-IDF matrix."""
    if method == "phash":
        return phash_codes(frame["image_phash"])
    return tfidf_embed(frame["title"], TfidfConfig.char() if method == "tfidf-char" else TfidfConfig())


def neighbour_pairs(frame: pd.DataFrame, method: str, k: int = NEIGHBOURS, embedding=None):
    """(rows, cols, sims) of every row's exact top-`k` list (self included) for a baseline
    method: ``tfidf``, ``tfidf-char`` or ``phash``; `embedding`: its `baseline_embedding`, if
    the caller has it already."""
    from .post.union import PhashModel, SparseModel

    data = baseline_embedding(frame, method) if embedding is None else embedding
    model = PhashModel.search(data, k) if method == "phash" else SparseModel.search(data, k)
    rows = np.repeat(np.arange(model.n), model.idx.shape[1])
    return rows, model.idx.ravel(), model.sims.ravel()


@dataclass(frozen=True)
class BaselineResult:
    method: str
    threshold: float
    scores: Scores


BASELINE_GRIDS = {
    "tfidf": np.round(np.arange(0.05, 1.0, 0.01), 2),
    "tfidf-char": np.round(np.arange(0.05, 1.0, 0.01), 2),
    "phash": np.round(1 - np.arange(0, 25) / 64, 4),
}


def tune_baseline(frame: pd.DataFrame, method: str, embedding=None) -> BaselineResult:
    """Best threshold for `method` on a labelled frame (optimistic: tuned on the rows it scores)."""
    rows, cols, sims = neighbour_pairs(frame, method, embedding=embedding)
    t, scores = best_row_threshold(rows, cols, sims, frame["label_group"].to_numpy(), BASELINE_GRIDS[method])
    return BaselineResult(method, t, scores)


def predict_matches(frame: pd.DataFrame, method: str, threshold: float) -> pd.DataFrame:
    """Submission frame (posting_id, matches) for `method` at `threshold`; self always included."""
    rows, cols, sims = neighbour_pairs(frame, method)
    keep = sims >= threshold
    return matches_frame(frame["posting_id"], rows[keep], cols[keep])


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
