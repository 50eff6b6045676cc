"""KDD level 2 (`prodmatch.kdd.stacked`): out-of-fold protocol, per-query transforms, weighted ensemble,
LightGBM re-ranker, config checks, compare.csv kinds and the leaderboard row; seconds."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from prodmatch.config import load_config
from prodmatch.errors import DataError
from prodmatch.kdd import (
    METHODS, KddRunConfig, Method, StackedMethod, StackTable, build_methods, kdd_run, register_method,
)
from prodmatch.kdd.data import read_answers, read_candidates
from prodmatch.kdd.features import (
    CANDIDATE_FEATURES, minus_query_max, query_features, query_rank, query_zscore, rank_unit,
)
from prodmatch.kdd.stacked import stack_table

from . import test_kdd

DIM = test_kdd.DIM
data = test_kdd.data  # fixture: the test preset's data
STACK_KINDS = ("random", "box_label_overlap", "lgbm_rerank", "weighted_ensemble")


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    """kdd-test's baselines and level-2 members (the trained level-1 kinds have their own test files)."""
    return kdd_run(data, test_kdd.kdd_test_with(*STACK_KINDS), tmp_path_factory.mktemp("runs") / "run")


@pytest.fixture
def kind():
    """Register throw-away method kinds for one test, removed afterwards."""
    added = []

    def register(name):
        added.append(name)
        return register_method(name)

    yield register
    for name in added:
        METHODS.pop(name, None)


def config(*methods, **extra) -> KddRunConfig:
    return load_config({"feature_dim": DIM, "methods": list(methods), **extra}, KddRunConfig)


def table(scores, codes, relevant, names=None, n_relevant=None) -> StackTable:
    scores = np.asarray(scores, dtype=np.float64).reshape(len(codes), -1)
    codes = np.asarray(codes)
    n_q = codes.max() + 1
    rel = np.asarray(relevant, dtype=bool)
    return StackTable(scores, tuple(names or [f"s{i}" for i in range(scores.shape[1])]), np.zeros((len(codes), 0)), (),
                      codes, np.arange(100, 100 + n_q), np.arange(len(codes)) + 1000, rel,
                      np.bincount(codes, rel, n_q).astype(int) if n_relevant is None else np.asarray(n_relevant),
                      np.ones(n_q, bool))


# ---------------------------------------------------------------- per-query transforms
def test_per_query_transforms_exact_values():
    codes = np.array([0, 0, 0, 1, 1, 2])
    x = np.array([3.0, 1.0, 2.0, 5.0, 5.0, 7.0])
    np.testing.assert_array_equal(query_rank(x, codes), [1, 3, 2, 1.5, 1.5, 1])
    np.testing.assert_array_equal(rank_unit(x, codes), [1, 0, 0.5, 0.5, 0.5, 1])
    np.testing.assert_array_equal(minus_query_max(x, codes), [0, -2, -1, 0, 0, 0])
    s = np.sqrt(2 / 3)  # population std of 3, 1, 2
    np.testing.assert_allclose(query_zscore(x, codes), [1 / s, -1 / s, 0, 0, 0, 0], atol=1e-12)
    two = np.column_stack([x, -x])  # columns independent; rows need not be grouped
    order = np.array([5, 3, 0, 4, 2, 1])
    np.testing.assert_array_equal(query_rank(two[order], codes[order])[:, 1], [1, 1.5, 3, 1.5, 2, 1])
    feats, names = query_features(two, ["a", "b"], codes, ("raw", "minus_max"))
    assert names == ["a:raw", "b:raw", "a:minus_max", "b:minus_max"]
    np.testing.assert_array_equal(feats[:, 3], [-2, 0, -1, 0, 0, 0])


