"""Pair-model ensembles of the CCKS solution (threshold sum, F1 vote, separate unseen-category thresholds)
that combine members' scores with few fitted values; the rules: stack/README.md."""
from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError, preview
from ..io import write_json
from ..metrics import Scores, best_pair_threshold, pair_scores
from ..registry import Registry

FORMAT_VERSION = 1


# ---------------------------------------------------------------- inputs
def _as_matrix(scores, names: Sequence[str] | None = None) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Scores as a float64 (n, M) matrix plus the column names (a DataFrame's, reordered to
    `names` when given); a 1-d array is one model. Non-finite scores are a DataError."""
    cols = None
    if isinstance(scores, pd.DataFrame):
        cols = tuple(str(c) for c in scores.columns)
        if names is not None:
            missing = [n for n in names if n not in cols]
            if missing:
                raise DataError(f"ensemble: score table lacks model column(s) {preview(missing)}; has {preview(cols)}")
            scores = scores[list(names)]
            cols = tuple(names)
        matrix = scores.to_numpy(dtype=np.float64)
    elif isinstance(scores, pd.Series):
        cols = (str(scores.name),) if scores.name is not None else None
        matrix = scores.to_numpy(dtype=np.float64)[:, None]
    else:
        matrix = np.asarray(scores, dtype=np.float64)
        if matrix.ndim == 1:
            matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise DataError(f"ensemble: scores must be (n_pairs, n_models), got shape {matrix.shape}")
    if names is not None and matrix.shape[1] != len(names):
        raise DataError(f"ensemble: fitted on {len(names)} models {preview(names)}, "
                        f"got {matrix.shape[1]} score columns")
    bad = ~np.isfinite(matrix)
    if bad.any():
        col = int(np.nonzero(bad.any(axis=0))[0][0])
        label = cols[col] if cols else f"column {col}"
        raise DataError(f"ensemble: model {label} has {int(bad[:, col].sum())} non-finite score(s)")
    return matrix, cols


def _as_labels(y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise DataError(f"ensemble: labels must have shape ({n},) like the scores, got {y.shape}")
    if y.dtype != bool:
        bad = ~np.isin(y, (0, 1))
        if bad.any():
            raise DataError(f"ensemble: labels must be 0/1; found {preview(pd.unique(y[bad]))}")
    return y.astype(bool)


def _as_mask(mask, n: int, what: str = "unseen") -> np.ndarray:
    if mask is None:
        return np.zeros(n, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != (n,) or not (mask.dtype == bool or np.isin(mask, (0, 1)).all()):
        raise DataError(f"ensemble: {what} must be a boolean mask of shape ({n},), got {mask.dtype} {mask.shape}")
    return mask.astype(bool)


# ---------------------------------------------------------------- thresholds
def strict_threshold(scores, cut: float) -> float:
    """t with ``s > t`` iff ``s >= cut`` for every s in `scores`: the midpoint between `cut` and
    the next lower distinct score, or ``nextafter(cut, -inf)`` when no score lies below `cut`."""
    scores = np.asarray(scores, dtype=np.float64)
    below = scores[scores < cut]
    if not len(below):
        return float(np.nextafter(cut, -np.inf))
    lower = float(below.max())
    mid = lower / 2 + cut / 2  # halves first: no overflow near the float range's ends
    return mid if lower <= mid < cut else lower


def _fit_columns(y: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(strict thresholds, F1 at them) per column."""
    thresholds, f1 = np.empty(matrix.shape[1]), np.empty(matrix.shape[1])
    for m in range(matrix.shape[1]):
        cut, scores = best_pair_threshold(y, matrix[:, m])
        thresholds[m], f1[m] = strict_threshold(matrix[:, m], cut), scores.f1
    return thresholds, f1


