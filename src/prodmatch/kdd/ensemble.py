"""`weighted_ensemble` (seed 003's last step): a weighted sum of per-query normalised input scores,
the weights searched on valid's NDCG@5 over the simplex (deterministic coordinate search on a grid)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import DataError
from ..io import read_json_object, write_json
from ._registry import register_method
from .features import query_zscore, rank_unit
from .stacked import StackedMethod, StackedOptions, StackTable

NORMALISE = {"rank": rank_unit, "z": query_zscore}
WEIGHTS_FILE = "weights.json"


@dataclass(frozen=True)
class EnsembleOptions(StackedOptions):
    """`normalise` each column within its query (``rank``: 1 best .. 0 worst; ``z``: z-score); weights
    are multiples of `step` summing to 1; at most `passes` sweeps over the columns."""

    normalise: Literal["rank", "z"] = "rank"
    step: float = 0.05
    passes: int = 10


@register_method("weighted_ensemble")
class WeightedEnsemble(StackedMethod):
    """Sum of normalised inputs with weights on the simplex: starts from the best single input (weight 1),
    then, column by column, tries every grid weight for it (the others keep their proportions) and keeps a
    strict NDCG@5 gain; stops when a sweep gains nothing. With two inputs one sweep is the full grid."""

    options_class = EnsembleOptions

    def __init__(self, spec, config) -> None:
        super().__init__(spec, config)
        step = self.options.step
        if not (0 < step <= 1) or abs(round(1 / step) * step - 1) > 1e-9 or self.options.passes < 1:
            raise DataError(f"method {spec.name!r}: step must divide 1 (e.g. 0.1, 0.05), got {step}; passes >= 1")

    def columns(self, table: StackTable) -> np.ndarray:
        return NORMALISE[self.options.normalise](np.column_stack([table.scores, table.extras]), table.codes)

    def fit_model(self, table):
        z = self.columns(table)
        m = z.shape[1]
        single = [table.ndcg(z[:, j]) for j in range(m)]
        weights = np.eye(m)[int(np.argmax(single))]  # argmax keeps the first of equals
        best = max(single)
        grid = np.linspace(0.0, 1.0, int(round(1 / self.options.step)) + 1)
        for _ in range(self.options.passes if m > 1 else 0):
            gained = False
            for i in range(m):
                rest = weights.copy()
                rest[i] = 0.0
                direction = rest / rest.sum() if rest.sum() > 0 else np.where(np.arange(m) == i, 0.0, 1.0 / (m - 1))
                for g in grid:
                    trial = g * np.eye(m)[i] + (1.0 - g) * direction
                    value = table.ndcg(z @ trial)
                    if value > best + 1e-12:
                        best, weights, gained = value, trial, True
            if not gained:
                break
        return weights

    def predict_model(self, model, table):
        return self.columns(table) @ model

    def save(self, folder):
        """weights.json: the column names (inputs, then extras), the weights (floats round-trip exactly) and
        the normalisation."""
        names = list(self.inputs) + list(self.extras)
        write_json(folder / WEIGHTS_FILE, {"columns": names, "weights": [float(w) for w in self.model],
                                           "normalise": self.options.normalise})
        return [WEIGHTS_FILE]

    def load(self, folder, context=None) -> None:
        path = folder / WEIGHTS_FILE
        saved = read_json_object(path, "ensemble weights")
        names = list(self.inputs) + list(self.extras)
        if saved.get("columns") != names or saved.get("normalise") != self.options.normalise:
            raise DataError(f"{path}: weights of columns {saved.get('columns')} ({saved.get('normalise')}), the "
                            f"method reads {names} ({self.options.normalise})")
        weights = saved.get("weights")
        if not isinstance(weights, list) or len(weights) != len(names) or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
            raise DataError(f"{path}: weights must be {len(names)} numbers, one per column, got {weights!r}")
        self.model = np.asarray(weights, np.float64)

    def describe(self, model) -> dict:
        names = list(self.inputs) + list(self.extras)
        return {"normalise": self.options.normalise, "weights": {n: round(float(w), 6) for n, w in zip(names, model)}}
