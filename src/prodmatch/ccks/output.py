"""CCKS 2022 task 9.2 result file (pair embeddings + threshold, JSONL): writer, reader and a local scorer,
so a result file is scored locally before it is submitted; format, assumptions: ccks/README.md."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .data import iter_jsonl
from ..errors import DataError, preview
from ..stack.ensemble import decide
from ..io import write_text
from ..metrics import Scores, pair_scores
from ..registry import Registry

RESULT_FIELDS = ("src_item_id", "src_item_emb", "tgt_item_id", "tgt_item_emb", "threshold")
MAX_DIM = 1024
EPS = 1e-3


# ---------------------------------------------------------------- similarity
def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dot = np.einsum("ij,ij->i", a, b)
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide(dot, norm, out=np.zeros_like(dot), where=norm > 0)


def _inner(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def _tgt0(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return b[:, 0].copy()


SIMILARITIES = Registry("similarity", {"cosine": _cosine, "inner": _inner, "tgt0": _tgt0})
SAME_DIM = {"cosine", "inner"}


def pair_score(src_emb, tgt_emb, similarity: str = "cosine"):
    """Score of one pair (1-d inputs -> float) or of each row of two (n, d) matrices."""
    score = SIMILARITIES.get(similarity)
    a, b = np.asarray(src_emb, dtype=np.float64), np.asarray(tgt_emb, dtype=np.float64)
    single = a.ndim == 1 and b.ndim == 1
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b) or 0 in a.shape or 0 in b.shape:
        raise DataError(f"pair_score: need two non-empty (n, d) embeddings, got {a.shape} and {b.shape}")
    if similarity in SAME_DIM and a.shape[1] != b.shape[1]:
        raise DataError(f"pair_score: {similarity} needs equal dimensions, got {a.shape[1]} and {b.shape[1]}")
    scores = score(a, b)
    return float(scores[0]) if single else scores


# ---------------------------------------------------------------- embeddings as strings
def format_embedding(vector) -> str:
    """``"[0.1, -2.5]"``: a JSON list of round-trip float reprs."""
    return "[" + ", ".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float64).ravel()) + "]"


def parse_embedding(value, where: str = "embedding") -> np.ndarray:
    """A float64 vector from a ``"[...]"`` string (a JSON list is accepted too)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{where}: not a list of numbers: {value[:60]!r}") from None
    if not isinstance(value, list) or not value or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise DataError(f"{where}: expected a non-empty list of numbers, got {str(value)[:60]!r}")
    vector = np.asarray(value, dtype=np.float64)
    if not np.isfinite(vector).all():
        raise DataError(f"{where}: non-finite value")
    if len(vector) > MAX_DIM:
        raise DataError(f"{where}: dimension {len(vector)} exceeds the task's limit of {MAX_DIM}")
    return vector


# ---------------------------------------------------------------- writing
def write_result_file(path: str | os.PathLike, pairs: pd.DataFrame, src_emb, tgt_emb, threshold) -> Path:
    """Write the result jsonl (atomically): one line per row of `pairs` (``src_item_id``,
    ``tgt_item_id``) with the rows of `src_emb` / `tgt_emb` (n, d) and `threshold` (a number,
    or one per pair)."""
    missing = [c for c in ("src_item_id", "tgt_item_id") if c not in pairs.columns]
    if missing:
        raise DataError(f"result file: pairs need columns src_item_id, tgt_item_id; missing {missing}")
    n = len(pairs)
    src, tgt = np.asarray(src_emb, dtype=np.float64), np.asarray(tgt_emb, dtype=np.float64)
    for name, emb in (("src_emb", src), ("tgt_emb", tgt)):
        if emb.ndim != 2 or len(emb) != n or emb.shape[1] == 0:
            raise DataError(f"result file: {name} must be ({n}, d) with d >= 1, got {emb.shape}")
        if emb.shape[1] > MAX_DIM:
            raise DataError(f"result file: {name} has dimension {emb.shape[1]} > the task's limit {MAX_DIM}")
        if not np.isfinite(emb).all():
            row = int(np.nonzero(~np.isfinite(emb).all(axis=1))[0][0])
            raise DataError(f"result file: {name} has non-finite values (first at row {row})")
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (n,)) if np.ndim(threshold) == 0 \
        else np.asarray(threshold, dtype=np.float64)
    if thr.shape != (n,) or not np.isfinite(thr).all():
        raise DataError(f"result file: threshold must be a finite number or {n} finite numbers")
    lines = [
        json.dumps({"src_item_id": str(s), "src_item_emb": format_embedding(a), "tgt_item_id": str(t),
                    "tgt_item_emb": format_embedding(b), "threshold": float(h)}, ensure_ascii=False)
        for s, a, t, b, h in zip(pairs["src_item_id"], src, pairs["tgt_item_id"], tgt, thr)
    ]
    return write_text(path, "".join(line + "\n" for line in lines))


