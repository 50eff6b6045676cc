"""The matcher: threshold curves (exact against `select`), nested tuning, ablation, `prodmatch match`."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prodmatch.cli import main
from prodmatch.errors import DataError
from prodmatch.metrics import per_row_scores
from prodmatch.post.run import match_parts, match_run
from prodmatch.post import Matches, select
from prodmatch.post.matcher import (
    MatcherConfig,
    Pool,
    Stage,
    ablation,
    fit,
    params_from_dict,
    params_to_dict,
    stages,
)
from prodmatch.post.tune import best_thresholds, curve, threshold_grid
from prodmatch.store import rows_table, save_embeddings

# ---------------------------------------------------------------- curves


def hand_candidates():
    # groups [0, 0, 1, 1]; row 2 wrongly near row 0, rows 2 and 3 weakly linked
    pairs = [(0, 1, 0.8), (1, 0, 0.8), (0, 2, 0.6), (2, 0, 0.6), (2, 3, 0.3), (3, 2, 0.3)]
    r, c, s = zip(*pairs)
    return Matches.from_pairs(r, c, s, 4), np.array([0, 0, 1, 1])


def test_curve_hand_computed():
    cands, groups = hand_candidates()
    cv = curve(cands, groups, [0.5, 0.7])
    # t=0.5: row0 {0,1,2} F1 4/5, row1 1, row2 {2,0} 1/2, row3 {3} 2/3
    assert cv.sums(0)["f1"] == pytest.approx(0.8 + 1 + 0.5 + 2 / 3)
    # t=0.7: rows 0, 1 perfect; rows 2, 3 alone: 2/3 each
    assert cv.sums(1)["f1"] == pytest.approx(1 + 1 + 2 / 3 + 2 / 3)
    # Min2 at 0.5 under t=0.7: row 2 takes row 0 (wrong, F1 1/2); row 3's best (0.3) stays out
    assert cv.sums(1, 0)["f1"] == pytest.approx(1 + 1 + 0.5 + 2 / 3)
    assert cv.sums(1, 0)["precision"] == pytest.approx(1 + 1 + 0.5 + 1)
    assert best_thresholds([cv], min2=False) == (1, None)
    assert best_thresholds([cv], min2=True) == (1, 1)  # Min2 only hurts here: t_min2 = t (off)


@st.composite
def scored_candidates(draw):
    n = draw(st.integers(1, 12))
    m = draw(st.integers(0, 30))
    rows = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    cols = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    scores = draw(st.lists(st.sampled_from([0.05, 0.1, 0.3, 0.31, 0.5, 0.75, 0.9, 0.99, 0.995, 1.0]), min_size=m, max_size=m))
    groups = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    return Matches.from_pairs(rows, cols, scores, n), np.array(groups)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scored_candidates(), st.data())
def test_curve_equals_select_then_score(case, data):
    """Every grid point of the curve is exactly the row-F1/P/R of `select` with those thresholds."""
    cands, groups = case
    grid = threshold_grid(0.1, 0.2)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=cands.n, max_size=cands.n)))
    cv = curve(cands, groups, grid, mask)
    ti = data.draw(st.integers(0, len(grid) - 1))
    t2i = data.draw(st.one_of(st.none(), st.integers(0, ti)))
    chosen = select(cands, grid[ti], None if t2i is None else grid[t2i])
    f1, p, r = per_row_scores(chosen.rows, chosen.cols, groups)
    got = cv.sums(ti, t2i)
    assert got["f1"] == pytest.approx(f1[mask].sum(), abs=1e-9)
    assert got["precision"] == pytest.approx(p[mask].sum(), abs=1e-9)
    assert got["recall"] == pytest.approx(r[mask].sum(), abs=1e-9)


def test_grid_is_fine_near_one():
    grid = threshold_grid()
    assert grid[0] == 0.05 and grid[-1] == 1.0
    assert 0.995 in grid and 0.5 in grid and np.all(np.diff(grid) > 0)


# ---------------------------------------------------------------- synthetic clustered data

def clustered(n_groups=60, seed=0, noise=(0.6, 0.9)):
    """Two noisy embedding models of one group structure, folds by group, titles with units."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 6, n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    centers = rng.normal(size=(n_groups, 16))
    models = {}
    for name, scale in zip(("a", "b"), noise):
        x = centers[groups] + rng.normal(scale=scale, size=(len(groups), 16))
        models[name] = x / np.linalg.norm(x, axis=1, keepdims=True)
    folds = groups % 4
    titles = np.array([f"produk {g} {100 * (1 + g % 3)}ml" for g in groups], dtype=object)
    return models, groups, folds, titles


