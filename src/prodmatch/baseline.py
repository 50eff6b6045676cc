"""The threshold baseline stage: one embedding method, its threshold tuned on train.csv, test.csv
predicted: the floor every later model must beat.

Candidates and tuning: `prodmatch.embedders.tune`.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from . import __version__
from .embedders.tune import neighbour_pairs, tune_baseline
from .io import data_hashes, new_run_dir, write_csv, write_json
from .metrics import matches_frame, read_truth, score_submission
from .summary import f1_entry, write_summary

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
    write_summary(run, task="shopee", stage="baseline", entries=[summary_entry(result)])
    return result


def summary_entry(info: dict) -> dict:
    """The run's summary entry: held-out test F1 where test_truth.csv was there, else train F1."""
    score = info.get("test") or info.get("train") or {}
    what = f"{info.get('method')} threshold {info.get('threshold')} ({'held-out test' if 'test' in info else 'train'})"
    return f1_entry("baseline", what, info, score)
