"""The KDD run's tables: compare.csv (NDCG@5 per split and method), scores.parquet, submission files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..io import atomic_path, write_csv
from .data import Candidates
from .metrics import K, rank_ndcg, score_kdd_submission, submission_frame, top_k


def compare_rows(split: str, candidates: Candidates, scores: dict[str, np.ndarray], answers, chosen: str | None,
                 kinds: dict[str, str] | None = None) -> list[dict]:
    """One compare.csv row per method: mean NDCG@5 over the split's answered queries; `score_kind` from
    `kinds` (valid: ``held_out`` for level 1, ``oof`` for level 2), else ``held_out`` (a test split)."""
    rows = []
    for name, s in scores.items():
        per_query = rank_ndcg(candidates.query_ids, candidates.codes, candidates.product_ids, s, answers)
        rows.append({"split": split, "method": name, "NDCG@5": round(float(per_query.mean()), 6),
                     "queries": len(per_query), "score_kind": (kinds or {}).get(name, "held_out"),
                     "chosen": name == chosen})
    return rows


def score_table(split: str, candidates: Candidates, scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Every candidate row's method scores (scores.parquet), in file order."""
    frame = pd.DataFrame({"split": split, "query_id": candidates.query_ids[candidates.codes],
                          "product_id": candidates.product_ids})
    return frame.assign(**{name: s for name, s in scores.items()})


def write_submission(path: Path, candidates: Candidates, scores: np.ndarray, answers=None) -> float | None:
    """The competition's submission.csv (query-id, product1..product5) of one split; re-scored with the
    official checks when the split's answers are known (the NDCG@5 it returns)."""
    top = top_k(candidates.codes, scores, len(candidates.query_ids), K)
    table = submission_frame(candidates.query_ids, top, candidates.product_ids)
    write_csv(path, table)
    return None if answers is None else score_kdd_submission(pd.read_csv(path), answers)


def write_scores(path: Path, tables: list[pd.DataFrame]) -> Path:
    with atomic_path(path) as tmp:
        pd.concat(tables, ignore_index=True).to_parquet(tmp, index=False)
    return path
