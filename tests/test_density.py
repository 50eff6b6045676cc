"""Test-size-aware tuning: wrong pairs weighted by the test pool's distractor density
(`post.tune.density_weight`), the size tables a bundle carries, and whether the F1 predicted for
a bigger pool is closer to what that pool scores than the CV pool's own F1."""
from __future__ import annotations

import numpy as np
import pytest

from prodmatch.metrics import per_row_scores
from prodmatch.post.matcher import MatcherConfig, Pool, Stage, score, tune
from prodmatch.post.threshold import Matches
from prodmatch.post.tune import curve, density_weight, size_table, thresholds_for

from .test_matcher import clustered


def test_density_weight():
    assert density_weight(301, 3001) == pytest.approx(10.0)
    assert density_weight(1000, None) == 1.0 and density_weight(1, 500) == 1.0
    assert density_weight(3001, 301) == pytest.approx(0.1)


def test_weighted_curve_and_per_row_scores_exact():
    # row 0 (group 0, 3 members) lists row 1 (true, 0.9), row 3 (wrong, 0.8), row 2 (true, 0.4)
    groups = np.array([0, 0, 0, 1, 1])
    cands = Matches.from_pairs(np.array([0, 0, 0]), np.array([1, 3, 2]), np.array([0.9, 0.8, 0.4]), 5)
    grid = np.array([0.3, 0.5, 0.85])
    c = curve(cands, groups, grid, rows_mask=np.array([True, False, False, False, False]), negative_weight=4.0)
    # t=0.3: pred = self + 2 true + 4 x 1 wrong = 7, hits 3 -> F1 2*3/(7+3); t=0.5: 1 + 1 + 4 = 6, hits 2; t=0.85: 2, hits 2
    np.testing.assert_allclose(c.base["f1"], [6 / 10, 4 / 9, 4 / 5])
    np.testing.assert_allclose(c.base["precision"], [3 / 7, 2 / 6, 2 / 2])
    f1, precision, recall = per_row_scores(np.array([0, 0, 0]), np.array([0, 1, 3]), groups, negative_weight=4.0)
    assert f1[0] == pytest.approx(4 / 9) and precision[0] == pytest.approx(2 / 6) and recall[0] == pytest.approx(2 / 3)
    # weight 1 is the plain score: t=0.3 -> pred 4, hits 3
    only_row0 = np.array([True, False, False, False, False])
    assert curve(cands, groups, grid, rows_mask=only_row0).base["f1"][0] == pytest.approx(6 / 7)


def test_size_table_thresholds_rise_with_the_test_size_and_predict_takes_the_nearest():
    models, groups, folds, titles = clustered(n_groups=120, seed=1)
    parts = [(Pool({"a": ("dense", models["a"][folds == f])}, groups=groups[folds == f], k=20), None)
             for f in range(4)]
    stage, config = Stage("threshold", ("a",)), MatcherConfig()

    def curves_at(rows):
        return [pool.curve(stage, None, config.grid, None, rows) for pool, _ in parts]

    n = sum(pool.n for pool, _ in parts)
    table = size_table(curves_at, n, min2=False, sizes=(100, 1_000, 10_000))
    ts = [e["t"] for e in table]
    assert ts == sorted(ts) and ts[0] < ts[-1]  # denser test pools need stricter thresholds
    assert [e["f1"] for e in table] == sorted((e["f1"] for e in table), reverse=True)
    assert thresholds_for(table, 2_500)["rows"] == 1_000 and thresholds_for(table, 4_000)["rows"] == 10_000
    assert thresholds_for(table, 3)["rows"] == 100


def test_predicted_f1_for_a_bigger_pool_is_closer_than_the_cv_pools_own():
    """Tune on 8 fold pools, predict for the pool of every row (8x the distractors); then search
    that pool for real: the weighted prediction lands nearer its F1 than the fold pools' F1 does."""
    models, groups, folds, _ = clustered(n_groups=400, seed=2, noise=(0.9, 0.9))
    folds = groups % 8
    parts = [(Pool({"a": ("dense", models["a"][folds == f])}, groups=groups[folds == f], k=30), None)
             for f in range(8)]
    big = [(Pool({"a": ("dense", models["a"])}, groups=groups, k=30), None)]
    stage, grid = Stage("threshold", ("a",)), MatcherConfig().grid
    n = len(groups)
    own = tune(parts, stage, MatcherConfig())
    at_size = tune(parts, stage, MatcherConfig(test_rows=n))
    cv_f1 = sum(score(p, own, grid)["f1"] for p in parts) / n
    predicted = sum(score(p, at_size, grid, n)["f1"] for p in parts) / n
    actual_own = score(big[0], own, grid)["f1"] / n
    actual = score(big[0], at_size, grid)["f1"] / n
    assert at_size.t > own.t
    assert abs(predicted - actual) < abs(cv_f1 - actual_own)
    assert actual >= actual_own  # and the thresholds tuned for the size score better there


def test_curves_of_row_segments_add_up_to_the_whole_pool():
    """`curve` with a rows mask sums only those rows (their pairs alone are bucketed)."""
    rng = np.random.default_rng(0)
    n = 60
    groups = rng.integers(0, 15, n)
    rows, cols = rng.integers(0, n, 900), rng.integers(0, n, 900)
    cands = Matches.from_pairs(rows, cols, rng.random(900), n)
    segments = rng.integers(0, 4, n)
    grid = np.linspace(0.05, 0.95, 19)
    whole = curve(cands, groups, grid, negative_weight=3.0)
    parts = [curve(cands, groups, grid, rows_mask=segments == s, negative_weight=3.0) for s in range(4)]
    for metric in ("f1", "precision", "recall"):
        np.testing.assert_allclose(sum(p.base[metric] for p in parts), whole.base[metric])
        np.testing.assert_allclose(sum(p.min2_gain[metric] for p in parts), whole.min2_gain[metric])
    assert sum(p.n_rows for p in parts) == whole.n_rows == n


def test_score_parts_with_chisel_equals_scoring_each_segment():
    from prodmatch.post.matcher import MatcherParams, score_parts

    models, groups, folds, titles = clustered(n_groups=80, seed=3)
    pool = Pool({m: ("dense", x) for m, x in models.items()}, titles=titles, groups=groups, segments=folds, k=10)
    parts = [(pool, f) for f in range(4)]
    sizes = tuple(int(s) for s in np.unique(groups, return_counts=True)[1])
    params = MatcherParams(Stage("+chisel", ("a", "b"), ("min2", "union", "chisel")), {}, 0.5, 0.3, sizes)
    grid = MatcherConfig().grid
    for rows in (None, 5_000):
        together = score_parts(parts, params, grid, rows)
        apart = [score(part, params, grid, rows) for part in parts]
        for m in ("f1", "precision", "recall"):
            assert together[m] == pytest.approx(sum(a[m] for a in apart))


def test_test_size_validation_and_the_tiny_run_warning(caplog):
    from types import SimpleNamespace

    from prodmatch.errors import DataError
    from prodmatch.post.run import tuned_test_rows

    models = [SimpleNamespace(test=np.zeros((3, 4)))]
    assert tuned_test_rows(70_000, None, models) == 70_000 and tuned_test_rows(None, 5_000, models) == 5_000
    with caplog.at_level("WARNING", logger="prodmatch.pipeline"):
        assert tuned_test_rows(None, None, models) == 3
    assert "pass --test-rows" in caplog.text
    with pytest.raises(DataError, match="positive row count"):
        tuned_test_rows(-5, None, models)
