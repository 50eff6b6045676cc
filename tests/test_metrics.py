import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from prodmatch.errors import DataError
from prodmatch.metrics import (
    Scores,
    best_pair_threshold,
    pair_scores,
    row_scores,
    score_submission,
)
from prodmatch.post.tune import best_row_threshold


def test_row_scores_hand_computed():
    groups = [0, 0, 0, 1]
    # row 0 predicts {0,1}: P=1, R=2/3, F1=0.8; row 1 {1,3}: hit 1, P=.5, R=1/3, F1=2/5
    # row 2 {2}: P=1, R=1/3, F1=.5; row 3 {3}: perfect
    rows = [0, 0, 1, 1, 2, 3]
    cols = [0, 1, 1, 3, 2, 3]
    s = row_scores(rows, cols, groups)
    assert s.f1 == pytest.approx((0.8 + 0.4 + 0.5 + 1.0) / 4)
    assert s.precision == pytest.approx((1 + 0.5 + 1 + 1) / 4)
    assert s.recall == pytest.approx((2 / 3 + 1 / 3 + 1 / 3 + 1) / 4)


def test_row_scores_duplicates_count_once_and_empty_row_scores_zero():
    s = row_scores([0, 0, 0], [0, 1, 1], [7, 7])
    # row 0 perfect, row 1 predicted nothing
    assert s == Scores(0.5, 0.5, 0.5)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30))
@settings(max_examples=50, deadline=None)
def test_perfect_prediction_scores_one(groups):
    g = np.array(groups)
    rows, cols = np.nonzero(g[:, None] == g[None, :])
    assert row_scores(rows, cols, g) == Scores(1.0, 1.0, 1.0)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=30))
@settings(max_examples=50, deadline=None)
def test_self_only_recall_is_inverse_group_size(groups):
    g = np.array(groups)
    n = len(g)
    sizes = (g[:, None] == g[None, :]).sum(1)
    s = row_scores(np.arange(n), np.arange(n), g)
    assert s.precision == 1.0
    assert s.recall == pytest.approx(np.mean(1 / sizes))
    assert s.f1 == pytest.approx(np.mean(2 / (1 + sizes)))


def test_best_row_threshold_finds_the_separating_value():
    groups = np.array([0, 0, 1, 1])
    rows = np.array([0, 1, 2, 3, 0, 1])
    cols = np.array([1, 0, 3, 2, 2, 3])
    sims = np.array([0.9, 0.9, 0.8, 0.8, 0.5, 0.5])
    t, s = best_row_threshold(rows, cols, sims, groups, thresholds=[0.3, 0.6, 0.85, 0.95])
    assert t == 0.6 and s.f1 == 1.0
    t, s = best_row_threshold(rows, cols, sims, groups, thresholds=[0.95])
    assert s.f1 == pytest.approx(2 / 3)  # self only: F1 = 2/(1+2) per row


def test_pair_scores_hand_computed():
    s = pair_scores([1, 1, 0, 0, 1], [1, 0, 1, 0, 1])
    assert s == Scores(pytest.approx(2 / 3), pytest.approx(2 / 3), pytest.approx(2 / 3))
    assert pair_scores([0, 0], [0, 0]) == Scores(0.0, 0.0, 0.0)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 6)), min_size=1, max_size=40))
@settings(max_examples=80, deadline=None)
def test_best_pair_threshold_matches_brute_force(data):
    y = np.array([d[0] for d in data])
    s = np.array([d[1] for d in data], dtype=float) / 6
    t, best = best_pair_threshold(y, s)
    brute = max(pair_scores(y, s >= c).f1 for c in np.unique(s))
    assert best.f1 == pytest.approx(brute)
    assert pair_scores(y, s >= t).f1 == pytest.approx(best.f1)


def test_best_pair_threshold_empty():
    with pytest.raises(DataError):
        best_pair_threshold([], [])


def _truth():
    return pd.DataFrame({"posting_id": ["a", "b", "c"], "label_group": [1, 1, 2]})


def test_score_submission_hand_computed():
    sub = pd.DataFrame({"posting_id": ["a", "b", "c"], "matches": ["a b", "b", "c a"]})
    s = score_submission(_truth(), sub)
    assert s.f1 == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


@pytest.mark.parametrize(
    "sub, message",
    [
        ({"posting_id": ["a", "b"], "matches": ["a", "b"]}, "lacks 1 posting_id.*'c'"),
        ({"posting_id": ["a", "b", "c", "z"], "matches": ["a"] * 4}, "not in the truth.*'z'"),
        ({"posting_id": ["a", "a", "b", "c"], "matches": ["a"] * 4}, "repeats posting_id"),
        ({"posting_id": ["a", "b", "c"], "matches": ["a q", "b", "c"]}, "unknown posting_id.*'q'"),
    ],
)
def test_score_submission_rejects_bad_files(sub, message):
    with pytest.raises(DataError, match=message):
        score_submission(_truth(), pd.DataFrame(sub))


def _loop_best_row_threshold(rows, cols, sims, groups, thresholds):
    """The definition: score every threshold separately, keep the first best (F1s equal to 1e-9
    are ties: the same sum in another order differs in its last bits)."""
    n = len(groups)
    scored = []
    for t in thresholds:
        keep = sims >= t
        scored.append((t, row_scores(np.r_[np.arange(n), rows[keep]], np.r_[np.arange(n), cols[keep]], groups)))
    top = max(s.f1 for _, s in scored)
    return next((t, s) for t, s in scored if s.f1 >= top - 1e-9 * max(1.0, abs(top)))


@given(st.integers(2, 30), st.integers(0, 200), st.integers(0, 2**31 - 1))
@example(19, 118, 19)  # F1 at t=0.9 and t=0.95 equal but for the last bit: a tie, first given wins
@settings(max_examples=60, deadline=None)
def test_best_row_threshold_one_pass_equals_the_per_threshold_loop(n, n_pairs, seed):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, max(1, n // 3), n)
    rows, cols = rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs)
    sims = np.round(rng.random(n_pairs), 2)  # on-grid values: the >= boundary is exercised
    thresholds = rng.permutation(np.round(np.arange(0.05, 1.0, 0.05), 2))  # any order: ties -> first given
    t, s = best_row_threshold(rows, cols, sims, groups, thresholds)
    t_ref, s_ref = _loop_best_row_threshold(rows, cols, sims, groups, thresholds)
    assert t == t_ref
    assert s.f1 == pytest.approx(s_ref.f1) and s.precision == pytest.approx(s_ref.precision)
    assert s.recall == pytest.approx(s_ref.recall)
