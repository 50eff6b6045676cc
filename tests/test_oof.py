"""The shared out-of-fold loop (`prodmatch.stack.oof`) and the LightGBM ranker of `stack.lgbm`."""
from __future__ import annotations

import numpy as np
import pytest

from prodmatch.stack.oof import out_of_fold


def test_each_fold_is_predicted_by_a_model_fitted_on_the_others_only():
    folds = np.array([2, 0, 1, 0, 2, 1])
    seen = []

    def fit(rest):
        seen.append(rest.copy())
        return set(np.flatnonzero(rest))

    def predict(model, held):
        assert not model & set(np.flatnonzero(held))  # no held-out row was fitted on
        return np.full(held.sum(), float(folds[held][0]))

    out = out_of_fold(folds, fit, predict)
    assert out.tolist() == folds.astype(float).tolist()
    assert [np.flatnonzero(~r).tolist() for r in seen] == [[1, 3], [2, 5], [0, 4]]  # folds in ascending order
    assert out_of_fold(folds, fit, lambda m, h: folds[h] > 0, dtype=bool).dtype == bool


def test_fit_ranker_groups_rows_by_query():
    from prodmatch.stack.lgbm import LgbmParams, fit_ranker

    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(40), 10)
    rng.shuffle(codes)  # a query's rows need not be together
    x = rng.random((400, 3))
    relevant = x[:, 0] > 0.8
    params = LgbmParams(objective="lambdarank", n_estimators=20, num_leaves=7, min_child_samples=5,
                        bagging_fraction=1.0, bagging_freq=0, num_threads=1)
    assert params.lgb_params()["objective"] == "lambdarank" and params.lgb_params()["eval_at"] == [5]
    assert LgbmParams().lgb_params()["objective"] == "binary"
    booster = fit_ranker(x, relevant, codes, params, ["a", "b", "c"])
    score = booster.predict(x)
    assert np.corrcoef(score, x[:, 0])[0, 1] > 0.5


def test_one_fold_is_refused_not_fitted_on_nothing():
    """With one fold every row is held out and the model would be fitted on zero rows."""
    with pytest.raises(ValueError, match="at least 2 folds"):
        out_of_fold(np.zeros(3, int), lambda rest: rest.sum(), lambda model, held: model)
