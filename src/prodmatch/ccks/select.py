"""Choosing the submission entry: decision rules (members, ensembles) fitted on the held-out pairs,
cross-validated on folds that keep connected pair components whole (`selection_folds`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import DataError
from ..metrics import pair_scores

log = logging.getLogger(__name__)

SELECTION = ("best cross-validated held-out F1 (each rule refitted on k-1 folds of the held-out pairs, "
             "F1 of the pooled out-of-fold decisions); ties: the earlier entry")

@dataclass
class Fitted:
    """A rule fitted on some held-out rows. ``margin(scores, unseen)`` is the decision margin of any
    rows (member score columns + unseen mask); positive when ``margin > threshold``, ``>=`` when
    `inclusive`. `params` describe the fit (ensembles.json)."""

    margin: Callable[[pd.DataFrame, np.ndarray], np.ndarray]
    threshold: float = 0.0
    inclusive: bool = False
    params: dict = field(default_factory=dict)

    def predict(self, scores: pd.DataFrame, unseen: np.ndarray) -> np.ndarray:
        from ..stack.ensemble import decide

        return decide(self.margin(scores, unseen), self.threshold, self.inclusive)

@dataclass(frozen=True)
class Rule:
    """A named decision rule: ``fit(y, scores, unseen) -> Fitted`` on labelled rows (member score
    columns, pseudo-unseen mask). The one call fits every CV fold and the final rule."""

    name: str
    kind: str
    fit: Callable[[np.ndarray, pd.DataFrame, np.ndarray], Fitted]

def member_rule(column: str) -> Rule:
    """A member at its best threshold on the fitting rows (strict rule ``p > t``)."""
    def fit(y, scores, unseen):
        from ..stack.ensemble import fit_thresholds

        threshold = float(fit_thresholds(y, scores[[column]])[0])
        return Fitted(lambda s, u: s[column].to_numpy(np.float64), threshold, False, {"threshold": threshold})

    return Rule(f"member {column}", "member", fit)

def ensemble_rule(kind: str, calibrated: bool, unseen: bool, columns: list[str], prune: bool = False) -> Rule:
    """An ensemble of the member `columns` (``ensemble.make_ensemble(kind)``), on raw scores or on
    scores Platt-calibrated on the fitting rows, with or without unseen-category thresholds; with
    `prune` the members are first chosen on the fitting rows (`prune_members`)."""
    scale = "calibrated" if calibrated else "raw"

    def fit(y, scores, mask):
        from ..stack.compare import platt_apply, platt_fit, platt_params
        from ..stack.ensemble import make_ensemble

        models = platt_fit(scores[columns], y) if calibrated else None  # one per column: pruning reuses them

        def fit_on(cols):
            def scaled(s):
                return platt_apply({c: models[c] for c in cols}, s[cols]) if calibrated else s[cols]

            model = make_ensemble(kind).fit(y, scaled(scores), unseen=mask if unseen else None)
            return scaled, model

        def predict(cols):
            scaled, model = fit_on(cols)
            return model.predict(scaled(scores), unseen=mask if unseen else None)

        kept = prune_members(y, columns, predict) if prune else list(columns)
        scaled, model = fit_on(kept)
        params = {"scores": scale, "unseen": unseen, "members": kept, "ensemble": model.to_dict(),
                  **({"calibration": platt_params({c: models[c] for c in kept})} if calibrated else {})}
        return Fitted(lambda s, u: model.decision_function(scaled(s), unseen=u if unseen else None),
                      0.0, model.inclusive, params)

    name = f"{kind} ensemble, {scale}" + (" + unseen thresholds" if unseen else "") + (", pruned" if prune else "")
    return Rule(name, "ensemble", fit)

def prune_members(y, columns: list[str], predict: Callable[[list[str]], np.ndarray]) -> list[str]:
    """Greedy backward selection: drop the member whose removal raises the fitting rows' F1 most, while
    one does (ties keep the larger set); at least two members stay."""
    kept = list(columns)
    best = pair_scores(y, predict(kept)).f1
    while len(kept) > 2:
        trials = [(pair_scores(y, predict([c for c in kept if c != drop])).f1, drop) for drop in kept]
        f1, drop = max(trials, key=lambda t: t[0])
        if f1 <= best:
            break
        best, kept = f1, [c for c in kept if c != drop]
    return kept

def stacker_rule(columns: list[str], seed: int, folds: int = 5) -> Rule:
    """LightGBM over `columns` (member scores + pair comparisons) fitted on the fitting rows: `folds`
    seeded stratified folds of them give out-of-fold probabilities (`stack.lgbm.fit_with_oof`), whose
    best threshold the booster refitted on all of them uses."""
    def fit(y, scores, unseen):
        from sklearn.model_selection import StratifiedKFold

        from ..stack.ensemble import fit_thresholds
        from ..stack.lgbm import LgbmParams, fit_with_oof

        k = max(3, min(folds, int(np.bincount(y, minlength=2).min())))
        fold = np.zeros(len(y), np.int64)
        for i, (_, at) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)):
            fold[at] = i
        params = LgbmParams(num_leaves=15, learning_rate=0.05, n_estimators=1000, min_child_samples=10, seed=seed)
        model = fit_with_oof(scores[columns], y, fold, params)
        threshold = float(fit_thresholds(y, pd.DataFrame({"p": model.prob}))[0])
        return Fitted(lambda s, u: model.predict(s), threshold, False,
                      {"rounds": model.rounds, "features": len(columns), "threshold": threshold,
                       "top_features": model.importance["feature"].head(10).tolist()})

    return Rule("lgbm stacker, members + comparisons", "stacker", fit)

def entry_rules(columns, unseen: bool, *, prune: bool = False, stacker_columns: list[str] | None = None,
                seed: int = 0) -> list[Rule]:
    """Members in column order, then each ensemble kind raw, calibrated, and (when `unseen`, i.e.
    pseudo-unseen held-out pairs exist) raw and calibrated with unseen-category thresholds; with
    `prune` each ensemble also over pruned members; with `stacker_columns` the LightGBM stacker."""
    from ..stack.ensemble import ENSEMBLES

    columns = [str(c) for c in columns]
    rules = [member_rule(c) for c in columns]
    for kind in ENSEMBLES:
        for with_unseen in (False, True) if unseen else (False,):
            rules += [ensemble_rule(kind, calibrated, with_unseen, columns) for calibrated in (False, True)]
            if prune and len(columns) > 2:
                rules += [ensemble_rule(kind, calibrated, with_unseen, columns, prune=True) for calibrated in (False, True)]
    if stacker_columns:
        rules.append(stacker_rule(list(stacker_columns), seed))
    return rules

@dataclass(frozen=True)
class Folds:
    """CV folds of the held-out pairs: `fold` per pair, the `scheme` (``group``: connected
    components kept whole; ``stratified``: by label only), `components` of the pair graph, and
    the fold count asked for (`requested`, before clamping to the label counts)."""

    fold: np.ndarray
    scheme: str
    components: int
    requested: int
    seed: int

    @property
    def k(self) -> int:
        return int(len(np.unique(self.fold)))

    def to_dict(self) -> dict:
        return {"folds": self.k, "requested": self.requested, "scheme": self.scheme,
                "components": self.components, "seed": self.seed}


def selection_folds(y, groups, k: int, seed: int) -> Folds:
    """Seeded CV folds of labelled pairs (ccks/README.md, protocol step 5): `k` clamped to the smaller
    label count; group-aware (``StratifiedGroupKFold`` on `groups`) when at least k groups hold a
    positive and k a negative pair and every fold's complement holds both labels, else
    ``StratifiedKFold`` by label. Deterministic for a given (y, groups, k, seed)."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y, groups = np.asarray(y).astype(bool), np.asarray(groups)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    used = min(k, n_pos, n_neg)
    if used < 2:
        raise DataError(f"the held-out part has {len(y)} pairs ({n_pos} positive, {n_neg} negative); the "
                        "cross-validated selection needs at least 2 pairs of each label: raise holdout_items or "
                        "holdout_pairs")
    if used < k:
        log.warning("ccks: select_folds=%d clamped to %d (held-out pairs: %d positive, %d negative)",
                    k, used, n_pos, n_neg)
    n_groups = int(len(np.unique(groups)))
    fold = np.full(len(y), -1)
    if min(len(np.unique(groups[y])), len(np.unique(groups[~y]))) >= used:
        cv = StratifiedGroupKFold(n_splits=used, shuffle=True, random_state=seed)
        for i, (_, at) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
            fold[at] = i
        rest = [y[fold != i] for i in range(used)]
        if (fold >= 0).all() and all((fold == i).any() and r.any() and not r.all() for i, r in enumerate(rest)):
            return Folds(fold, "group", n_groups, k, seed)
    cv = StratifiedKFold(n_splits=used, shuffle=True, random_state=seed)
    for i, (_, at) in enumerate(cv.split(np.zeros(len(y)), y)):
        fold[at] = i
    return Folds(fold, "stratified", n_groups, k, seed)

