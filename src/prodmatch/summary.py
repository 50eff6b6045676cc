"""One run summary for every stage of every task: ``summary.json`` beside the stage's own files.

Each stage (baseline, a stored model, the matcher, the stacker, the CCKS / pairs stage, the KDD
stage) writes its scored entries here in one schema when it finishes; the leaderboard reads this
one format and nothing else, so a new task's runs are listed by writing it.

    {"schema": 1, "task": "shopee", "stage": "matcher",
     "entries": [{"entry": "matcher", "what": "...", "metric": "F1", "f1": 0.91, ...}], ...}
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import DataError
from .io import write_json

SUMMARY_FILE = "summary.json"
SCHEMA = 1
ENTRY_FIELDS = ("entry", "what", "data", "metric", "f1", "precision", "recall", "predicted_f1", "ndcg5", "test_ndcg5",
                "test_rows", "stages", "seconds")
"""`metric` names an entry's score: ``F1`` (f1 / precision / recall / predicted_f1 for a test of
test_rows rows) or ``NDCG@5`` (ndcg5 on valid, test_ndcg5 on the first test split with answers)."""


def data_hash(info: dict) -> str:
    """The first 12 hex digits of the first input hash a stage recorded (`io.data_hashes`)."""
    data = info.get("data") or {}
    first = next(iter(data.values()), "") if isinstance(data, dict) else ""
    return str(first)[:12]


def _number(value) -> float | None:
    return None if value is None else round(float(value), 4)


def f1_entry(entry: str, what: str, info: dict, score: dict, stages: str = "", predicted: dict | None = None) -> dict:
    """A scored entry of metric F1: `score`'s f1 / precision / recall, `predicted`'s f1 for a test
    of ``predicted["test_rows"]`` rows; data hash and seconds from the stage's `info`."""
    predicted = predicted or {}
    return {"entry": entry, "what": what, "data": data_hash(info), "metric": "F1", "f1": _number(score.get("f1")),
            "precision": _number(score.get("precision")), "recall": _number(score.get("recall")),
            "predicted_f1": _number(predicted.get("f1")), "ndcg5": None, "test_ndcg5": None,
            "test_rows": predicted.get("test_rows"), "stages": stages, "seconds": info.get("seconds")}


def ndcg_entry(entry: str, what: str, info: dict, ndcg5: float, test_ndcg5: float | None, stages: str = "") -> dict:
    """A scored entry of metric NDCG@5 (valid, and the first test split with answers)."""
    return {**f1_entry(entry, what, info, {}, stages), "metric": "NDCG@5", "ndcg5": _number(ndcg5),
            "test_ndcg5": _number(test_ndcg5)}


def write_summary(folder, *, task: str, stage: str, entries: list[dict], replace: bool = True) -> Path:
    """``folder/summary.json`` (atomic) with the stage's entries, each holding every `ENTRY_FIELDS`."""
    for e in entries:
        missing = [f for f in ENTRY_FIELDS if f not in e]
        if missing:
            raise ValueError(f"summary entry {e.get('entry')!r} lacks {missing}")
    path = Path(folder) / SUMMARY_FILE
    write_json(path, {"schema": SCHEMA, "task": task, "stage": stage,
                      "entries": [{f: e[f] for f in ENTRY_FIELDS} for e in entries]}, replace=replace)
    return path


def read_summary(path) -> dict:
    """A summary.json, checked: its schema, task, stage and entries (DataError naming the file)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable summary ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or not isinstance(data.get("entries"), list):
        raise DataError(f"{path}: not a prodmatch summary of schema {SCHEMA}")
    for e in data["entries"]:
        if not isinstance(e, dict) or any(f not in e for f in ENTRY_FIELDS):
            raise DataError(f"{path}: an entry lacks some of {', '.join(ENTRY_FIELDS)}")
    return data


def run_summaries(run) -> list[Path]:
    """The summary files of a run folder: its own and those one or two levels down (stack/,
    models/<name>/), in a fixed order."""
    run = Path(run)
    return sorted(p for pattern in (SUMMARY_FILE, f"*/{SUMMARY_FILE}", f"*/*/{SUMMARY_FILE}") for p in run.glob(pattern))