def fit_thresholds(y, scores) -> np.ndarray:
    """Each model's best OOF threshold for the strict rule ``p > t`` (see the module notes):
    on these rows, ``p > t_m`` predicts exactly what ``best_pair_threshold``'s ``p >= cut`` does."""
    matrix, _ = _as_matrix(scores)
    y = _as_labels(y, len(matrix))
    if not y.any():
        raise DataError("ensemble: the labels hold no positive pair; no threshold can be tuned")
    return _fit_columns(y, matrix)[0]


def member_scores(y, scores, thresholds) -> list[Scores]:
    """F1/P/R of each model thresholded at its ``t_m`` (rule ``p > t_m``)."""
    matrix, _ = _as_matrix(scores)
    y = _as_labels(y, len(matrix))
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return [pair_scores(y, matrix[:, m] > thresholds[m]) for m in range(matrix.shape[1])]


# ---------------------------------------------------------------- unseen categories
def unseen_mask(categories, seen_categories) -> np.ndarray:
    """True for rows whose category is not among `seen_categories` (e.g. test pairs of a
    category absent from train). Categories are compared as strings."""
    cats = pd.Series(np.asarray(categories, dtype=object)).astype(str)
    seen = pd.Index(np.asarray(list(seen_categories), dtype=object)).astype(str)
    return ~cats.isin(seen).to_numpy()


def unseen_in_folds(categories, folds) -> np.ndarray:
    """True for OOF rows whose category occurs in no other fold: the model that scored the row
    (trained on the other folds) never saw its category, so the row stands for an unseen one."""
    frame = pd.DataFrame({"cat": np.asarray(categories, dtype=object), "fold": np.asarray(folds)})
    if frame["fold"].isna().any():
        raise DataError("unseen_in_folds: every row needs a fold")
    return (frame.groupby("cat", dropna=False)["fold"].transform("nunique") == 1).to_numpy()


# ---------------------------------------------------------------- ensembles
def decide(margin, threshold=0.0, inclusive: bool = False) -> np.ndarray:
    """``margin > threshold``, or ``>=`` when `inclusive` (the F1 vote sends ties to positive)."""
    margin = np.asarray(margin)
    return margin >= threshold if inclusive else margin > threshold