# ---------------------------------------------------------------- out-of-fold protocol
def test_out_of_fold_never_scores_a_query_it_was_fitted_on(data, kind):
    """A kind that memorises the answers it is fitted on: perfect in sample, no better than file order OOF."""
    seen = []

    @kind("memorise")
    class Memorise(StackedMethod):
        def fit_model(self, t):
            seen.append(set(t.query_ids.tolist()))
            return set(zip(t.query_ids[t.codes][t.relevant].tolist(), t.product_ids[t.relevant].tolist()))

        def predict_model(self, model, t):
            scored = set(t.query_ids.tolist())
            assert len(seen) == 4 or not scored & seen[-1]  # a fold model never scores its own queries
            pairs = pd.MultiIndex.from_arrays([t.query_ids[t.codes], t.product_ids])
            return pairs.isin(list(model)).astype(float) if model else np.zeros(len(t))

    cfg = config({"name": "random", "kind": "random"}, {"name": "m", "kind": "memorise", "options": {"folds": 3}})
    method = [m for m in build_methods(cfg) if m.spec.name == "m"][0]
    answers = read_answers(data / "valid_answer.json")
    cands = read_candidates(data / "valid.tsv", answers, feature_dim=DIM)
    t = stack_table(cands, {"random": np.zeros(len(cands.codes))}, method.inputs, (), answers)
    oof, facts = method.fit_scores(t)
    assert len(seen) == 4 and set().union(*seen[:3]) == set(cands.query_ids.tolist()) == seen[3]
    held = [set(cands.query_ids.tolist()) - s for s in seen[:3]]  # the held-out parts partition the queries
    assert sum(map(len, held)) == len(cands.query_ids) and set().union(*held) == set(cands.query_ids.tolist())
    np.testing.assert_array_equal(oof, 0.0)  # nothing it memorised is ever asked of it
    assert facts["in_sample_ndcg5"] == 1.0 and facts["oof_ndcg5"] == pytest.approx(t.ndcg(np.zeros(len(t))), abs=1e-6)
    assert facts["oof_ndcg5"] < 0.5
    assert method.predict(t).sum() == t.relevant.sum()  # the refit on all of valid is what scores the tests


def test_stage_valid_rows_of_level_2_are_out_of_fold(run):
    out = run["out"]
    compare = pd.read_csv(out / "compare.csv")
    valid = compare[compare["split"] == "valid"].set_index("method")
    assert valid["score_kind"].to_dict() == {"random": "held_out", "box_label_overlap": "held_out",
                                             "lgbm_rerank": "oof", "weighted_ensemble": "oof"}
    assert set(compare.loc[compare["split"] != "valid", "score_kind"]) == {"held_out"}
    record = json.loads((out / "run.json").read_text())
    for name in ("lgbm_rerank", "weighted_ensemble"):
        facts = record["methods"][name]
        assert facts["oof_ndcg5"] == pytest.approx(valid.loc[name, "NDCG@5"], abs=1e-6)
        assert facts["inputs"] == ["random", "box_label_overlap"] and facts["folds"] == 3
    assert record["methods"]["lgbm_rerank"]["in_sample_ndcg5"] > valid.loc["lgbm_rerank", "NDCG@5"]  # the gap OOF hides
    scores = pd.read_parquet(out / "scores.parquet")
    assert list(scores.columns[3:]) == ["random", "box_label_overlap", "lgbm_rerank", "weighted_ensemble"]
    assert record["methods"]["lgbm_rerank"]["saved"] == ["models/lgbm_rerank/model.txt"]


def test_the_saved_reranker_reproduces_the_test_scores(run, data):
    import lightgbm as lgb

    booster = lgb.Booster(model_file=str(run["out"] / "models" / "lgbm_rerank" / "model.txt"))
    method = build_methods(load_config(test_kdd.kdd_test_with(*STACK_KINDS), KddRunConfig))[2]
    cands = read_candidates(data / "testA.tsv", feature_dim=DIM)
    scores = pd.read_parquet(run["out"] / "scores.parquet").query("split == 'testA'")
    t = stack_table(cands, {n: scores[n].to_numpy() for n in method.inputs}, method.inputs, method.extras)
    np.testing.assert_allclose(booster.predict(method.features(t)[0]), scores["lgbm_rerank"], rtol=1e-12)


def test_lgbm_rerank_beats_its_best_input_out_of_fold(run):
    """Test preset (24 valid queries, 3 folds): label overlap ties an answer with its same-class hard
    negatives; num_boxes (a "with X" query's answers hold X's box too) breaks some of those ties."""
    valid = run["valid"]
    assert valid["lgbm_rerank"] > max(valid["random"], valid["box_label_overlap"]) + 0.02
    assert run["chosen"] == max(valid, key=valid.get)