def fold_parts(models, groups, folds, titles, k=10):
    return [
        (Pool({m: ("dense", x[folds == f]) for m, x in models.items()}, titles=titles[folds == f],
              groups=groups[folds == f], k=k), None)
        for f in range(folds.max() + 1)
    ]


def test_ablation_rows_and_nested_thresholds():
    models, groups, folds, titles = clustered()
    parts = fold_parts(models, groups, folds, titles)
    result = ablation(parts, MatcherConfig(k=10), {"a": "dense", "b": "dense"}, ["a", "b"], progress=False)
    table = result.table
    assert list(table["stage"]) == ["threshold", "+min2", "+nb", "threshold", "+min2", "+nb",
                                    "+union", "+units", "+chisel"]
    assert table["f1"].between(0, 1).all()
    # the less noisy model alone beats the other; the first chain row's gain is against the best single row
    single = table[table["stage"] == "threshold"].set_index("models")["f1"]
    assert single["a"] > single["b"]
    assert table.loc[table["stage"] == "+union", "gain"].item() == pytest.approx(
        table.loc[6, "f1"] - table.loc[[2, 5], "f1"].max(), abs=2e-4)
    chain = table[table["stage"].isin(["+union", "+units", "+chisel"])]
    best = chain.loc[chain["f1"].idxmax()]
    assert result.params.stage.name == best["stage"] and result.oof_f1 == best["f1"]  # predict runs the best row


def test_held_out_fold_labels_never_change_its_thresholds():
    """Relabelling fold 0's rows changes nothing in the thresholds fold 0 is scored with."""
    models, groups, folds, titles = clustered()
    config = MatcherConfig(k=10, chisel=False)
    kinds = {"a": "dense", "b": "dense"}
    base = ablation(fold_parts(models, groups, folds, titles), config, kinds, ["a", "b"], progress=False)
    shuffled = groups.copy()
    in0 = folds == 0
    shuffled[in0] = np.random.default_rng(1).permutation(shuffled[in0] * 0 + np.arange(in0.sum()))
    other = ablation(fold_parts(models, shuffled, folds, titles), config, kinds, ["a", "b"], progress=False)
    for key in base.per_fold:
        assert base.per_fold[key]["t"][0] == other.per_fold[key]["t"][0], key
        assert base.per_fold[key]["t_min2"][0] == other.per_fold[key]["t_min2"][0], key
    assert other.table["f1"].iloc[0] < base.table["f1"].iloc[0]  # fold 0 now scores badly


def test_fitted_params_match_a_new_pool_and_round_trip():
    models, groups, folds, titles = clustered()
    parts = fold_parts(models, groups, folds, titles)
    kinds = {"a": "dense", "b": "dense"}
    params = fit(parts, MatcherConfig(k=10), kinds, ["a", "b"])
    again = params_from_dict(json.loads(json.dumps(params_to_dict(params))))
    assert again == params
    test_models, test_groups, _, test_titles = clustered(n_groups=30, seed=5)
    pool = Pool({m: ("dense", x) for m, x in test_models.items()}, titles=test_titles, k=10)
    out = pool.matches(params)
    assert out.pair_set() >= {(i, i) for i in range(pool.n)}
    assert per_row_scores(out.rows, out.cols, test_groups)[0].mean() > 0.5