class PairEnsemble:
    """Shared machinery: per-model thresholds (+ a set for unseen categories), fit/predict,
    JSON round trip. Subclasses define `_fit_extra` and `_decision`."""

    kind: ClassVar[str] = ""
    inclusive: ClassVar[bool] = False  # positive when decision_function >= 0 (else > 0)

    def __init__(self) -> None:
        self.names: tuple[str, ...] | None = None
        self.thresholds: np.ndarray | None = None
        self.unseen_thresholds: np.ndarray | None = None
        self.unseen_fallback = True
        self.fit_scores: Scores | None = None

    # -- fitting
    def fit(self, y, scores, unseen=None) -> "PairEnsemble":
        """Fit on OOF scores; rows flagged in `unseen` get their own parameter set."""
        matrix, self.names = _as_matrix(scores)
        y = _as_labels(y, len(matrix))
        unseen = _as_mask(unseen, len(matrix))
        seen = ~unseen
        if not y[seen].any():
            raise DataError("ensemble: the (seen-category) rows hold no positive pair; nothing to tune on")
        self.thresholds, f1 = _fit_columns(y[seen], matrix[seen])
        self._fit_extra(y[seen], matrix[seen], self.thresholds, f1, unseen=False)
        self.unseen_fallback = not y[unseen].any()
        if self.unseen_fallback:
            self.unseen_thresholds = self.thresholds.copy()
            self._copy_extra_to_unseen()
        else:
            self.unseen_thresholds, f1u = _fit_columns(y[unseen], matrix[unseen])
            self._fit_extra(y[unseen], matrix[unseen], self.unseen_thresholds, f1u, unseen=True)
        self.fit_scores = pair_scores(y, self.predict(matrix, unseen))
        return self

    def _fit_extra(self, y, matrix, thresholds, f1, *, unseen: bool) -> None:
        raise NotImplementedError

    def _copy_extra_to_unseen(self) -> None:
        raise NotImplementedError

    # -- prediction
    def _check_fitted(self) -> None:
        if self.thresholds is None:
            raise DataError(f"{type(self).__name__}: not fitted")

    def _prepare(self, scores, unseen):
        self._check_fitted()
        matrix, _ = _as_matrix(scores, self.names if isinstance(scores, pd.DataFrame) else None)
        if matrix.shape[1] != len(self.thresholds):
            raise DataError(f"{type(self).__name__}: fitted on {len(self.thresholds)} models, "
                            f"got {matrix.shape[1]} score columns")
        return matrix, _as_mask(unseen, len(matrix))

    def decision_function(self, scores, unseen=None) -> np.ndarray:
        """Per-pair ensemble margin (see the class for its sign rule)."""
        matrix, unseen = self._prepare(scores, unseen)
        thresholds = np.where(unseen[:, None], self.unseen_thresholds[None, :], self.thresholds[None, :])
        return self._decision(matrix, thresholds, unseen)

    def _decision(self, matrix, thresholds, unseen) -> np.ndarray:
        raise NotImplementedError

    def predict(self, scores, unseen=None) -> np.ndarray:
        """Boolean prediction per pair: the margin's sign under the class's `inclusive` rule."""
        return decide(self.decision_function(scores, unseen), 0.0, self.inclusive)

    # -- artifacts
    def to_dict(self) -> dict:
        self._check_fitted()
        return {"format": FORMAT_VERSION, "kind": self.kind,
                "names": list(self.names) if self.names is not None else None,
                "thresholds": self.thresholds.tolist(), "unseen_thresholds": self.unseen_thresholds.tolist(),
                "unseen_fallback": bool(self.unseen_fallback), **self._extra_dict(),
                "fit_scores": None if self.fit_scores is None else
                {"f1": self.fit_scores.f1, "precision": self.fit_scores.precision, "recall": self.fit_scores.recall}}

    def _extra_dict(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict) -> "PairEnsemble":
        if not isinstance(data, dict) or data.get("kind") != cls.kind:
            found = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise DataError(f"{cls.__name__}.from_dict: expected kind {cls.kind!r}, found {found!r}")
        try:
            obj = cls(**{k: data[k] for k in cls._init_keys() if k in data})
            obj.names = tuple(data["names"]) if data.get("names") is not None else None
            obj.thresholds = np.asarray(data["thresholds"], dtype=np.float64)
            obj.unseen_thresholds = np.asarray(data["unseen_thresholds"], dtype=np.float64)
            obj.unseen_fallback = bool(data.get("unseen_fallback", True))
            obj._load_extra(data)
            fs = data.get("fit_scores")
            obj.fit_scores = Scores(float(fs["f1"]), float(fs["precision"]), float(fs["recall"])) if fs else None
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{cls.__name__}.from_dict: malformed ensemble description ({err!r})") from None
        m = len(obj.thresholds)
        if obj.thresholds.shape != (m,) or obj.unseen_thresholds.shape != (m,) or (obj.names and len(obj.names) != m):
            raise DataError(f"{cls.__name__}.from_dict: thresholds / names disagree on the number of models")
        return obj

    @classmethod
    def _init_keys(cls) -> tuple[str, ...]:
        return ()

    def _load_extra(self, data: dict) -> None:
        raise NotImplementedError

    def save(self, path) -> Path:
        """Write `to_dict` as JSON (atomically)."""
        return write_json(path, self.to_dict())

    def __repr__(self) -> str:
        fitted = "unfitted" if self.thresholds is None else f"{len(self.thresholds)} models"
        return f"{type(self).__name__}({fitted})"


