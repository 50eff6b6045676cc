"""LightGBM stacker on candidate pairs: OOF probabilities per pair, then per-row match sets.

Folds are the pools' folds, so no label group is split between training and validation pairs;
early stopping watches one of the training folds (never the fold being predicted). Models are
saved as LightGBM text (no pickle). An optional graph step turns the thresholded pair graph
into connected components (up to a size cap) before grouping.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import DataError
from ..io import atomic_path, write_text
from .candidates import feature_columns
from .pair_members import PairMemberConfig
from ..post.components import components  # noqa: F401  (was defined here)
from ..post.threshold import Matches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LgbmParams:
    """LightGBM settings (binary objective); n_estimators is the cap early stopping cuts."""

    num_leaves: int = 31
    learning_rate: float = 0.1  # 0.05: 2x the rounds for the same OOF pair F1 (0.9508 vs 0.9506, 20,000 rows)
    n_estimators: int = 1000
    early_stopping_rounds: int = 30
    max_bin: int = 255  # 63 bins cost 0.001 OOF pair F1 at 20,000 rows for ~10% less time
    min_child_samples: int = 20
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    num_threads: int = 0  # 0: LightGBM's default (all cores)
    seed: int = 0
    objective: Literal["binary", "lambdarank"] = "binary"  # lambdarank: rows in query groups (`fit_ranker`)
    eval_at: int = 5  # lambdarank: the NDCG cut-off LightGBM reports

    def lgb_params(self) -> dict:
        p = {k: v for k, v in asdict(self).items()
             if k not in ("n_estimators", "early_stopping_rounds", "objective", "eval_at")}
        if self.objective == "lambdarank":
            return {"objective": "lambdarank", "metric": "ndcg", "eval_at": [self.eval_at], **p, "deterministic": True,
                    "force_row_wise": True, "verbose": -1}
        return {**p, "objective": "binary", "metric": "binary_logloss", "verbose": -1, "deterministic": True,
                "force_row_wise": True}


@dataclass(frozen=True)
class StackerConfig:
    """Candidates (models, k, NB features), the booster, and how probabilities become groups."""

    models: tuple[str, ...] = ()  # empty: every model of the run
    k: int = 20  # neighbours per model whose lists make the candidates
    nb: bool = True  # add neighbourhood-blended similarities as features
    graph_features: bool = False  # add shared-neighbour counts and similarity margins (stack.candidates.graph_features)
    lgbm: LgbmParams = field(default_factory=LgbmParams)
    min2: bool = True
    graph: Literal["none", "components"] = "none"
    component_cap: int = 50  # components larger than this keep their thresholded edges only
    # CV pool the pairs come from: "all" searches every train row together (models sharing one
    # space across folds: TF-IDF, phash, zero-shot), the densest pool and the closest to a test
    # set bigger than the train set; "fold" one pool per fold (per-fold trained encoders);
    # "auto": "all" unless a model was trained per fold
    cv_pool: Literal["auto", "fold", "all"] = "auto"
    test_rows: int | None = None  # test size the threshold is tuned for; None: the run's test.csv rows
    backend: str = "auto"  # KNN search of the candidate lists (neighbors.BACKENDS; dask*: on a Dask client)
    # pair models (stack.pair_members) whose out-of-fold probability is a feature: off by default
    pair_members: tuple[PairMemberConfig, ...] = ()


@dataclass
class StackerOOF:
    """OOF probability per candidate pair, the fold boosters, and gain importance per feature."""

    prob: np.ndarray
    boosters: list
    importance: pd.DataFrame
    best_iterations: list[int]


def fit_oof(pairs: pd.DataFrame, config: StackerConfig, *, progress: bool = True) -> StackerOOF:
    """Per fold f: train on the other folds' pairs (early stopping on one of them), predict fold f."""
    import lightgbm as lgb
    from tqdm.auto import tqdm

    _check_pairs(pairs)
    features = feature_columns(pairs)
    folds = np.unique(pairs["fold"])
    if len(folds) < 3:
        raise DataError("the stacker needs at least 3 folds (train, early-stopping, predicted)")
    x = pairs[features].to_numpy(np.float32)
    y = pairs["label"].to_numpy()
    if len(np.unique(y)) < 2:
        raise DataError("stacker training pairs hold only one class; need true and false candidates")
    # bin every pair once; each fold trains on a subset sharing those bins (no re-binning per fold)
    full = lgb.Dataset(x, y, feature_name=list(features), params=config.lgbm.lgb_params(), free_raw_data=False).construct()
    prob = np.zeros(len(pairs))
    boosters, best, gains = [], [], np.zeros(len(features))
    for n, f in enumerate(tqdm(folds, desc="stacker folds", disable=not progress)):
        watch = folds[(n + 1) % len(folds)]
        fit_rows = (pairs["fold"] != f) & (pairs["fold"] != watch)
        es_rows = pairs["fold"] == watch
        booster = _train(full, np.flatnonzero(fit_rows.to_numpy()), np.flatnonzero(es_rows.to_numpy()), config.lgbm, lgb)
        at = (pairs["fold"] == f).to_numpy()
        prob[at] = booster.predict(x[at], num_iteration=booster.best_iteration)
        boosters.append(booster)
        best.append(int(booster.best_iteration or booster.current_iteration()))
        gains += booster.feature_importance("gain", iteration=booster.best_iteration)
    importance = pd.DataFrame({"feature": features, "gain": gains / gains.sum() if gains.sum() else gains})
    return StackerOOF(prob, boosters, importance.sort_values("gain", ascending=False, ignore_index=True), best)