def test_pool_segments_score_fold_rows_inside_one_search():
    models, groups, folds, titles = clustered()
    pool = Pool({m: ("dense", x) for m, x in models.items()}, titles=titles, groups=groups, segments=folds, k=10)
    stage = Stage("threshold", ("a",))
    whole = pool.curve(stage, None, threshold_grid())
    by_fold = [pool.curve(stage, None, threshold_grid(), f) for f in range(4)]
    assert sum(c.n_rows for c in by_fold) == whole.n_rows == len(groups)
    np.testing.assert_allclose(sum(c.base["f1"] for c in by_fold), whole.base["f1"])


def test_stage_list_follows_the_config():
    kinds = {"t": "sparse", "p": "phash"}
    names = [s.name for s in stages(MatcherConfig(), ["t", "p"], kinds)]
    assert names == ["threshold", "+min2", "+nb", "threshold", "+min2", "+union", "+units", "+chisel"]  # no NB on phash
    names = [s.name for s in stages(MatcherConfig(min2=False, union=False, units=False), ["t", "p"], kinds)]
    assert names == ["threshold", "+nb", "threshold", "+chisel"]
    # the chain blends on the union graph by default (issue 12's winner); single-model rows on their own
    rows = stages(MatcherConfig(), ["t", "p"], kinds)
    assert rows[-1].nb_graph == "union" and {r.nb_graph for r in rows if len(r.models) == 1} == {"own"}
    assert stages(MatcherConfig(nb_graph="own"), ["t", "p"], kinds)[-1].nb_graph == "own"


def test_ablation_needs_two_folds_and_labels():
    models, groups, folds, titles = clustered()
    parts = fold_parts(models, groups, folds, titles)
    with pytest.raises(DataError, match="two folds"):
        ablation(parts[:1], MatcherConfig(k=10), {"a": "dense", "b": "dense"}, ["a", "b"], progress=False)
    unlabelled = Pool({"a": ("dense", models["a"])}, k=5)
    with pytest.raises(DataError, match="label groups"):
        fit([(unlabelled, None)], MatcherConfig(k=5), {"a": "dense"}, ["a"])


# ---------------------------------------------------------------- runs on disk and the CLI

@pytest.fixture
def run_folder(tmp_path):
    models, groups, folds, titles = clustered()
    frame = pd.DataFrame({"posting_id": [f"p{i}" for i in range(len(groups))], "label_group": groups})
    rows = rows_table(frame, folds)
    run = tmp_path / "run"
    for name, x in models.items():
        save_embeddings(run, name, "dense", x, rows=rows)
    codes = np.random.default_rng(0).integers(0, 2**63, len(groups), dtype=np.uint64)
    save_embeddings(run, "phash", "phash", codes, rows=rows, meta={"per_fold_models": False})
    data = tmp_path / "data"
    data.mkdir()
    frame.assign(image="x.jpg", image_phash=[f"{int(c):016x}" for c in codes], title=titles).to_csv(
        data / "train.csv", index=False)
    return run, data


def test_match_run_writes_ablation_and_refuses_to_overwrite(run_folder):
    run, data = run_folder
    result = match_run(run, data_dir=data, config={"k": 10}, progress=False)
    table = pd.read_csv(run / "ablation.csv")
    assert list(table["stage"])[-3:] == ["+union", "+units", "+chisel"]
    info = json.loads((run / "matcher.json").read_text())
    assert info["params"]["stage"]["models"][0] == "a"  # greedy members: the clean model first
    assert "phash" not in info["params"]["stage"]["models"]  # random codes never help
    assert len(info["data"]["train.csv"]) == 64 and info["rows"] == len(table) * 0 + info["rows"]
    assert result["params"].t == info["params"]["t"]
    with pytest.raises(FileExistsError):
        match_run(run, data_dir=data, config={"k": 10}, progress=False)
    match_run(run, data_dir=data, config={"k": 10, "models": ["a"], "units": False}, overwrite=True, progress=False)
    assert list(pd.read_csv(run / "ablation.csv")["models"].unique()) == ["a"]