def test_an_in_sample_valid_score_is_never_chosen(data, tmp_path, kind):
    @kind("answer_peek")
    class AnswerPeek(Method):
        valid_kind = "in_sample"  # e.g. a kind that tuned itself on valid's answers

        def score(self, split, candidates, context):
            truth = read_answers(data / f"{split}_answer.json")
            pairs = pd.MultiIndex.from_arrays([candidates.query_ids[candidates.codes], candidates.product_ids])
            return pairs.isin([(q, p) for q, ps in truth.items() for p in ps]).astype(float)

    cfg = {"feature_dim": DIM, "test_splits": [], "methods": [{"name": "peek", "kind": "answer_peek"},
                                                               {"name": "overlap", "kind": "box_label_overlap"}]}
    result = kdd_run(data, cfg, tmp_path / "run")
    compare = pd.read_csv(tmp_path / "run" / "compare.csv").set_index("method")
    assert compare.loc["peek", "NDCG@5"] == 1.0 and compare.loc["peek", "score_kind"] == "in_sample"
    assert result["chosen"] == "overlap" and not compare.loc["peek", "chosen"]
    from prodmatch.leaderboard import collect

    row = collect(tmp_path).iloc[0]  # a level-1 choice: its valid score is held-out
    assert row["what"].startswith("KDD recall: overlap (valid NDCG@5 held-out")
    assert row["ndcg5"] == round(compare.loc["overlap", "NDCG@5"], 4) and pd.isna(row["test_ndcg5"])


# ---------------------------------------------------------------- weighted ensemble
def ensemble(**options):
    cfg = config({"name": "a", "kind": "random"}, {"name": "b", "kind": "random"},
                 {"name": "ens", "kind": "weighted_ensemble", "options": options})
    return build_methods(cfg)[2]


def test_weighted_ensemble_puts_the_weight_on_the_truth():
    rng = np.random.default_rng(0)
    codes = np.repeat(np.arange(30), 20)
    relevant = np.zeros(len(codes), bool)
    relevant[np.flatnonzero(np.tile(np.arange(20) < 3, 30))] = True
    noise = rng.random(len(codes))
    for normalise in ("rank", "z"):
        model = ensemble(normalise=normalise)
        weights = model.fit_model(table(np.column_stack([noise, relevant]), codes, relevant))
        np.testing.assert_array_equal(weights, [0.0, 1.0])
    # two noisy views of the truth: the search finds a mix better than either alone
    a = relevant + rng.normal(0, 0.8, len(codes))
    b = relevant + rng.normal(0, 0.8, len(codes))
    t = table(np.column_stack([a, b]), codes, relevant)
    model = ensemble()
    weights = model.fit_model(t)
    assert 0 < weights[0] < 1 and weights.sum() == pytest.approx(1.0)
    singles = [t.ndcg(model.columns(t)[:, j]) for j in range(2)]
    assert t.ndcg(model.predict_model(weights, t)) > max(singles) + 0.01
    assert model.describe(weights)["weights"] == {"a": round(weights[0], 6), "b": round(weights[1], 6)}


def test_weighted_ensemble_on_the_test_preset_holds_its_best_member_in_sample(run):
    """The search starts at the best single input and only takes gains, so in sample it is never below it;
    out-of-fold it may be (measured, not assumed: the stage's compare.csv)."""
    record = json.loads((run["out"] / "run.json").read_text())["methods"]["weighted_ensemble"]
    assert record["in_sample_ndcg5"] >= run["valid"]["box_label_overlap"] - 1e-6
    assert sum(record["weights"].values()) == pytest.approx(1.0) and record["weights"]["box_label_overlap"] >= 0.5


# ---------------------------------------------------------------- config checks
@pytest.mark.parametrize("methods, message", [
    ([{"name": "e", "kind": "weighted_ensemble"}], r"method 'e': no level-1 method is listed before it"),
    ([{"name": "r", "kind": "random"}, {"name": "e", "kind": "weighted_ensemble", "options": {"inputs": ["rnd"]}}],
     r"method 'e': unknown input 'rnd' \(methods: r, e\)"),
    ([{"name": "e", "kind": "weighted_ensemble", "options": {"inputs": ["r"]}}, {"name": "r", "kind": "random"}],
     r"input 'r' is listed after it"),
    ([{"name": "r", "kind": "random"}, {"name": "l", "kind": "lgbm_rerank"},
      {"name": "e", "kind": "weighted_ensemble", "options": {"inputs": ["r", "l"]}}], r"input 'l' is a level-2 method"),
    ([{"name": "r", "kind": "random"}, {"name": "l", "kind": "lgbm_rerank"}, {"name": "o", "kind": "box_label_overlap"}],
     r"method 'l': level-1 method\(s\) 'o' listed after this level-2 method; list every level-1 method before"),
    ([{"name": "r", "kind": "random"}, {"name": "e", "kind": "weighted_ensemble", "options": {"inputs": ["r", "r"]}}],
     r"repeated input\(s\) 'r'"),
    ([{"name": "r", "kind": "random"}, {"name": "l", "kind": "lgbm_rerank", "options": {"folds": 1}}],
     r"method 'l': folds must be >= 2"),
    ([{"name": "r", "kind": "random"}, {"name": "l", "kind": "lgbm_rerank", "options": {"extras": ["area"]}}],
     r"unknown candidate feature\(s\) 'area'"),
    ([{"name": "r", "kind": "random"}, {"name": "l", "kind": "lgbm_rerank", "options": {"transforms": ["log"]}}],
     r"transforms 'log' unknown"),
    ([{"name": "r", "kind": "random"}, {"name": "e", "kind": "weighted_ensemble", "options": {"step": 0.3}}],
     r"step must divide 1"),
    ([{"name": "r", "kind": "random"}, {"name": "e", "kind": "weighted_ensemble", "options": {"normalise": "max"}}],
     r"'max' is not one of 'rank', 'z'"),
])
def test_level_2_config_errors_at_load(methods, message):
    with pytest.raises(DataError, match=message):
        config(*methods)


