"""Threshold ensembling and F1 voting (seed 000, 5.5.1 / 5.5.2) with unseen-category thresholds."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from prodmatch.errors import DataError
from prodmatch.metrics import best_pair_threshold, pair_scores
from prodmatch.stack.ensemble import (
    ENSEMBLES, F1Vote, ThresholdEnsemble, ensemble_from_dict, fit_thresholds, load_ensemble, make_ensemble,
    member_scores, strict_threshold, unseen_in_folds, unseen_mask,
)

# dyadic grid values (k/64): sums and differences are exact, so invariants hold bit for bit
GRID = st.integers(-64, 64).map(lambda k: k / 64)


def fitted(cls, y, scores, **kw):
    return cls().fit(y, scores, **kw)


def set_params(ens, thresholds, **extra):
    ens.thresholds = np.asarray(thresholds, dtype=float)
    ens.unseen_thresholds = ens.thresholds.copy()
    for k, v in extra.items():
        setattr(ens, k, np.asarray(v, dtype=float) if isinstance(v, list) else v)
    return ens


# ---------------------------------------------------------------- hand cases
def test_fit_thresholds_midpoints_exact():
    y = np.array([1, 1, 0, 0, 1, 0])
    a = np.array([0.9, 0.8, 0.3, 0.1, 0.6, 0.5])  # best: >= 0.6 (F1 1) -> midpoint 0.55
    b = np.array([0.2, 0.9, 0.8, 0.1, 0.7, 0.0])  # best: >= 0.7 (tp 2 of 3 pred) vs >= 0.2 ...
    t = fit_thresholds(y, np.stack([a, b], axis=1))
    assert t[0] == pytest.approx(0.55)
    cut_b, s_b = best_pair_threshold(y, b)
    assert ((b > t[1]) == (b >= cut_b)).all()
    assert pair_scores(y, b > t[1]).f1 == s_b.f1


def test_threshold_ensemble_hand_sums():
    ens = set_params(ThresholdEnsemble(), [0.5, 0.25])
    scores = np.array([[0.75, 0.25],   # 0.25 + 0    = 0.25  -> 1
                       [0.25, 0.5],    # -0.25 + 0.25 = 0     -> 0 (strict)
                       [0.5, 0.0],     # 0 - 0.25     = -0.25 -> 0
                       [0.375, 0.5]])  # -0.125 + 0.25 = 0.125 -> 1
    np.testing.assert_array_equal(ens.decision_function(scores), [0.25, 0.0, -0.25, 0.125])
    np.testing.assert_array_equal(ens.predict(scores), [True, False, False, True])


def test_f1_vote_hand_weights_and_tie():
    ens = set_params(F1Vote(), [0.5, 0.5, 0.5], weights=[0.5, 0.25, 0.25], unseen_weights=[0.5, 0.25, 0.25])
    scores = np.array([[0.75, 0.0, 0.0],    # pos 0.5  neg 0.5  -> tie -> positive (seed rule)
                       [0.0, 0.75, 0.75],   # pos 0.5  neg 0.5  -> tie -> positive
                       [0.75, 0.75, 0.0],   # pos 0.75 neg 0.25 -> positive
                       [0.0, 0.75, 0.0],    # pos 0.25 neg 0.75 -> negative
                       [0.5, 0.75, 0.75]])  # 0.5 is not > 0.5: pos 0.5 neg 0.5 -> positive
    np.testing.assert_array_equal(ens.decision_function(scores), [0.0, 0.0, 0.5, -0.5, 0.0])
    np.testing.assert_array_equal(ens.predict(scores), [True, True, True, False, True])


def test_f1_vote_weights_are_member_f1():
    rng = np.random.default_rng(1)
    y = rng.random(200) < 0.3
    scores = y[:, None] + rng.normal(0, [0.5, 1.0, 2.0], (200, 3))
    ens = fitted(F1Vote, y, scores)
    expected = [s.f1 for s in member_scores(y, scores, ens.thresholds)]
    np.testing.assert_allclose(ens.weights, expected)
    assert ens.weights[0] > ens.weights[2]


def test_constant_score_model_has_no_nan():
    y = np.array([1, 0, 1, 0])
    const = np.full(4, 0.7)
    t = fit_thresholds(y, const)
    assert np.isfinite(t).all() and t[0] < 0.7 and t[0] == np.nextafter(0.7, -np.inf)
    ens = fitted(ThresholdEnsemble, y, np.stack([const, np.array([0.9, 0.1, 0.8, 0.2])], axis=1))
    assert np.isfinite(ens.decision_function(np.stack([const, const], axis=1))).all()
    assert ens.predict(np.array([[0.7, 0.9]])).all()
    assert np.isfinite(fitted(F1Vote, y, const).weights).all()


def test_strict_threshold_adjacent_floats():
    lo = 0.3
    hi = float(np.nextafter(lo, 1.0))
    t = strict_threshold([lo, hi], hi)
    assert lo <= t < hi and not lo > t and hi > t


def test_tuned_offset_single_model_reproduces_best_f1():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.4
    p = np.clip(y * 0.3 + rng.random(300) * 0.7, 0, 1)
    best = best_pair_threshold(y, p)[1].f1
    for tune in (False, True):
        ens = ThresholdEnsemble(tune_offset=tune).fit(y, p)
        assert ens.fit_scores.f1 == pytest.approx(best)


# ---------------------------------------------------------------- unseen categories
def test_unseen_thresholds_only_for_flagged_rows():
    # seen rows: the model separates at 0.5; unseen rows: scores run lower, cut at ~0.2
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    p = np.array([0.8, 0.7, 0.3, 0.2, 0.3, 0.25, 0.1, 0.05])
    unseen = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=bool)
    for cls in (ThresholdEnsemble, F1Vote):
        ens = cls().fit(y, p, unseen=unseen)
        assert not ens.unseen_fallback
        assert ens.thresholds[0] == pytest.approx(0.5) and ens.unseen_thresholds[0] == pytest.approx(0.175)
        assert ens.fit_scores.f1 == 1.0
        probe = np.array([0.3, 0.3])
        np.testing.assert_array_equal(ens.predict(probe), [False, False])
        np.testing.assert_array_equal(ens.predict(probe, unseen=[False, True]), [False, True])
        again = ensemble_from_dict(json.loads(json.dumps(ens.to_dict())))
        np.testing.assert_array_equal(again.predict(probe, unseen=[False, True]), [False, True])


def test_unseen_without_positives_falls_back():
    y = np.array([1, 0, 1, 0, 0])
    p = np.array([0.9, 0.1, 0.8, 0.2, 0.7])
    ens = ThresholdEnsemble().fit(y, p, unseen=[0, 0, 0, 0, 1])
    assert ens.unseen_fallback
    np.testing.assert_array_equal(ens.unseen_thresholds, ens.thresholds)


def test_unseen_helpers():
    np.testing.assert_array_equal(unseen_mask(["a", "b", 3, "c"], {"a", "3"}), [False, True, False, True])
    cats = ["a", "a", "b", "c", "c", "d"]
    folds = [0, 1, 0, 1, 1, 2]
    np.testing.assert_array_equal(unseen_in_folds(cats, folds), [False, False, True, True, True, True])


# ---------------------------------------------------------------- artifacts, registry, errors
@pytest.mark.parametrize("kind", list(ENSEMBLES))
def test_round_trip_and_names(tmp_path, kind):
    rng = np.random.default_rng(2)
    y = rng.random(100) < 0.5
    frame = pd.DataFrame({"text": y + rng.normal(0, 1, 100), "image": y + rng.normal(0, 1, 100)})
    ens = make_ensemble(kind).fit(y, frame, unseen=rng.random(100) < 0.3)
    ens.save(tmp_path / "ens.json")
    again = load_ensemble(tmp_path / "ens.json")
    assert type(again) is type(ens) and again.names == ("text", "image")
    swapped = frame[["image", "text"]]  # columns are lined up by name
    np.testing.assert_array_equal(again.decision_function(swapped), ens.decision_function(frame))
    with pytest.raises(DataError, match="lacks model column"):
        again.predict(frame[["text"]])
    with pytest.raises(DataError, match="2 models"):
        again.predict(np.zeros((3, 3)))


def test_errors():
    with pytest.raises(DataError, match="no positive"):
        ThresholdEnsemble().fit([0, 0], [0.1, 0.2])
    with pytest.raises(DataError, match="non-finite"):
        ThresholdEnsemble().fit([0, 1], [0.1, np.nan])
    with pytest.raises(DataError, match="0/1"):
        ThresholdEnsemble().fit([0, 2], [0.1, 0.2])
    with pytest.raises(DataError, match="not fitted"):
        F1Vote().predict([[0.1]])
    with pytest.raises(DataError, match="unknown ensemble"):
        make_ensemble("mean")
    with pytest.raises(DataError, match="expected kind"):
        ThresholdEnsemble.from_dict({"kind": "f1-vote"})


# ---------------------------------------------------------------- properties
@st.composite
def labelled_scores(draw, max_models=4):
    n = draw(st.integers(2, 30))
    m = draw(st.integers(1, max_models))
    y = draw(hnp.arrays(bool, n).filter(lambda a: a.any()))
    scores = draw(hnp.arrays(np.float64, (n, m), elements=GRID))
    return y, scores


@settings(max_examples=60, deadline=None)
@given(labelled_scores(max_models=1), st.sampled_from(list(ENSEMBLES)))
def test_one_model_ensemble_is_the_model_thresholded(data, kind):
    y, scores = data
    ens = make_ensemble(kind).fit(y, scores)
    t = ens.thresholds[0]
    np.testing.assert_array_equal(ens.predict(scores), scores[:, 0] > t)
    cut, best = best_pair_threshold(y, scores[:, 0])
    np.testing.assert_array_equal(ens.predict(scores), scores[:, 0] >= cut)  # same decisions on OOF rows
    assert ens.fit_scores.f1 == pytest.approx(best.f1)
    probe = np.linspace(-2, 2, 41)[:, None]
    np.testing.assert_array_equal(ens.predict(probe), probe[:, 0] > t)  # and anywhere else


@settings(max_examples=60, deadline=None)
@given(labelled_scores(max_models=1), st.integers(2, 4), st.sampled_from(list(ENSEMBLES)))
def test_copies_of_one_model_equal_the_model(data, copies, kind):
    y, scores = data
    single = make_ensemble(kind).fit(y, scores)
    many = make_ensemble(kind).fit(y, np.repeat(scores, copies, axis=1))
    np.testing.assert_array_equal(many.predict(np.repeat(scores, copies, axis=1)), single.predict(scores))


@settings(max_examples=60, deadline=None)
@given(labelled_scores(), st.data())
def test_tuned_offset_never_lowers_fitted_f1(data, draw):
    y, scores = data
    plain = ThresholdEnsemble().fit(y, scores)
    tuned = ThresholdEnsemble(tune_offset=True).fit(y, scores)
    np.testing.assert_array_equal(tuned.thresholds, plain.thresholds)
    assert tuned.fit_scores.f1 >= plain.fit_scores.f1 - 1e-12


@settings(max_examples=60, deadline=None)
@given(labelled_scores(), st.sampled_from(list(ENSEMBLES)), st.data())
def test_monotone_in_each_score(data, kind, draw):
    """Raising one model's score on a pair never turns a predicted match into a non-match."""
    y, scores = data
    ens = make_ensemble(kind).fit(y, scores)
    m = draw.draw(st.integers(0, scores.shape[1] - 1))
    bump = draw.draw(hnp.arrays(np.float64, len(y), elements=st.integers(0, 64).map(lambda k: k / 64)))
    raised = scores.copy()
    raised[:, m] += bump
    before, after = ens.predict(scores), ens.predict(raised)
    assert not (before & ~after).any()


