"""Stages composed into runs a notebook or the CLI can call: baseline and the demo main job."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from . import __version__
from .baseline import predict_matches, tune_baseline
from .data.shopee import read_shopee_csv
from .data.synth import generate
from .errors import DataError
from .io import file_sha256, new_run_dir, write_csv, write_json
from .metrics import Scores, score_submission

log = logging.getLogger(__name__)


def read_truth(path) -> pd.DataFrame:
    """posting_id + label_group from train.csv or a synthetic test_truth.csv."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: truth file missing or empty")
    frame = pd.read_csv(path, dtype={"posting_id": str})
    missing = {"posting_id", "label_group"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: truth needs posting_id and label_group; missing {sorted(missing)}")
    return frame


def run_baseline(data_dir, *, method: str = "tfidf", out_root="oof", image_policy: str = "text-only") -> dict:
    """Tune `method`'s threshold on train.csv, predict test.csv, write a run folder.

    The run folder holds submission.csv and result.json (config, data hashes, scores); the
    test score is filled in when ``test_truth.csv`` (synthetic data) is present.
    """
    data_dir = Path(data_dir)
    started = time.time()
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
        "data": {name: file_sha256(data_dir / name) for name in ("train.csv", "test.csv")},
        "data_dir": str(data_dir),
        "run": str(run),
    }
    truth_path = data_dir / "test_truth.csv"
    if truth_path.is_file():
        result["test"] = asdict(score_submission(read_truth(truth_path), submission))
    result["seconds"] = round(time.time() - started, 2)
    write_json(run / "result.json", result)
    return result


def demo_data(root="input/synthetic", *, seed: int = 0) -> Path:
    """The demo Shopee data set: generated once per seed, reused afterwards (it is deterministic)."""
    folder = Path(root) / f"shopee-demo-seed{seed}"
    if not (folder / "test_truth.csv").is_file():
        log.info("generating synthetic Shopee demo data into %s", folder)
        generate("shopee", folder, seed=seed, preset="demo", overwrite=True)
    return folder


def demo(*, seed: int = 0, data_root="input/synthetic", out_root="oof") -> dict:
    """The README's main job (for now): demo data -> TF-IDF baseline -> submission + scores."""
    folder = demo_data(data_root, seed=seed)
    return run_baseline(folder, method="tfidf", out_root=out_root, image_policy="error")


def format_scores(label: str, scores: dict | Scores) -> str:
    scores = Scores(**scores) if isinstance(scores, dict) else scores
    return f"{label}: {scores}"