def cross_predict(rule: Rule, y: np.ndarray, scores: pd.DataFrame, unseen: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Out-of-fold decisions of `rule` (`stack.oof.out_of_fold`): ``rule.fit`` on the other folds predicts each."""
    from ..stack.oof import out_of_fold

    def fit(rest):
        try:
            return rule.fit(y[rest], scores[rest], unseen[rest])
        except DataError as err:
            held = np.unique(fold[~rest]).tolist()
            raise DataError(f"{rule.name}: refitting on the CV folds other than fold {held[0]} failed: {err}") from None

    return out_of_fold(fold, fit, lambda fitted, held: fitted.predict(scores[held], unseen[held]), dtype=bool)


@dataclass
class Entry:
    """A rule fitted on all held-out pairs: its in-sample held-out F1, its cross-validated held-out
    F1, its parameters and its valid margin (``margin > threshold`` is positive, ``>=`` when `inclusive`)."""

    name: str
    kind: str
    held_out_f1: float
    cv_f1: float
    valid_margin: np.ndarray
    threshold: float = 0.0
    inclusive: bool = False
    params: dict = field(default_factory=dict)
    in_sample_pred: np.ndarray | None = None  # the held-out decisions of the rule fitted on them all

    @property
    def valid_pred(self) -> np.ndarray:
        from ..stack.ensemble import decide

        return decide(self.valid_margin, self.threshold, self.inclusive)

def fit_entries(rules: list[Rule], y, hold: pd.DataFrame, unseen_hold, valid: pd.DataFrame, unseen_valid,
                fold) -> list[Entry]:
    """Each rule fitted on all held-out rows (held-out F1 in-sample, valid margin) and cross-validated
    on `fold` (cv_f1). Takes no valid labels."""
    y = np.asarray(y).astype(np.int64)
    unseen_hold, unseen_valid = np.asarray(unseen_hold, bool), np.asarray(unseen_valid, bool)
    entries = []
    for rule in rules:
        fitted = rule.fit(y, hold, unseen_hold)
        in_sample = fitted.predict(hold, unseen_hold)
        cv = pair_scores(y, cross_predict(rule, y, hold, unseen_hold, np.asarray(fold))).f1
        entries.append(Entry(rule.name, rule.kind, pair_scores(y, in_sample).f1, cv, fitted.margin(valid, unseen_valid),
                             fitted.threshold, fitted.inclusive, fitted.params, in_sample))
    return entries

def choose(entries: list[Entry]) -> Entry:
    """The entry with the best cross-validated held-out F1; the earliest on ties."""
    return entries[int(np.argmax([e.cv_f1 for e in entries]))]