def lookup_embeddings(ids, item_ids: Sequence[str], matrix) -> np.ndarray:
    """Rows of `matrix` (one per entry of `item_ids`) for `ids`; unknown ids are a DataError."""
    index = pd.Index(pd.Series(item_ids).astype(str))
    if index.has_duplicates:
        raise DataError(f"lookup_embeddings: duplicate item id(s) {preview(index[index.duplicated()].unique())}")
    pos = index.get_indexer(pd.Series(ids).astype(str))
    if (pos < 0).any():
        raise DataError(f"lookup_embeddings: {int((pos < 0).sum())} id(s) without an embedding: "
                        f"{preview(pd.unique(np.asarray(ids, dtype=object)[pos < 0]))}")
    return np.asarray(matrix)[pos]


def encode_decision_as_embeddings(scores, thresholds=0.0, *, inclusive: bool = False
                                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """(src_emb (n, 2), tgt_emb (n, 2), shared threshold 0.0) whose cosine > 0 exactly where
    ``scores > thresholds`` (``>=`` with `inclusive`). `thresholds`: one number or one per pair.

    Use ``ThresholdEnsemble.decision_function(S)`` with 0.0, ``F1Vote.decision_function(S)``
    with 0.0 and ``inclusive=True``, or a single model's probabilities with its threshold."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), s.shape)
    if not (np.isfinite(s).all() and np.isfinite(t).all()):
        raise DataError("encode_decision_as_embeddings: scores and thresholds must be finite")
    decision = decide(s, t, inclusive)
    with np.errstate(over="ignore"):  # overflow gives +-inf: tanh is then +-1, the sign comes from `decision`
        margin = s - t
    magnitude = EPS + (1.0 - EPS) * np.abs(np.tanh(margin))
    c = np.where(decision, magnitude, -magnitude)
    src = np.zeros((len(s), 2))
    src[:, 0] = 1.0
    tgt = np.stack([c, np.sqrt(np.clip(1.0 - c * c, 0.0, None))], axis=1)
    return src, tgt, 0.0


def write_decision_result(path: str | os.PathLike, pairs: pd.DataFrame, scores, thresholds=0.0, *,
                          inclusive: bool = False) -> Path:
    """Write the pairs' decisions ``scores > thresholds`` as a result file the cosine scorer reproduces."""
    src, tgt, threshold = encode_decision_as_embeddings(scores, thresholds, inclusive=inclusive)
    if len(src) != len(pairs):
        raise DataError(f"write_decision_result: {len(src)} scores for {len(pairs)} pairs")
    return write_result_file(path, pairs, src, tgt, threshold)


# ---------------------------------------------------------------- reading + scoring
def read_result_file(path: str | os.PathLike) -> pd.DataFrame:
    """The result jsonl as a frame: ``src_item_id, tgt_item_id`` (str), ``src_item_emb,
    tgt_item_emb`` (float64 vectors), ``threshold`` (float), ``line`` (1-based). A malformed
    line, a missing field, a bad embedding or a repeated pair is a DataError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: result file not found")
    rows = []
    for number, obj in iter_jsonl(path):
        where = f"{path}: line {number}"
        missing = [f for f in RESULT_FIELDS if f not in obj]
        if missing:
            raise DataError(f"{where} lacks field(s) {', '.join(missing)}")
        ids = []
        for field in ("src_item_id", "tgt_item_id"):
            value = obj[field]
            if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
                raise DataError(f"{where}: {field} must be a non-empty id, got {value!r}")
            ids.append(str(value).strip())
        threshold = obj["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise DataError(f"{where}: threshold must be a finite number, got {threshold!r}")
        rows.append((ids[0], ids[1], parse_embedding(obj["src_item_emb"], f"{where}: src_item_emb"),
                     parse_embedding(obj["tgt_item_emb"], f"{where}: tgt_item_emb"), float(threshold), number))
    if not rows:
        raise DataError(f"{path}: result file is empty")
    frame = pd.DataFrame(rows, columns=["src_item_id", "tgt_item_id", "src_item_emb", "tgt_item_emb",
                                        "threshold", "line"])
    dup = frame.duplicated(["src_item_id", "tgt_item_id"])
    if dup.any():
        first = frame[dup].iloc[0]
        raise DataError(f"{path}: line {first['line']} repeats the pair "
                        f"({first['src_item_id']}, {first['tgt_item_id']})")
    return frame


def result_scores(result: pd.DataFrame, similarity: str = "cosine") -> np.ndarray:
    """Each line's pair score, vectorised per embedding dimension; a pair whose two embeddings
    differ in dimension (cosine / inner) is a DataError naming its line."""
    score = SIMILARITIES.get(similarity)
    out = np.empty(len(result))
    dims_a = result["src_item_emb"].map(len).to_numpy()
    dims_b = result["tgt_item_emb"].map(len).to_numpy()
    if similarity in SAME_DIM and (dims_a != dims_b).any():
        bad = int(np.nonzero(dims_a != dims_b)[0][0])
        raise DataError(f"result line {result['line'].iloc[bad]}: {similarity} needs equal dimensions, "
                        f"got {dims_a[bad]} and {dims_b[bad]}")
    for da, db in set(zip(dims_a.tolist(), dims_b.tolist())):
        rows = np.nonzero((dims_a == da) & (dims_b == db))[0]
        a = np.stack(result["src_item_emb"].to_numpy()[rows])
        b = np.stack(result["tgt_item_emb"].to_numpy()[rows])
        out[rows] = score(a, b)
    return out


def predict_result_file(result_path: str | os.PathLike, similarity: str = "cosine") -> pd.DataFrame:
    """``src_item_id, tgt_item_id, score, threshold, item_label`` (0/1: score > threshold) per line."""
    result = read_result_file(result_path)
    score = result_scores(result, similarity)
    return pd.DataFrame({"src_item_id": result["src_item_id"], "tgt_item_id": result["tgt_item_id"],
                         "score": score, "threshold": result["threshold"],
                         "item_label": (score > result["threshold"].to_numpy()).astype(np.int64)})


def score_result_file(result_path: str | os.PathLike, truth, similarity: str = "cosine") -> Scores:
    """P/R/F1 of label 1 of a result file against labelled pairs (a ``item_*_pair.jsonl`` path or
    a frame with ``src_item_id, tgt_item_id, item_label``). The result must hold every truth pair
    once and nothing else; a pair in the result but not in the truth is a DataError naming its line."""
    from .data import read_ccks_pairs

    truth = read_ccks_pairs(truth) if not isinstance(truth, pd.DataFrame) else truth
    if "item_label" not in truth.columns:
        raise DataError("score_result_file: the truth pairs carry no item_label")
    truth = truth.assign(src_item_id=truth["src_item_id"].astype(str), tgt_item_id=truth["tgt_item_id"].astype(str))
    key = ["src_item_id", "tgt_item_id"]
    if truth.duplicated(key).any():
        first = truth[truth.duplicated(key)].iloc[0]
        raise DataError(f"score_result_file: the truth repeats the pair "
                        f"({first['src_item_id']}, {first['tgt_item_id']})")
    result = read_result_file(result_path)
    merged = result[key + ["line"]].merge(truth[key + ["item_label"]], on=key, how="left", validate="one_to_one")
    unknown = merged["item_label"].isna().to_numpy()
    if unknown.any():
        first = merged[unknown].iloc[0]
        raise DataError(f"{result_path}: line {first['line']}: pair ({first['src_item_id']}, {first['tgt_item_id']}) "
                        f"is not in the truth ({int(unknown.sum())} such line(s))")
    if len(result) != len(truth):
        absent = truth.merge(result[key], on=key, how="left", indicator=True)
        absent = absent[absent["_merge"] == "left_only"]
        raise DataError(f"{result_path}: {len(absent)} truth pair(s) have no result line: "
                        f"{preview(list(zip(absent['src_item_id'], absent['tgt_item_id'])))}")
    predicted = result_scores(result, similarity) > result["threshold"].to_numpy()
    return pair_scores(merged["item_label"].to_numpy().astype(np.int64), predicted)


__all__ = [
    "RESULT_FIELDS", "MAX_DIM", "SIMILARITIES", "pair_score", "format_embedding", "parse_embedding",
    "write_result_file", "lookup_embeddings", "encode_decision_as_embeddings", "write_decision_result",
    "read_result_file", "result_scores", "predict_result_file", "score_result_file",
]
