"""`lgbm_rerank` (the KDD Cup 2020 1st place's last step): a LightGBM lambdarank model over the level-1
scores, their per-query views and cheap candidate features, grouped by query."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check_setting
from ..errors import DataError, preview
from ..stack.lgbm import LgbmParams, fit_ranker, load_booster, save_booster
from ._registry import register_method
from .features import TRANSFORMS, query_features
from .stacked import StackedMethod, StackedOptions, StackTable

MODEL_FILE = "model.txt"


@dataclass(frozen=True)
class LgbmRerankOptions(StackedOptions):
    """`transforms` of each input score (features.TRANSFORMS: raw, rank within the query, minus the
    query's max, z-score within the query); the booster: `rounds` fixed (no early stopping: there is no
    held-out split left inside a fold), `num_threads` 1 (small tables; deterministic)."""

    extras: tuple[str, ...] = ("num_boxes", "image_area")
    transforms: tuple[str, ...] = ("raw", "rank", "minus_max", "z")
    rounds: int = 100  # 100 / 7 / 50: the best demo valid OOF of 5 settings tried (0.4246; 200 / 15 / 20: 0.4187)
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 50
    feature_fraction: float = 0.9
    lambda_l2: float = 1.0
    num_threads: int = 1


@register_method("lgbm_rerank")
class LgbmRerank(StackedMethod):
    """LightGBM lambdarank (NDCG@5) on query groups of the input scores' transforms + candidate features."""

    options_class = LgbmRerankOptions

    def __init__(self, spec, config) -> None:
        super().__init__(spec, config)
        unknown = [t for t in self.options.transforms if t not in TRANSFORMS]
        if unknown or not self.options.transforms:
            raise DataError(f"method {spec.name!r}: transforms {preview(unknown)} unknown or none; "
                            f"known: {', '.join(TRANSFORMS)}")
        where = f"method {spec.name!r} options"
        # names LightGBM (and SETTING_RANGES) knows them by: num_boost_round, min_data_in_leaf
        check_setting("n_estimators", self.options.rounds, f"{where}.rounds")
        check_setting("min_data_in_leaf", self.options.min_child_samples, f"{where}.min_child_samples")

    def features(self, table: StackTable) -> tuple[np.ndarray, list[str]]:
        x, names = query_features(table.scores, table.names, table.codes, self.options.transforms)
        return np.column_stack([x, table.extras]), names + list(table.extra_names)

    def booster_params(self) -> LgbmParams:
        """The package's LightGBM settings (`stack.lgbm.LgbmParams`) for this kind: lambdarank, `rounds`
        fixed, no bagging (LightGBM's defaults for what the options leave out)."""
        o = self.options
        seed = self.config.seed if o.seed is None else o.seed
        return LgbmParams(objective="lambdarank", eval_at=5, num_leaves=o.num_leaves, learning_rate=o.learning_rate,
                          n_estimators=o.rounds, min_child_samples=o.min_child_samples,
                          feature_fraction=o.feature_fraction, bagging_fraction=1.0, bagging_freq=0,
                          lambda_l2=o.lambda_l2, num_threads=o.num_threads, seed=seed)

    def fit_model(self, table):
        x, names = self.features(table)
        return fit_ranker(x, table.relevant, table.codes, self.booster_params(), [n.replace(":", "__") for n in names])

    def predict_model(self, model, table):
        x, names = self.features(table)
        saved = [n.replace("__", ":") for n in model.feature_name()]
        if saved != names:  # a re-scored run whose model came from other code or settings
            raise DataError(f"method {self.spec.name!r}: the reranker reads features {saved}, this run makes {names}")
        return model.predict(x, num_threads=self.options.num_threads)

    def save(self, folder):
        save_booster(self.model, folder / MODEL_FILE)  # LightGBM's own text format
        return [MODEL_FILE]

    def load(self, folder, context=None) -> None:
        self.model = load_booster(folder / MODEL_FILE)

    def describe(self, model) -> dict:
        gain = model.feature_importance(importance_type="gain")
        names = [n.replace("__", ":") for n in model.feature_name()]
        return {"rounds": model.current_iteration(),
                "importance_gain": {n: round(float(g), 4) for n, g in sorted(zip(names, gain), key=lambda t: -t[1])}}