def test_defaults_and_shipped_configs():
    cfg = config({"name": "r", "kind": "random"}, {"name": "o", "kind": "box_label_overlap"},
                 {"name": "l", "kind": "lgbm_rerank", "options": {"inputs": ["o"]}}, {"name": "e", "kind": "weighted_ensemble"})
    lgbm, ens = build_methods(cfg)[2:]
    assert lgbm.inputs == ("o",) and ens.inputs == ("r", "o")  # default: all level-1 methods
    assert lgbm.needs == () and lgbm.extras == ("num_boxes", "image_area")
    boxes = config({"name": "r", "kind": "random"}, {"name": "l", "kind": "lgbm_rerank", "options": {"extras": ["box_area"]}})
    assert build_methods(boxes)[1].needs == ("boxes",) and set(CANDIDATE_FEATURES) >= {"num_boxes", "image_area", "box_area"}
    for name in ("kdd-test", "kdd-demo"):
        kinds = [m.kind for m in load_config(name, KddRunConfig).methods]
        assert kinds[-2:] == ["lgbm_rerank", "weighted_ensemble"]


def test_too_few_valid_queries_for_the_folds_is_a_data_error(data, tmp_path):
    cfg = {"feature_dim": DIM, "test_splits": [], "methods": [
        {"name": "r", "kind": "random"}, {"name": "l", "kind": "lgbm_rerank", "options": {"folds": 50}}]}
    with pytest.raises(DataError, match=r"method 'l': valid queries: 24 group\(s\) cannot fill 50 folds"):
        kdd_run(data, cfg, tmp_path / "run")


def test_non_finite_input_scores_are_a_data_error(data, tmp_path, kind):
    @kind("nan_scores")
    class NanScores(Method):
        def score(self, split, candidates, context):
            return np.where(np.arange(len(candidates.codes)) == 3, np.nan, 1.0)

    cfg = {"feature_dim": DIM, "test_splits": [], "methods": [
        {"name": "bad", "kind": "nan_scores"}, {"name": "e", "kind": "weighted_ensemble", "options": {"folds": 2}}]}
    with pytest.raises(DataError, match=r"valid.tsv: level-1 method\(s\) 'bad' gave non-finite scores"):
        kdd_run(data, cfg, tmp_path / "run")


def test_box_area_feature_exact(data):
    cands = read_candidates(data / "valid.tsv", feature_dim=DIM, decode=("boxes",))
    got = CANDIDATE_FEATURES["box_area"][1](cands)
    d, r = cands.data, 7
    b = d.boxes[d.offsets[r]:d.offsets[r + 1]].astype(np.float64)
    want = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])).mean() / (d.rows["image_h"][r] * d.rows["image_w"][r])
    assert got[r] == pytest.approx(want, rel=1e-12) and ((got > 0) & (got <= 1)).all()


# ---------------------------------------------------------------- leaderboard
def test_leaderboard_row_for_a_kdd_run(run):
    from prodmatch.leaderboard import collect

    out = run["out"]
    board = collect(out.parent)
    row = board[(board["run"] == out.name) & (board["entry"] == "kdd")]
    assert len(row) == 1
    row = row.iloc[0]
    assert row["metric"] == "NDCG@5" and pd.isna(row["f1"])
    assert row["ndcg5"] == round(run["valid"][run["chosen"]], 4) and row["test_ndcg5"] == round(run["test"]["testA"], 4)
    assert run["chosen"] in row["what"] and "out-of-fold" in row["what"]
    assert row["stages"] == f"testA {run['test']['testA']:.4f} testB {run['test']['testB']:.4f}"
