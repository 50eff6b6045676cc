"""The threshold baseline stage: one embedding method, its threshold tuned on train.csv, test.csv
predicted: the floor every later model must beat.

Candidates are each row's exact top-K neighbours (K = 50, Shopee's largest group), never every
pair above a low similarity: at 34,250 rows that list holds hundreds of millions of pairs.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .embedders import get_embedder
from .io import data_hashes, new_run_dir, write_csv, write_json
from .metrics import Scores, matches_frame, read_truth, score_submission
from .post.tune import best_row_threshold

NEIGHBOURS = 50  # a Shopee group has at most 50 postings, so top-50 (self included) loses none


def neighbour_pairs(frame: pd.DataFrame, method: str, k: int = NEIGHBOURS, embedding=None):
    """(rows, cols, sims) of every row's exact top-`k` list (self included) for an unsupervised
    embedding method (`prodmatch.embedders`); `embedding`: its ``transform(frame)``, if the caller
    has it already."""
    from .post.pool import search

    embedder = get_embedder(method)
    data = embedder.transform(frame) if embedding is None else embedding
    model = search(embedder.kind, data, k)
    rows = np.repeat(np.arange(model.n), model.idx.shape[1])
    return rows, model.idx.ravel(), model.sims.ravel()


@dataclass(frozen=True)
class BaselineResult:
    method: str
    threshold: float
    scores: Scores


def tune_baseline(frame: pd.DataFrame, method: str, embedding=None) -> BaselineResult:
    """Best threshold for `method` on a labelled frame (optimistic: tuned on the rows it scores)."""
    rows, cols, sims = neighbour_pairs(frame, method, embedding=embedding)
    grid = get_embedder(method).grid
    t, scores = best_row_threshold(rows, cols, sims, frame["label_group"].to_numpy(), grid)
    return BaselineResult(method, t, scores)


def predict_matches(frame: pd.DataFrame, method: str, threshold: float) -> pd.DataFrame:
    """Submission frame (posting_id, matches) for `method` at `threshold`; self always included."""
    rows, cols, sims = neighbour_pairs(frame, method)
    keep = sims >= threshold
    return matches_frame(frame["posting_id"], rows[keep], cols[keep])


def run_baseline(data_dir, *, method: str = "tfidf", out_root="oof", image_policy: str = "text-only") -> dict:
    """Tune `method`'s threshold on train.csv, predict test.csv, write a run folder.

    The run folder holds submission.csv and result.json (config, data hashes, scores); the
    test score is filled in when ``test_truth.csv`` (synthetic data) is present.
    """
    data_dir = Path(data_dir)
    started = time.time()
    from .data.shopee import read_shopee_csv

    train = read_shopee_csv(data_dir / "train.csv", image_policy=image_policy)
    test = read_shopee_csv(data_dir / "test.csv", image_policy=image_policy)
    tuned = tune_baseline(train, method)
    submission = predict_matches(test, method, tuned.threshold)
    run = new_run_dir(out_root, f"baseline-{method}")
    write_csv(run / "submission.csv", submission)
    result = {
        "stage": "baseline",
        "method": method,
        "threshold": tuned.threshold,
        "train": asdict(tuned.scores),
        "version": __version__,
        "data": data_hashes(data_dir),
        "data_dir": str(data_dir),
        "run": str(run),
    }
    truth_path = data_dir / "test_truth.csv"
    if truth_path.is_file():
        result["test"] = asdict(score_submission(read_truth(truth_path), submission))
    result["seconds"] = round(time.time() - started, 2)
    write_json(run / "result.json", result)
    return result