@settings(max_examples=60, deadline=None)
@given(labelled_scores(), st.sampled_from(list(ENSEMBLES)), st.data())
def test_column_order_does_not_matter(data, kind, draw):
    y, scores = data
    perm = draw.draw(st.permutations(range(scores.shape[1])))
    a = make_ensemble(kind).fit(y, scores)
    b = make_ensemble(kind).fit(y, scores[:, perm])
    np.testing.assert_array_equal(a.predict(scores), b.predict(scores[:, perm]))


@settings(max_examples=40, deadline=None)
@given(labelled_scores(), st.sampled_from(list(ENSEMBLES)))
def test_json_round_trip_exact(data, kind):
    y, scores = data
    flagged = np.arange(len(y)) % 3 == 1
    assume(y[~flagged].any())
    ens = make_ensemble(kind).fit(y, scores, unseen=flagged)
    again = ensemble_from_dict(json.loads(json.dumps(ens.to_dict())))
    unseen = np.arange(len(y)) % 2 == 0
    np.testing.assert_array_equal(again.decision_function(scores, unseen), ens.decision_function(scores, unseen))


# ---------------------------------------------------------------- a realistic case
def test_noisy_independent_models_ensemble_better_than_each():
    rng = np.random.default_rng(42)
    n, m = 4000, 5
    y = rng.random(n) < 0.3
    logits = 2.0 * y[:, None] - 1.0 + rng.normal(0, 1.6, (n, m))  # independent noise per model
    p = 1 / (1 + np.exp(-logits))
    train, test = np.arange(n) < n // 2, np.arange(n) >= n // 2
    members = [pair_scores(y[test], p[test, k] > t).f1 for k, t in enumerate(fit_thresholds(y[train], p[train]))]
    for cls in (ThresholdEnsemble, F1Vote):
        ens = cls().fit(y[train], p[train])
        f1 = pair_scores(y[test], ens.predict(p[test])).f1
        assert f1 > max(members) + 0.03, (cls.__name__, f1, members)