def fit_final(pairs: pd.DataFrame, config: StackerConfig, n_estimators: int):
    """One booster on every labelled pair for test time, `n_estimators` rounds (from the OOF fits)."""
    import lightgbm as lgb

    _check_pairs(pairs)
    features = feature_columns(pairs)
    data = lgb.Dataset(pairs[features].to_numpy(np.float32), pairs["label"].to_numpy(), feature_name=features,
                       free_raw_data=True)
    return lgb.train(config.lgbm.lgb_params(), data, num_boost_round=max(1, int(n_estimators)))


def fit_ranker(x: np.ndarray, relevant, codes, params: LgbmParams, feature_names: list[str]):
    """A lambdarank booster (``params.objective`` lambdarank) on rows `x` with 0/1 `relevant` labels and
    query `codes` (0..Q-1, every query present): rows are put query by query (a stable sort by code),
    `group` = each query's row count; ``params.n_estimators`` rounds, no early stopping."""
    import lightgbm as lgb

    if params.objective != "lambdarank":
        raise ValueError(f"fit_ranker needs objective lambdarank, got {params.objective!r}")
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    data = lgb.Dataset(x[order], label=np.asarray(relevant)[order].astype(np.float64), group=np.bincount(codes),
                       feature_name=list(feature_names), free_raw_data=True)
    return lgb.train(params.lgb_params(), data, num_boost_round=params.n_estimators)


def save_booster(booster, path) -> Path:
    """LightGBM's own text format (safe to load: no pickle)."""
    return write_text(path, booster.model_to_string())


def load_booster(path):
    import lightgbm as lgb

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no stacker model")
    try:
        return lgb.Booster(model_file=str(path))
    except lgb.basic.LightGBMError as err:
        raise DataError(f"{path}: not a LightGBM model ({str(err).strip()})") from None


def pair_matches(i, j, prob, n: int) -> Matches:
    """Both directions of every scored unordered pair as candidate Matches (score = probability)."""
    i, j, prob = np.asarray(i), np.asarray(j), np.asarray(prob, np.float64)
    return Matches.from_pairs(np.r_[i, j], np.r_[j, i], np.r_[prob, prob], n)


def group_matches(candidates: Matches, t: float, t_min2: float | None, config: "StackerConfig") -> Matches:
    """Per-row match sets from scored candidate pairs: threshold (+ Min2), then the set steps
    (the graph step) - the stacker's chain of `post.steps`."""
    from ..post.steps import Context, chain, select_matches

    return select_matches(candidates, t, t_min2, chain(config, target="stacker"), Context(config=config))


def plot_importance(importance: pd.DataFrame, path, top: int = 25) -> Path:
    """Horizontal bar chart of the top features' share of total gain, as a PNG (atomic)."""
    from ..extras import require

    matplotlib = require("matplotlib", "plot_importance")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(head) + 1.2))
    ax.barh(head["feature"], head["gain"], color="#4c72b0")
    ax.set_xlabel("share of total gain (sum over fold models)")
    ax.set_title("LightGBM stacker: feature importance")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def _train(full, fit_rows: np.ndarray, es_rows: np.ndarray, params: LgbmParams, lgb):
    """A booster on rows `fit_rows` of the binned `full` Dataset, early-stopped on `es_rows`."""
    if len(np.unique(full.get_label()[fit_rows])) < 2:
        raise DataError("stacker training pairs hold only one class; need true and false candidates")
    train, valid = full.subset(fit_rows), full.subset(es_rows)
    return lgb.train(params.lgb_params(), train, num_boost_round=params.n_estimators, valid_sets=[valid],
                     callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)])


def _check_pairs(pairs: pd.DataFrame) -> None:
    missing = {"i", "j", "fold", "label"} - set(pairs.columns)
    if missing:
        raise DataError(f"candidate pairs lack columns {sorted(missing)}")
    if pairs.empty:
        raise DataError("no candidate pairs to stack")


@dataclass
class OofFit:
    """`fit_with_oof`'s result: OOF probability per row, the booster refitted on every row, its rounds."""

    prob: np.ndarray
    booster: object
    rounds: int
    features: list[str]
    importance: pd.DataFrame

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(lgbm_matrix(x, self.features))


def fit_with_oof(x: pd.DataFrame, y, fold, params: LgbmParams = LgbmParams(), *, progress: bool = False) -> OofFit:
    """LightGBM on labelled rows of any feature table (not only candidate pairs): `fit_oof` over the
    given `fold` per row (>= 3 folds) for out-of-fold probabilities and the rounds, then `fit_final`
    on every row with the mean best round. The one OOF helper of the CCKS / pair stage's stackers."""
    table = pd.DataFrame(lgbm_matrix(x, list(x.columns)), columns=safe_feature_names(x.columns))
    table = table.assign(i=np.arange(len(x)), j=np.arange(len(x)), fold=np.asarray(fold),
                         label=np.asarray(y, np.int64))
    config = StackerConfig(lgbm=params)
    oof = fit_oof(table, config, progress=progress)
    rounds = max(1, int(round(float(np.mean(oof.best_iterations)))))
    return OofFit(oof.prob, fit_final(table, config, rounds), rounds, list(x.columns), oof.importance)


def safe_feature_names(columns) -> list[str]:
    """Column names LightGBM accepts (no JSON-special characters: each becomes ``_``), kept distinct
    by their position prefix."""
    import re

    return [f"f{k}_" + re.sub(r"[^0-9A-Za-z_]", "_", str(c)) for k, c in enumerate(columns)]


def lgbm_matrix(x: pd.DataFrame, features: list[str]) -> np.ndarray:
    """The `features` columns of `x` as float32 (NaN kept: LightGBM's missing value)."""
    missing = [c for c in features if c not in x.columns]
    if missing:
        raise DataError(f"feature table lacks columns {missing[:5]}")
    return x[features].to_numpy(np.float32)