def test_union_all_keeps_every_model_and_greedy_drops_noise(run_folder):
    run, data = run_folder
    match_run(run, data_dir=data, config={"k": 10, "union_select": "all"}, progress=False)
    info = json.loads((run / "matcher.json").read_text())
    assert info["params"]["stage"]["models"] == ["a", "b", "phash"]
    greedy = match_run(run, data_dir=data, config={"k": 10}, overwrite=True, progress=False)["table"]
    union_row = greedy[greedy["stage"] == "+union"].iloc[0]
    assert union_row["selected"].startswith("a") and "/4)" in union_row["selected"]


def test_match_run_bad_input(run_folder):
    run, data = run_folder
    with pytest.raises(DataError, match="needs titles"):
        match_run(run, config={"k": 10}, progress=False)
    with pytest.raises(DataError, match="not found"):
        match_run(run, data_dir=data, config={"models": ["nope"]}, progress=False)
    with pytest.raises(DataError, match="unknown key"):
        match_run(run, data_dir=data, config={"kk": 3}, progress=False)


def test_cv_pool_all_refuses_per_fold_models(run_folder, tmp_path):
    from prodmatch.store import load_runs

    run, _ = run_folder
    rows, models = load_runs(run)
    parts = match_parts(rows, models, k=10, cv_pool="all")
    assert len(parts) == 4 and parts[0][0] is parts[1][0]
    models[0].meta["per_fold_models"] = True
    with pytest.raises(DataError, match="trained per fold"):
        match_parts(rows, models, k=10, cv_pool="all")


