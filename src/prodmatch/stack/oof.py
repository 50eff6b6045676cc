"""The one out-of-fold loop: for each fold, fit on the other folds' rows, predict the held-out rows.
Generic (any model, any fold labels); no prodmatch imports, so every stage's stacker can use it."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def out_of_fold(folds, fit: Callable[[np.ndarray], Any], predict: Callable[[Any, np.ndarray], Any],
                dtype=np.float64) -> np.ndarray:
    """Out-of-fold predictions: for each fold id of `folds` (one per row; ascending), ``model =
    fit(rest)`` with `rest` the boolean mask of the other folds' rows, then ``predict(model, held)``
    fills the `held` rows. Returns one prediction per row, of `dtype`."""
    folds = np.asarray(folds)
    if len(np.unique(folds)) < 2:
        raise ValueError(f"out_of_fold needs at least 2 folds, got {len(np.unique(folds))}")
    out = np.empty(len(folds), dtype=dtype)
    for fold in np.unique(folds):
        held = folds == fold
        out[held] = predict(fit(~held), held)
    return out
