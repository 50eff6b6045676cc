"""Re-scoring a finished KDD run without training: its saved level-1 models (`kdd.saved`; the
baselines recompute) and level-2 models (LightGBM text model, ensemble weights) score the test splits
of a data folder (e.g. testB released later) into a new run folder: scores.parquet, submission.csv per
test split from the run's chosen method, compare.csv where the split's answers are present, run.json."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd

from ..config import load_config, to_dict
from ..errors import DataError
from ..io import atomic_dir, check_out, code_version, read_json_object, write_csv, write_json
from .config import KddRunConfig
from .data import LABELS_FILE, kdd_hashes, read_labels
from .methods import KddContext, build_methods
from .run import read_test_splits, required, write_test_splits
from .report import score_table, write_scores
from .stacked import stack_table

log = logging.getLogger(__name__)


def kdd_rescore(run, data_dir, out) -> dict:
    """Score `data_dir`'s test splits (the run config's `test_splits` present there) with the models saved
    in the KDD run folder `run`, written into the new folder `out` (an existing output is never replaced).
    Returns a summary (``chosen``, ``test`` NDCG@5 per answered split, ``table``, paths)."""
    started = time.time()
    run, out = Path(run), Path(out)
    record = _run_record(run)
    if out.is_dir() and any(out.iterdir()):
        raise DataError(f"{out}: already holds files; re-scoring writes a new folder (choose another --out)")
    check_out(out, False)
    if not Path(data_dir).is_dir():
        raise DataError(f"{data_dir}: not a folder (a KDD folder with {LABELS_FILE} and testA.tsv / testB.tsv)")
    config = load_config(record["config"], KddRunConfig)
    methods = build_methods(config)
    labels_path = required(data_dir, LABELS_FILE)
    context = KddContext(str(data_dir), tuple(read_labels(labels_path)))
    for m in methods:  # every model read back before any split is read: a missing one fails early
        m.load(run / "models" / m.spec.name, context)
    needs = tuple(sorted({n for m in methods for n in m.needs}))
    read = {"chunk_rows": config.chunk_rows, "feature_dim": config.feature_dim, "decode": needs}
    splits = read_test_splits(data_dir, config.test_splits, read)
    if not splits:
        raise DataError(f"{data_dir}: none of the run's test splits ({', '.join(config.test_splits)}) is there")
    level1 = [m for m in methods if m.level == 1]
    scores = {split: {m.spec.name: m.score(split, cands, context) for m in level1} for split, (cands, _) in splits.items()}
    for m in methods:
        if m.level == 2:
            for split, (cands, _) in splits.items():
                scores[split][m.spec.name] = m.predict(stack_table(cands, scores[split], m.inputs, m.extras))
    order = [m.spec.name for m in methods]
    scores = {split: {name: s[name] for name in order} for split, s in scores.items()}
    chosen = record["chosen"]
    summary = {"chosen": chosen, "test": {}, "submissions": {}}
    with atomic_dir(out, replace=False) as tmp:
        rows = write_test_splits(tmp, out, splits, scores, chosen, summary)
        table = pd.DataFrame(rows, columns=["split", "method", "NDCG@5", "queries", "score_kind", "chosen"])
        write_csv(tmp / "compare.csv", table)
        write_scores(tmp / "scores.parquet", [score_table(s, c, scores[s]) for s, (c, _) in splits.items()])
        files = [LABELS_FILE] + [f"{s}{ext}" for s in splits for ext in (".tsv", "_answer.json")]
        write_json(tmp / "run.json", {
            "stage": "kdd_rescore", "from_run": str(run), "from_run_data": record.get("data", {}),
            "config": to_dict(config), "data_dir": str(data_dir), "data": kdd_hashes(data_dir, files),
            "code_version": code_version(), "chosen": chosen, "test_ndcg5": summary["test"],
            "models": {m.spec.name: record.get("methods", {}).get(m.spec.name, {}).get("saved", []) for m in methods},
            "seconds": round(time.time() - started, 2)})
    summary.update(out=out, compare=out / "compare.csv", scores=out / "scores.parquet", run=out / "run.json", table=table)
    log.info("kdd rescore: %s -> %s (method %s)", run, out, chosen)
    return summary


def _run_record(run: Path) -> dict:
    path = run / "run.json"
    if not path.is_file():
        raise DataError(f"{run}: not a KDD run folder (no run.json)")
    record = read_json_object(path, "run.json")
    if record.get("stage") != "kdd":
        raise DataError(f"{path}: stage {record.get('stage')!r}, not a KDD run ('prodmatch kdd') to re-score")
    if not isinstance(record.get("config"), dict):
        raise DataError(f"{path}: no run config to re-score with")
    return record
