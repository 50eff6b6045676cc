"""Candidate pair features and the LightGBM stacker (fold discipline, grouping, artifacts, CLI)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.errors import DataError
from prodmatch.stack.candidates import (
    candidate_recall,
    density,
    feature_columns,
    graph_features,
    list_rank,
    pair_features,
    title_features,
    unordered_pairs,
)
from prodmatch.stack.run import stack_run
from prodmatch.post import Matches
from prodmatch.similarity import DenseModel
from prodmatch.post.matcher import Pool
from prodmatch.stack.lgbm import (
    LgbmParams,
    StackerConfig,
    components,
    fit_oof,
    load_booster,
    pair_matches,
    plot_importance,
)
from prodmatch.store import rows_table, save_embeddings

from .test_matcher import clustered

FAST = LgbmParams(num_leaves=7, n_estimators=60, early_stopping_rounds=10, min_child_samples=5, num_threads=1)


def test_unordered_pairs_merge_both_directions():
    idx = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]])
    model = DenseModel(np.eye(4, dtype=np.float32), idx, np.ones((4, 3), np.float32))
    i, j = unordered_pairs([model], 4)
    assert list(zip(i, j)) == [(0, 1), (0, 2), (1, 3), (2, 3)]


def test_list_rank_and_density():
    idx = np.array([[0, 2, 1], [1, 0, 2], [2, 1, 0]])
    assert list(list_rank(idx, np.array([0, 0, 1, 2]), np.array([2, 1, 2, 0]))) == [1, 2, 2, 2]
    idx2 = np.array([[0, 2], [1, 0], [2, 1]])
    assert list(list_rank(idx2, np.array([0, 1]), np.array([1, 2]))) == [2, 2]  # absent -> k
    sims = np.array([[1.0, 0.8, 0.6, 0.1], [1.0, 0.5, 0.5, 0.5]], np.float32)
    np.testing.assert_allclose(density(sims, 2), [0.7, 0.5], rtol=1e-6)
    np.testing.assert_allclose(density(sims, 10), [0.5, 0.5], rtol=1e-6)  # fewer than top: all others


def test_graph_features_exact():
    # rows' lists (self first): 0 -> 1 (0.9), 2 (0.5); 1 -> 0 (0.9), 2 (0.7); 2 -> 1 (0.7), 0 (0.5); 3 -> 2 (0.2), 0 (0.1)
    idx = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 0]])
    sims = np.array([[1.0, 0.9, 0.5], [1.0, 0.9, 0.7], [1.0, 0.7, 0.5], [1.0, 0.2, 0.1]], np.float32)
    model = DenseModel(np.eye(4, dtype=np.float32), idx, sims)
    i, j = np.array([0, 0, 1]), np.array([1, 3, 2])
    f = graph_features(model, i, j, np.array([0.9, 0.1, 0.7], np.float32))
    # shared neighbours (self left out): (0, 1) and (0, 3) share row 2, (1, 2) share row 0
    np.testing.assert_array_equal(f["common"], [1, 1, 1])
    np.testing.assert_allclose(f["two_hop"], [0.5 * 0.7, 0.5 * 0.2, 0.9 * 0.5], rtol=1e-6)
    # margins to each side's best other (0.9, 0.9, 0.7, 0.2) and k-th (0.5, 0.7, 0.5, 0.1) similarity
    np.testing.assert_allclose(f["margin_top_min"], [0.0, 0.1 - 0.9, 0.7 - 0.9], atol=1e-6)
    np.testing.assert_allclose(f["margin_top_max"], [0.0, 0.1 - 0.2, 0.0], atol=1e-6)
    np.testing.assert_allclose(f["margin_kth_min"], [0.2, 0.1 - 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(f["margin_kth_max"], [0.4, 0.0, 0.2], atol=1e-6)


def test_title_features_exact():
    titles = np.array(["susu 250ml", "susu 250 ml", "susu 1l", "abc", ""], dtype=object)
    f = title_features(titles, np.array([0, 0, 3, 3]), np.array([1, 2, 4, 3]))
    np.testing.assert_allclose(f["token_jaccard"], [1 / 4, 1 / 3, 0.0, 1.0])
    assert list(f["unit_conflict"]) == [0, 1, 0, 0]
    assert f["edit_distance"][3] == 0.0 and f["edit_distance"][2] == 1.0
    assert f["edit_distance"][0] == pytest.approx(1 / 11)
    assert list(f["len_min"]) == [10, 7, 0, 3] and list(f["len_max"]) == [11, 10, 3, 3]


def small_pool(seed=0, n_groups=40):
    models, groups, folds, titles = clustered(n_groups=n_groups, seed=seed)
    return Pool({m: ("dense", x) for m, x in models.items()}, titles=titles, groups=groups, k=8), models, groups


def test_pair_features_exact_sims_labels_and_recall():
    pool, models, groups = small_pool()
    frame = pair_features(pool, ["a", "b"], {"a": 0.5})
    i, j = frame["i"].to_numpy(), frame["j"].to_numpy()
    assert (i < j).all() and not frame.duplicated(["i", "j"]).any()
    np.testing.assert_allclose(frame["a_sim"], np.einsum("ij,ij->i", models["a"][i], models["a"][j]), atol=1e-5)
    np.testing.assert_array_equal(frame["label"], groups[i] == groups[j])
    assert {"a_nb_sim", "union_nb", "union", "edit_distance", "unit_conflict"} <= set(frame.columns)
    assert "b_nb_sim" not in frame and "label" not in feature_columns(frame)
    sizes = np.bincount(groups)
    assert candidate_recall(frame, groups) == pytest.approx(frame["label"].sum() / (sizes * (sizes - 1) // 2).sum())
    # any pair listed in either direction by either model is a candidate
    listed = {(min(r, c), max(r, c)) for m in ("a", "b") for r, row in enumerate(pool.model(m).idx) for c in row if r != c}
    assert listed <= set(zip(i.tolist(), j.tolist()))


def test_pair_features_are_symmetric_under_row_permutation():
    pool, models, groups = small_pool()
    perm = np.random.default_rng(3).permutation(pool.n)
    other = Pool({m: ("dense", x[perm]) for m, x in models.items()}, titles=pool.titles[perm], groups=groups[perm], k=8)
    a = pair_features(pool, ["a", "b"], graph=True)
    b = pair_features(other, ["a", "b"], graph=True)
    assert {"a_common", "b_two_hop", "a_margin_kth_min"} <= set(a.columns)
    b_i, b_j = perm[b["i"]], perm[b["j"]]
    b = b.assign(i=np.minimum(b_i, b_j), j=np.maximum(b_i, b_j)).sort_values(["i", "j"], ignore_index=True)
    a = a.sort_values(["i", "j"], ignore_index=True)
    pd.testing.assert_frame_equal(a.drop(columns=["a_rank_min", "a_rank_max", "b_rank_min", "b_rank_max"]),
                                  b.drop(columns=["a_rank_min", "a_rank_max", "b_rank_min", "b_rank_max"]),
                                  check_dtype=False, atol=1e-5)


def test_components_join_small_components_only():
    m = Matches.from_pairs([0, 1, 3, 4, 5], [1, 2, 4, 5, 6], [0.9, 0.8, 0.7, 0.6, 0.5], 8)
    out = components(m, cap=3).pair_set()
    assert {(0, 2), (2, 0), (2, 1)} <= out  # {0,1,2} fully joined
    assert (3, 5) not in out and (3, 4) in out  # {3..6} is over the cap: edges only
    assert (7, 7) in out


def test_pair_matches_both_directions():
    m = pair_matches([0, 1], [2, 2], [0.3, 0.9], 3)
    assert m.pair_set() == {(0, 0), (1, 1), (2, 2), (0, 2), (2, 0), (1, 2), (2, 1)}


def pairs_table(seed=0):
    models, groups, folds, titles = clustered(n_groups=80, seed=seed)
    frames = []
    for f in range(4):
        at = folds == f
        pool = Pool({m: ("dense", x[at]) for m, x in models.items()}, titles=titles[at], groups=groups[at], k=8)
        frame = pair_features(pool, ["a", "b"])
        frame.insert(2, "fold", f)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_fold_predictions_never_see_their_own_labels():
    pairs = pairs_table()
    config = StackerConfig(lgbm=FAST)
    base = fit_oof(pairs, config, progress=False)
    flipped = pairs.copy()
    at0 = flipped["fold"] == 0
    flipped.loc[at0, "label"] = 1 - flipped.loc[at0, "label"]
    other = fit_oof(flipped, config, progress=False)
    np.testing.assert_array_equal(base.prob[at0.to_numpy()], other.prob[at0.to_numpy()])
    assert not np.array_equal(base.prob[~at0.to_numpy()], other.prob[~at0.to_numpy()])
    assert base.importance["gain"].sum() == pytest.approx(1.0)
    auc_like = base.prob[pairs["label"] == 1].mean() - base.prob[pairs["label"] == 0].mean()
    assert auc_like > 0.3


def test_stacker_bad_input():
    pairs = pairs_table()
    with pytest.raises(DataError, match="3 folds"):
        fit_oof(pairs[pairs["fold"] < 2], StackerConfig(lgbm=FAST), progress=False)
    with pytest.raises(DataError, match="no candidate pairs"):
        fit_oof(pairs.iloc[:0], StackerConfig(lgbm=FAST), progress=False)
    with pytest.raises(DataError, match="one class"):
        fit_oof(pairs.assign(label=0), StackerConfig(lgbm=FAST), progress=False)
    with pytest.raises(DataError, match="lack columns"):
        fit_oof(pairs.drop(columns=["label"]), StackerConfig(lgbm=FAST), progress=False)


def test_plot_importance_writes_png(tmp_path):
    path = plot_importance(pd.DataFrame({"feature": ["a", "b"], "gain": [0.7, 0.3]}), tmp_path / "imp.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def stack_folder(tmp_path):
    models, groups, folds, titles = clustered(n_groups=80)
    frame = pd.DataFrame({"posting_id": [f"p{i}" for i in range(len(groups))], "label_group": groups})
    rows = rows_table(frame, folds)
    run = tmp_path / "run"
    for name, x in models.items():
        save_embeddings(run, name, "dense", x, rows=rows)
    data = tmp_path / "data"
    data.mkdir()
    frame.assign(image="x.jpg", image_phash="0" * 16, title=titles).to_csv(data / "train.csv", index=False)
    return run, data


def test_stack_run_artifacts(stack_folder):
    run, data = stack_folder
    config = {"k": 8, "lgbm": {"num_leaves": 7, "n_estimators": 60, "early_stopping_rounds": 10,
                               "min_child_samples": 5, "num_threads": 1}}
    result = stack_run(run, data_dir=data, config=config, progress=False)
    out = run / "stack"
    info = json.loads((out / "stack.json").read_text())
    assert 0 < info["oof"]["f1"] <= 1 and len(info["candidate_recall"]) == 4
    pairs = pd.read_parquet(out / "pairs.parquet")
    assert {"prob", "posting_id_i", "posting_id_j", "fold"} <= set(pairs.columns)
    # posting ids map back to the run's rows: same fold and the label agrees
    rows = pd.read_csv(run / "rows.csv", dtype={"posting_id": str}).set_index("posting_id")
    assert (rows.loc[pairs["posting_id_i"], "fold"].to_numpy() == pairs["fold"].to_numpy()).all()
    same = rows.loc[pairs["posting_id_i"], "label_group"].to_numpy() == rows.loc[pairs["posting_id_j"], "label_group"].to_numpy()
    np.testing.assert_array_equal(same, pairs["label"].astype(bool))
    booster = load_booster(out / "model.txt")
    assert booster.num_feature() == len(feature_columns(pairs.drop(columns=["prob"])))
    assert (out / "importance.png").is_file() and result["scores"].f1 == info["oof"]["f1"]
    with pytest.raises(FileExistsError):
        stack_run(run, data_dir=data, config=config, progress=False)


def test_stack_cli(stack_folder, tmp_path, capsys):
    run, data = stack_folder
    cfg = tmp_path / "stack.yaml"
    cfg.write_text("k: 8\nlgbm:\n  n_estimators: 40\n  num_leaves: 7\n  min_child_samples: 5\n  num_threads: 1\n")
    assert main(["stack", "--run", str(run), "--data", str(data), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "stacker OOF (all pool): f1=" in out and "no test size known" in out  # this run has no test.csv
    assert main(["stack", "--run", str(run), "--data", str(data), "--config", str(cfg), "--overwrite",
                 "--test-rows", "400"]) == 0
    assert "predicted at 400 test rows: F1 " in capsys.readouterr().out
    base = ["stack", "--run", str(run), "--data", str(data), "--config", str(cfg), "--overwrite"]
    assert main(base + ["--backend", "torch"]) == 0  # --backend reaches the candidate search
    assert json.loads((run / "stack" / "stack.json").read_text())["config"]["backend"] == "torch"
    assert main(base + ["--backend", "dask"]) == 2
    assert "runs on a Dask cluster: add --dask local" in capsys.readouterr().err
    cfg.write_text("k: 8\nlgbm:\n  n_leaves: 7\n")
    assert main(["stack", "--run", str(run), "--data", str(data), "--config", str(cfg), "--overwrite"]) == 2
    assert "did you mean 'num_leaves'" in capsys.readouterr().err


def test_compare_members_ensembles_and_stacker(stack_folder):
    run, data = stack_folder
    config = {"k": 8, "lgbm": {"num_leaves": 7, "n_estimators": 60, "early_stopping_rounds": 10,
                               "min_child_samples": 5, "num_threads": 1}}
    result = stack_run(run, data_dir=data, config=config, progress=False)
    table = result["compare"].set_index("entry")
    assert list(table.index) == ["a_sim", "b_sim", "union", "prob", "threshold ensemble of members",
                                 "f1-vote ensemble of members", "threshold ensemble of calibrated members"]
    assert table[["pair_f1", "row_f1"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (run / "stack" / "compare.csv").is_file()


def test_nested_member_decisions_ignore_their_fold_labels():
    from prodmatch.stack.compare import nested_predictions

    pairs = pairs_table()
    base = nested_predictions(pairs, ["a_sim"], "member")
    flipped = pairs.assign(label=np.where(pairs["fold"] == 1, 1 - pairs["label"], pairs["label"]))
    again = nested_predictions(flipped, ["a_sim"], "member")
    at1 = (pairs["fold"] == 1).to_numpy()
    np.testing.assert_array_equal(base[at1], again[at1])
    ens = nested_predictions(pairs, ["a_sim", "b_sim"], "threshold")
    assert ens.dtype == bool and ens.any()


def test_stack_run_with_the_components_step(stack_folder):
    run, data = stack_folder
    config = {"k": 8, "graph": "components", "component_cap": 6,
              "lgbm": {"num_leaves": 7, "n_estimators": 40, "early_stopping_rounds": 10, "min_child_samples": 5,
                       "num_threads": 1}}
    result = stack_run(run, data_dir=data, config=config, progress=False)
    info = result["info"]
    assert info["config"]["graph"] == "components" and 0 < info["oof"]["f1"] <= 1
    assert all(round(x["t"] * 50) == x["t"] * 50 for x in info["nested_thresholds"])  # the coarse 0.02 grid


def test_stack_run_with_graph_features(stack_folder):
    run, data = stack_folder
    config = {"k": 8, "graph_features": True,
              "lgbm": {"num_leaves": 7, "n_estimators": 40, "early_stopping_rounds": 10, "min_child_samples": 5,
                       "num_threads": 1}}
    info = stack_run(run, data_dir=data, config=config, progress=False, overwrite=True)["info"]
    assert info["config"]["graph_features"] and {"a_common", "a_margin_top_min"} <= set(info["features"])