class ThresholdEnsemble(PairEnsemble):
    """``decision = sum_m (p_m - t_m) - offset``; positive when ``decision > 0``."""

    kind = "threshold"

    def __init__(self, tune_offset: bool = False) -> None:
        super().__init__()
        self.tune_offset = bool(tune_offset)
        self.offset = 0.0
        self.unseen_offset = 0.0

    def _fit_extra(self, y, matrix, thresholds, f1, *, unseen: bool) -> None:
        offset = 0.0
        if self.tune_offset:
            margin = (matrix - thresholds[None, :]).sum(axis=1)
            offset = strict_threshold(margin, best_pair_threshold(y, margin)[0])
        if unseen:
            self.unseen_offset = offset
        else:
            self.offset = offset

    def _copy_extra_to_unseen(self) -> None:
        self.unseen_offset = self.offset

    def _decision(self, matrix, thresholds, unseen) -> np.ndarray:
        offset = np.where(unseen, self.unseen_offset, self.offset)
        return (matrix - thresholds).sum(axis=1) - offset

    def _extra_dict(self) -> dict:
        return {"tune_offset": self.tune_offset, "offset": self.offset, "unseen_offset": self.unseen_offset}

    @classmethod
    def _init_keys(cls) -> tuple[str, ...]:
        return ("tune_offset",)

    def _load_extra(self, data: dict) -> None:
        self.offset = float(data.get("offset", 0.0))
        self.unseen_offset = float(data.get("unseen_offset", self.offset))


class F1Vote(PairEnsemble):
    """Each model votes ``p_m > t_m`` with weight = its OOF F1 at t_m;
    ``decision = weight_pos - weight_neg``, positive when ``decision >= 0`` (ties -> positive)."""

    kind = "f1-vote"
    inclusive = True

    def __init__(self) -> None:
        super().__init__()
        self.weights: np.ndarray | None = None
        self.unseen_weights: np.ndarray | None = None

    def _fit_extra(self, y, matrix, thresholds, f1, *, unseen: bool) -> None:
        if unseen:
            self.unseen_weights = np.asarray(f1, dtype=np.float64)
        else:
            self.weights = np.asarray(f1, dtype=np.float64)

    def _copy_extra_to_unseen(self) -> None:
        self.unseen_weights = self.weights.copy()

    def _decision(self, matrix, thresholds, unseen) -> np.ndarray:
        votes = matrix > thresholds
        weights = np.where(unseen[:, None], self.unseen_weights[None, :], self.weights[None, :])
        positive = np.where(votes, weights, 0.0).sum(axis=1)
        negative = np.where(votes, 0.0, weights).sum(axis=1)
        return positive - negative  # >= 0 iff positive >= negative (IEEE: x - y >= 0 iff x >= y)

    def _extra_dict(self) -> dict:
        return {"weights": self.weights.tolist(), "unseen_weights": self.unseen_weights.tolist()}

    def _load_extra(self, data: dict) -> None:
        self.weights = np.asarray(data["weights"], dtype=np.float64)
        self.unseen_weights = np.asarray(data.get("unseen_weights", data["weights"]), dtype=np.float64)
        if self.weights.shape != self.thresholds.shape or self.unseen_weights.shape != self.thresholds.shape:
            raise DataError("F1Vote.from_dict: weights and thresholds disagree on the number of models")


ENSEMBLES = Registry("ensemble", {"threshold": ThresholdEnsemble, "f1-vote": F1Vote})


def make_ensemble(kind: str, **options) -> PairEnsemble:
    """A new unfitted ensemble of `kind` (a name in `ENSEMBLES`)."""
    return ENSEMBLES.get(kind)(**options)


def ensemble_from_dict(data: dict) -> PairEnsemble:
    """The ensemble `PairEnsemble.to_dict` described, of whichever kind it names."""
    kind = data.get("kind") if isinstance(data, dict) else None
    return ENSEMBLES.get(kind, where="ensemble description").from_dict(data)


def load_ensemble(path) -> PairEnsemble:
    """Read an ensemble written by `PairEnsemble.save`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such ensemble file") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg})") from None
    return ensemble_from_dict(data)