def test_match_cli(run_folder, capsys):
    run, data = run_folder
    assert main(["match", "--run", str(run), "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "+chisel" in out and "ablation.csv" in out
    assert main(["match", "--run", str(run), "--data", str(data)]) == 2
    assert "exists" in capsys.readouterr().err


def test_match_cli_on_a_local_dask_cluster_equals_one_machine(run_folder, capsys):
    """`prodmatch --dask local:2 match --backend dask` shards the exact search over 2 worker processes
    and writes the same ablation as faiss on one machine; bad cluster / backend flags exit 2."""
    pytest.importorskip("distributed")
    run, data = run_folder
    base = ["match", "--run", str(run), "--data", str(data), "--overwrite"]
    assert main(base + ["--backend", "faiss"]) == 0
    local = pd.read_csv(run / "ablation.csv")
    assert main(["--dask", "local:2"] + base + ["--backend", "dask"]) == 0
    on_cluster = pd.read_csv(run / "ablation.csv")
    pd.testing.assert_frame_equal(on_cluster.drop(columns="seconds"), local.drop(columns="seconds"))
    assert json.loads((run / "matcher.json").read_text())["config"]["backend"] == "dask"
    capsys.readouterr()
    assert main(base + ["--backend", "dask"]) == 2
    assert "runs on a Dask cluster: add --dask local" in capsys.readouterr().err
    assert main(["--dask", "local:two"] + base) == 2
    assert "local:N" in capsys.readouterr().err
    assert main(base + ["--backend", "fais"]) == 2
    err = capsys.readouterr().err
    assert "--backend fais (or auto): unknown KNN backend 'fais'; did you mean faiss" in err


# ---------------------------------------------------------------- issue 12's variants


def test_union_graph_nb_of_one_model_is_its_own_nb():
    """The union graph of a single model is that model's thresholded graph: both NB modes agree."""
    from prodmatch.post.matcher import UNION_GRAPH

    models, groups, _, titles = clustered()
    pool = Pool({"a": ("dense", models["a"])}, titles=titles, groups=groups, k=10)
    own = pool.candidates(Stage("+nb", ("a",), ("nb",)), {"a": 0.6})
    union = pool.candidates(Stage("+nb", ("a",), ("nb",), nb_graph="union"), {UNION_GRAPH: 0.6})
    assert own.pair_set() == union.pair_set()
    np.testing.assert_allclose(own.scores, union.scores, rtol=1e-6)


def test_union_graph_nb_blends_every_model_on_the_members_union():
    from prodmatch.post.blend import blend
    from prodmatch.post.matcher import UNION_GRAPH, search
    from prodmatch.post.union import similarity_union

    models, groups, _, titles = clustered()
    pool = Pool({m: ("dense", x) for m, x in models.items()}, titles=titles, groups=groups, k=10)
    got = pool.candidates(Stage("+union", ("a", "b"), ("nb", "union"), nb_graph="union"), {UNION_GRAPH: 0.5})
    graph = select(similarity_union([search("dense", models[m], 10) for m in ("a", "b")])[0], 0.5)
    want, _ = similarity_union([search("dense", blend(models[m], graph), 10) for m in ("a", "b")])
    assert got.pair_set() == want.pair_set()
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)
    with pytest.raises(DataError, match="union graph"):
        pool.candidates(Stage("+union", ("a", "b"), ("nb", "union"), nb_graph="union"), {"a": 0.5, "b": 0.5})


def test_union_graph_nb_fits_round_trips_and_applies_to_a_new_pool():
    from prodmatch.post.matcher import UNION_GRAPH

    models, groups, folds, titles = clustered()
    parts = fold_parts(models, groups, folds, titles)
    config = MatcherConfig(k=10, nb_graph="union", chisel=False, units=False)
    names = [s.name for s in stages(config, ["a", "b"], {"a": "dense", "b": "dense"})]
    assert names[-1] == "+union"
    params = fit(parts, config, {"a": "dense", "b": "dense"}, ["a", "b"])
    assert params.stage.nb_graph == "union" and UNION_GRAPH in params.nb_thresholds
    assert params_from_dict(json.loads(json.dumps(params_to_dict(params)))) == params
    test_models, test_groups, _, test_titles = clustered(n_groups=30, seed=5)
    out = Pool({m: ("dense", x) for m, x in test_models.items()}, titles=test_titles, k=10).matches(params)
    assert per_row_scores(out.rows, out.cols, test_groups)[0].mean() > 0.5


def test_chisel_as_threshold_leaves_the_sizing_to_chisel():
    from prodmatch.post.chisel import allowed_counts

    models, groups, folds, titles = clustered()
    parts = fold_parts(models, groups, folds, titles)
    kinds = {"a": "dense", "b": "dense"}
    config = MatcherConfig(k=10, chisel_as_threshold=True)
    params = fit(parts, config, kinds, ["a", "b"])
    assert params.stage.has("chisel") and params.t == config.grid[0] and params.t_min2 is None
    pool = parts[0][0]
    out = pool.matches(params)
    allow = allowed_counts(params.target_sizes, pool.n)
    sizes = out.sizes()
    assert all((sizes >= p).sum() <= allow[p] for p in range(2, len(allow)))
    assert (sizes >= len(allow)).sum() == 0
    result = ablation(parts, config, kinds, ["a", "b"], progress=False)
    assert result.table["stage"].iloc[-1] == "+chisel" and 0 < result.table["f1"].iloc[-1] <= 1


def test_union_graph_is_built_once_for_all_members(monkeypatch):
    """Was: every member rebuilt the same a+b-ab graph (one similarity_union per member)."""
    import prodmatch.post.pool as pool_module
    from prodmatch.post.matcher import UNION_GRAPH

    calls = []
    real = pool_module.similarity_union
    monkeypatch.setattr(pool_module, "similarity_union", lambda models: calls.append(len(models)) or real(models))
    models, groups, _, titles = clustered()
    pool = Pool({m: ("dense", x) for m, x in models.items()}, titles=titles, groups=groups, k=10)
    pool.candidates(Stage("+union", ("a", "b"), ("nb", "union"), nb_graph="union"), {UNION_GRAPH: 0.5})
    assert calls == [2, 2]  # the graph once, then the union of the two blended models
