"""Members vs ensembles vs stacker on OOF candidate pairs, every fold judged by what the others fit.

Each member (a score column of the candidate table: a model's similarity, the union, the
stacker's probability) gets its threshold from the other folds; the threshold ensemble and the
F1 vote are fitted on the other folds too. Reported at pair level (F1 of label 1 over the
candidates, as in CCKS) and at row level (Shopee mean row-F1 of the resulting match sets, pairs
outside the candidates count as misses).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..metrics import best_pair_threshold, pair_scores, per_row_scores
from .ensemble import make_ensemble, strict_threshold
from .oof import out_of_fold


def nested_predictions(pairs: pd.DataFrame, columns: Sequence[str], method: str) -> np.ndarray:
    """Boolean decision per pair; fold f's from a rule fitted on the other folds.

    `method`: ``"member"`` (one column, best threshold), an ensemble kind (``"threshold"``,
    ``"f1-vote"``) over `columns`, or ``"<kind>-calibrated"`` (members Platt-scaled first).
    """
    missing = [c for c in columns if c not in pairs]
    if missing:
        raise DataError(f"candidate table lacks score columns {missing}")
    y = pairs["label"].to_numpy()
    scores = pairs[list(columns)]
    values = scores.to_numpy(np.float64)

    def fit(rest):
        if method == "member":
            cut, _ = best_pair_threshold(y[rest], values[rest, 0])
            return strict_threshold(values[rest, 0], cut)
        if method.endswith("-calibrated"):
            calibration = platt_fit(scores[rest], y[rest])
            kind = method.removesuffix("-calibrated")
            return calibration, make_ensemble(kind).fit(y[rest], platt_apply(calibration, scores[rest]))
        return make_ensemble(method).fit(y[rest], scores[rest])

    def predict(rule, held):
        if method == "member":
            return values[held, 0] > rule
        if method.endswith("-calibrated"):
            return rule[1].predict(platt_apply(rule[0], scores[held]))
        return rule.predict(scores[held])

    return out_of_fold(pairs["fold"].to_numpy(), fit, predict, dtype=bool)


def platt_fit(fit_scores: pd.DataFrame, y) -> dict:
    """One one-feature logistic regression per column, fitted on the fitting rows (see `platt`)."""
    from sklearn.linear_model import LogisticRegression

    return {col: LogisticRegression(C=1e4, max_iter=1000).fit(fit_scores[[col]].to_numpy(np.float64), y)
            for col in fit_scores.columns}


def platt_apply(models: dict, scores: pd.DataFrame) -> pd.DataFrame:
    """Each column of `scores` mapped to P(label 1) by its `platt_fit` model."""
    return pd.DataFrame({col: m.predict_proba(scores[[col]].to_numpy(np.float64))[:, 1] for col, m in models.items()},
                        index=scores.index)


def platt_params(models: dict) -> dict:
    """``{column: {"coef", "intercept"}}`` of `platt_fit` models: P = sigmoid(coef * score + intercept)."""
    return {col: {"coef": float(m.coef_[0, 0]), "intercept": float(m.intercept_[0])} for col, m in models.items()}


def platt(fit_scores: pd.DataFrame, y, other: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each column mapped to P(label 1) by a one-feature logistic fit on the fitting rows.

    Raw similarities differ in scale and spread (a random-init encoder scores every pair ~0.99),
    so `sum(p_m - t_m)` is dominated by the widest model; on probabilities the margins compare.
    """
    models = platt_fit(fit_scores, y)
    return platt_apply(models, fit_scores), platt_apply(models, other)


def row_f1(pairs: pd.DataFrame, decision: np.ndarray, pools) -> tuple[float, float, float]:
    """Mean row-F1/P/R over every pool (fold) of the match sets the positive pairs make; a single
    pool takes every pair."""
    f1 = p = r = 0.0
    n = 0
    folds = pairs["fold"].to_numpy()
    if len(pools) == 1:  # one pool of every row (cv_pool all): its pairs carry their first row's fold
        folds = np.zeros(len(pairs), folds.dtype)
    for f, pool in enumerate(pools):
        at = (folds == f) & decision
        i, j = pairs["i"].to_numpy()[at], pairs["j"].to_numpy()[at]
        self_idx = np.arange(pool.n)
        a, b, c = per_row_scores(np.r_[self_idx, i, j], np.r_[self_idx, j, i], pool.groups)
        f1, p, r, n = f1 + a.sum(), p + b.sum(), r + c.sum(), n + pool.n
    return f1 / n, p / n, r / n


def compare(pairs: pd.DataFrame, members: Sequence[str], pools, *, extra: Sequence[str] = ("union", "prob")) -> pd.DataFrame:
    """One row per member, per extra column (union, stacker prob) and per ensemble of the members."""
    rows = []
    entries = [(m, [m], "member") for m in [*members, *[e for e in extra if e in pairs]]]
    entries += [(f"{kind} ensemble of members", list(members), kind) for kind in ("threshold", "f1-vote")]
    entries += [("threshold ensemble of calibrated members", list(members), "threshold-calibrated")]
    y = pairs["label"].to_numpy()
    for name, columns, method in entries:
        decision = nested_predictions(pairs, columns, method)
        ps = pair_scores(y, decision)
        rf1, rp, rr = row_f1(pairs, decision, pools)
        rows.append({"entry": name, "pair_f1": round(ps.f1, 4), "pair_precision": round(ps.precision, 4),
                     "pair_recall": round(ps.recall, 4), "row_f1": round(rf1, 4), "row_precision": round(rp, 4),
                     "row_recall": round(rr, 4)})
    return pd.DataFrame(rows)
