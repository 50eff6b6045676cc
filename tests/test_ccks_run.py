"""The CCKS stage (`prodmatch ccks`): synthetic `test` preset, tiny random BERT members, CPU, seconds."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.config import load_config
from prodmatch.ccks.data import read_ccks_pairs
from prodmatch.errors import DataError
from prodmatch.pairs.unsupervised import pvs_jaccard
from prodmatch.ccks.output import score_result_file
from prodmatch.ccks import CcksRunConfig, build_members, ccks_run
from prodmatch.ccks.data import holdout_split
from prodmatch.ccks.select import Fitted, Rule, choose, entry_rules, fit_entries, member_rule, selection_folds
from prodmatch.data.folds import pair_components
from prodmatch.stack.ensemble import ensemble_from_dict

from .conftest import preset_folder

UNSUPERVISED = {"holdout_items": 0.4, "members": [{"name": "tfidf", "kind": "tfidf_cosine"},
                                                  {"name": "pvs", "kind": "pvs_jaccard"}]}
UNSUPERVISED_MEMBERS = load_config(UNSUPERVISED, CcksRunConfig).members


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preset_folder(tmp_path_factory, "ccks")


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    return ccks_run(data, "ccks-test", out, progress=False)


def copy_data(data, folder):
    """A CCKS folder's jsonl files and image folders (the image members read them)."""
    shutil.copytree(data, folder, ignore=lambda _, names: [n for n in names if n.endswith(".parquet")])
    return folder


def test_run_writes_every_artifact(run, data):
    out = run["out"]
    for name in ("run.json", "scores.parquet", "ensembles.json", "result.jsonl", "compare.csv", "report.md"):
        assert (out / name).is_file(), name
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["name"] == "ccks-test" and record["code_version"]
    assert set(record["data"]) == {p.name for p in data.glob("*.jsonl")}
    scores = pd.read_parquet(out / "scores.parquet")
    members = [m.name for m in load_config("ccks-test", CcksRunConfig).members]
    assert set(members) <= set(scores.columns) and scores[members].notna().all().all()
    assert scores["split"].value_counts().to_dict() == {"valid": 80, "holdout": record["split"]["holdout_pairs"]}
    assert scores["item_label"].notna().all() and scores["unseen"].dtype == bool
    holdout = scores["split"] == "holdout"
    assert scores.loc[holdout, "cv_fold"].notna().all() and scores.loc[~holdout, "cv_fold"].isna().all()
    assert scores.loc[holdout, "cv_fold"].nunique() == record["cv"]["folds"] == 5
    assert scores.loc[scores["split"] == "valid", "unseen"].sum() == record["split"]["valid_unseen_pairs"] > 0
    ensembles = json.loads((out / "ensembles.json").read_text())
    assert len(ensembles["ensembles"]) == 8 and ensembles["chosen"] == run["chosen"]
    assert ensembles["cv"]["folds"] == 5 and ensembles["cv"]["scheme"] in ("group", "stratified")
    for entry in ensembles["ensembles"].values():
        assert ensemble_from_dict(entry["ensemble"]).names == tuple(members)
    for name in ("cross", "two_tower_cosine"):
        assert (out / "members" / name / "best" / "pair_model.json").is_file()
    table = pd.read_csv(out / "compare.csv")
    assert len(table) == len(members) + 8 and table["chosen"].sum() == 1
    entries = table["entry"].tolist()  # cv F1 reported for every entry, everywhere
    assert table["cv F1"].between(0, 1).all() and set(ensembles["cv_f1"]) == set(ensembles["held_out_f1"]) == set(entries)
    assert list(run["cv_f1"]) == list(run["held_out_f1"]) == entries
    assert table["cv F1"].tolist() == [round(run["cv_f1"][e], 4) for e in entries]
    first_best = int(np.argmax([run["cv_f1"][e] for e in entries]))  # best cv F1, earliest on ties
    assert entries[first_best] == run["chosen"] and table.loc[table["chosen"], "entry"].item() == run["chosen"]
    assert run["chosen_cv_f1"] == run["cv_f1"][run["chosen"]] == record["chosen_cv_f1"]
    assert run["chosen_held_out_f1"] == run["held_out_f1"][run["chosen"]]
    report = (out / "report.md").read_text()
    assert run["chosen"] in report and "cv F1" in report


def test_saved_member_reloads_with_its_scores(run, data, tmp_path):
    from prodmatch.pairs.pair_train import load_pair_model, predict_pairs
    from prodmatch.ccks.data import load_data

    config = load_config("ccks-test", CcksRunConfig)
    frames = load_data(data, config, tmp_path)
    model = load_pair_model(run["out"] / "members" / "two_tower_cosine" / "best")
    scores = pd.read_parquet(run["out"] / "scores.parquet")
    stored = scores.loc[scores["split"] == "holdout", "two_tower_cosine"].to_numpy()
    np.testing.assert_allclose(predict_pairs(model, frames.holdout), stored, rtol=1e-5, atol=1e-6)


def test_result_file_rescores_to_the_chosen_valid_f1(run, data):
    rescored = score_result_file(run["result"], data / "item_valid_pair_truth.jsonl")
    table = pd.read_csv(run["compare"])
    assert round(rescored.f1, 4) == table.loc[table["chosen"], "valid F1"].item()
    assert rescored.f1 == run["chosen_valid"]["f1"]
    assert run["valid_f1"][run["chosen"]] == round(rescored.f1, 4)


def test_ensembles_do_not_depend_on_valid_labels(run, data, tmp_path):
    folder = copy_data(data, tmp_path / "relabelled")
    truth = folder / "item_valid_pair_truth.jsonl"
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    truth.write_text("".join(json.dumps({**x, "item_label": str(1 - int(x["item_label"]))}) + "\n" for x in lines))
    other = ccks_run(folder, "ccks-test", tmp_path / "run", progress=False)
    assert (other["ensembles"]).read_bytes() == run["ensembles"].read_bytes()
    assert other["result"].read_bytes() == run["result"].read_bytes()
    assert other["chosen_valid"]["f1"] != run["chosen_valid"]["f1"]  # the labels did change


@pytest.mark.parametrize("share,seed", [(0.3, 0), (0.4, 1), (0.6, 2)])
def test_holdout_and_training_pairs_share_no_item(data, share, seed):
    pairs = read_ccks_pairs(data / "item_train_pair.jsonl")
    config = CcksRunConfig(holdout_items=share, seed=seed, members=load_config("ccks-test", CcksRunConfig).members)
    train, holdout = holdout_split(pairs, config)
    assert len(train) and len(holdout) and not items(train) & items(holdout)
    ids = pd.unique(pd.concat([pairs["src_item_id"], pairs["tgt_item_id"]]))  # bench/ccks_pairs.py's draw
    held = set(np.random.default_rng(seed).permutation(ids)[:int(round(share * len(ids)))].tolist())
    assert items(holdout) <= held and not items(train) & held
    across = pairs["src_item_id"].isin(held) != pairs["tgt_item_id"].isin(held)
    assert len(train) + len(holdout) + int(across.sum()) == len(pairs)  # every pair: training, held-out or across
    sub = holdout_split(pairs, CcksRunConfig(holdout_items=share, seed=seed, train_pairs=10, holdout_pairs=5,
                                             members=config.members))
    assert len(sub[0]) == 10 and len(sub[1]) == min(5, len(holdout)) and not items(sub[0]) & items(sub[1])


def items(pairs):
    return set(pairs["src_item_id"]) | set(pairs["tgt_item_id"])


def test_pvs_jaccard_equals_the_set_reference():
    rng = np.random.default_rng(0)
    entries = ["k:v", "k:w", "a:b", "x", "颜色:红", "k:v2", ""]

    def text():
        return ";".join(rng.choice(entries, size=rng.integers(0, 6)).tolist())

    a, b = [text() for _ in range(500)], [text() for _ in range(500)]
    sets_a = [set(filter(None, s.split(";"))) for s in a]
    sets_b = [set(filter(None, s.split(";"))) for s in b]
    want = np.array([len(x & y) / len(x | y) if x | y else 0.0 for x, y in zip(sets_a, sets_b)])
    got = pvs_jaccard(a, b)
    assert got.dtype == np.float64 and np.array_equal(got, want)
    assert pvs_jaccard([], []).shape == (0,) and pvs_jaccard([""], [""]).tolist() == [0.0]


def test_existing_out_folder_raises_unless_overwrite(run, data, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite"):
        ccks_run(data, UNSUPERVISED, run["out"], progress=False)
    out = tmp_path / "run"
    (out / "old").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        ccks_run(data, UNSUPERVISED, out, progress=False)
    ccks_run(data, UNSUPERVISED, out, overwrite=True, progress=False)
    assert not (out / "old").exists() and (out / "result.jsonl").is_file()


def test_unknown_member_kind_names_close_kinds(data, tmp_path):
    bad = {"members": [{"name": "tt", "kind": "two-tower"}]}
    with pytest.raises(DataError, match="unknown kind 'two-tower'; did you mean two_tower"):
        ccks_run(data, bad, tmp_path / "run", progress=False)
    with pytest.raises(DataError, match="did you mean 'max_length'"):
        load_config({"members": [{"name": "c", "kind": "cross", "options": {"max_lenght": 32}}]}, CcksRunConfig)
    with pytest.raises(DataError, match="not trained"):
        build_members(load_config({"members": [{"name": "p", "kind": "pvs_jaccard", "train": {"epochs": 2}}]},
                                  CcksRunConfig))
    assert not (tmp_path / "run").exists()


def test_bad_input_is_a_clear_data_error(data, tmp_path):
    with pytest.raises(DataError, match="no training pairs"):
        ccks_run(data, {**UNSUPERVISED, "holdout_items": 0.99}, tmp_path / "a", progress=False)
    folder = copy_data(data, tmp_path / "empty-valid")
    (folder / "item_valid_pair.jsonl").write_text("")
    (folder / "item_valid_pair_truth.jsonl").unlink()
    with pytest.raises(DataError):
        ccks_run(folder, UNSUPERVISED, tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_without_truth_writes_the_result_only(data, tmp_path):
    folder = copy_data(data, tmp_path / "no-truth")
    (folder / "item_valid_pair_truth.jsonl").unlink()
    summary = ccks_run(folder, UNSUPERVISED, tmp_path / "run", progress=False)
    assert summary["result"].is_file() and summary["compare"] is None and summary["chosen_valid"] is None
    assert not (tmp_path / "run" / "compare.csv").exists()
    assert pd.read_parquet(summary["scores"])["item_label"].isna().sum() == 80


def test_shipped_cpu_config_parses():
    config = load_config("ccks-cpu", CcksRunConfig)
    members = build_members(config)
    assert [m.kind for m in members] == ["cross", "two_tower", "textcnn", "image_tower", "multimodal",
                                         "multimodal_cross", "coca", "gcn", "pkgm", "tfidf_cosine", "pvs_jaccard"]
    assert members[0].options.pooling == "mean" and members[0].train_config.lr_backbone == 1e-4
    assert members[0].options.max_length == 128 and members[1].train_config.batch_size == 16
    assert members[3].options.image.backbone == "resnet10t"


def test_every_member_kind_is_in_a_test_config_and_the_gpu_config_parses():
    from prodmatch.ccks._registry import MEMBERS

    test_kinds = {m.kind for name in ("ccks-test", "em-test") for m in load_config(name, CcksRunConfig).members}
    assert test_kinds == set(MEMBERS)
    gpu = build_members(load_config("ccks-gpu", CcksRunConfig))  # local weight folders are only read at training
    assert {m.kind for m in gpu} >= {"cross", "image_tower", "multimodal", "multimodal_cross", "coca", "gcn", "pkgm"}


def test_loss_is_a_training_setting_and_is_checked_when_the_config_loads(caplog):
    members = [{"name": "t", "kind": "two_tower", "options": {"head": "similarity", "loss": "bce"},
                "train": {"epochs": 1}}]
    with caplog.at_level("WARNING"):
        member, = build_members(load_config({"members": members}, CcksRunConfig))
    assert member.train_config.loss == "bce" and "belong in `train:`" in caplog.text
    with pytest.raises(DataError, match="member 'c'.*cosine-embedding.*item vectors"):
        load_config({"members": [{"name": "c", "kind": "cross", "train": {"loss": "cosine-embedding"}}]}, CcksRunConfig)


def test_cli_runs_on_the_test_preset(data, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["ccks", "--data", str(data), "--config", "ccks-test", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "chosen entry (best cross-validated held-out F1" in printed and "valid F1" in printed
    assert (out / "result.jsonl").is_file()
    assert main(["ccks", "--data", str(data), "--config", "ccks-test", "--out", str(out), "--quiet"]) == 2
    assert "already holds a run" in capsys.readouterr().err


# ---------------------------------------------------------------- cross-validated selection (synthetic arrays)
def memorising_rule(column):
    """Overfits by construction: positive exactly for the ids it saw labelled 1 (in-sample F1 1, CV F1 0)."""
    def fit(y, scores, unseen):
        seen_positive = set(scores.loc[np.asarray(y) == 1, column].tolist())
        return Fitted(lambda s, u: s[column].isin(seen_positive).to_numpy(np.float64), 0.5)

    return Rule(f"memorise {column}", "ensemble", fit)


def test_cv_selection_prefers_the_robust_rule_over_an_exact_overfit():
    y = np.r_[np.ones(20, int), np.zeros(20, int)]
    robust = y.astype(float)
    robust[[0, 1]], robust[[20, 21]] = 0.0, 1.0  # two positives scored low, two negatives high
    hold = pd.DataFrame({"pair_id": np.arange(40.0), "robust": robust})
    unseen = np.zeros(40, bool)
    folds = selection_folds(y, np.arange(40), 5, seed=0)
    rules = [memorising_rule("pair_id"), member_rule("robust")]  # the overfit comes first: no tie-break help
    entries = fit_entries(rules, y, hold, unseen, hold, unseen, folds.fold)
    memorise, member = entries
    assert (memorise.held_out_f1, memorise.cv_f1) == (1.0, 0.0)
    assert member.held_out_f1 == member.cv_f1 == 0.9  # 18 of 20 positives, 18 of 20 predicted
    assert choose(entries) is member
    assert max(entries, key=lambda e: e.held_out_f1) is memorise  # the in-sample rule would pick the overfit


def test_cv_selection_passes_over_an_overfitting_ensemble():
    rng = np.random.default_rng(13)
    y = np.r_[np.ones(20, int), np.zeros(20, int)]
    hold = pd.DataFrame({"robust": y + rng.normal(0, 0.8, 40), **{f"noise{i}": rng.random(40) for i in range(4)}})
    unseen = np.zeros(40, bool)
    unseen[rng.choice(40, 10, replace=False)] = True
    folds = selection_folds(y, np.arange(40), 5, seed=0)
    entries = fit_entries(entry_rules(hold.columns, unseen=True), y, hold, unseen, hold, unseen, folds.fold)
    assert len(entries) == 5 + 8 and all(0 <= e.cv_f1 <= 1 for e in entries)
    overfit = max(entries, key=lambda e: e.held_out_f1)
    member = entries[0]
    assert overfit.name == "f1-vote ensemble, raw + unseen thresholds"  # best in-sample, with 10 fitted values
    assert overfit.held_out_f1 > member.held_out_f1 and overfit.cv_f1 < member.cv_f1 - 0.1
    assert choose(entries) is member
    again = fit_entries(entry_rules(hold.columns, unseen=True), y, hold, unseen, hold, unseen, folds.fold)
    assert [e.cv_f1 for e in again] == [e.cv_f1 for e in entries]  # deterministic


def test_selection_folds_keep_components_whole_or_fall_back_to_labels():
    y = np.tile([1, 0, 0, 1], 10)
    groups = np.repeat(np.arange(10), 4)  # 10 components of 4 pairs, both labels in each
    folds = selection_folds(y, groups, 5, seed=3)
    assert folds.scheme == "group" and folds.k == 5 and folds.components == 10
    assert pd.Series(folds.fold).groupby(groups).nunique().eq(1).all()  # no component split across folds
    assert all(y[folds.fold != f].any() and not y[folds.fold != f].all() for f in range(5))
    assert np.array_equal(selection_folds(y, groups, 5, seed=3).fold, folds.fold)
    few = selection_folds(y, np.repeat([0, 1], 20), 5, seed=3)  # 2 components < 5 folds: by label only
    assert few.scheme == "stratified" and few.k == 5 and few.components == 2
    assert pd.Series(y).groupby(few.fold).sum().eq(4).all()
    clamped = selection_folds(np.r_[1, 1, 1, np.zeros(10, int)], np.arange(13), 5, seed=0)
    assert clamped.k == 3 and clamped.requested == 5 and clamped.to_dict()["folds"] == 3
    with pytest.raises(DataError, match="at least 2 pairs of each label"):
        selection_folds(np.r_[1, np.zeros(10, int)], np.arange(11), 5, seed=0)
    with pytest.raises(DataError, match="select_folds=1"):
        CcksRunConfig(select_folds=1, members=UNSUPERVISED_MEMBERS)


def test_pair_components_follow_shared_items():
    src, tgt = ["a", "b", "d", "f", "e"], ["b", "c", "e", "f", "g"]
    comp = pair_components(src, tgt)
    assert comp[0] == comp[1] and comp[2] == comp[4] and len({comp[0], comp[2], comp[3]}) == 3


def test_leaderboard_lists_the_ccks_run(run):
    from prodmatch.leaderboard import collect

    out = Path(run["out"])
    board = collect(out.parent)
    row = board[(board["run"] == out.name) & (board["entry"] == "ccks")]
    assert len(row) == 1
    assert row["f1"].iloc[0] == round(run["chosen_valid"]["f1"], 4)
    assert run["chosen"] in row["what"].iloc[0]


def test_a_new_member_kind_is_one_class(data, tmp_path):
    """ccks/README.md's example: one registered class, named in a config, scores and is compared."""
    from prodmatch.ccks import MEMBERS, Member, register_member
    from prodmatch.ccks.members import _split_scores

    @register_member("title_len_ratio")
    class TitleLengthRatio(Member):
        def score(self, data, folder, progress):
            pairs = pd.concat([data.holdout, data.valid], ignore_index=True)
            a, b = pairs["title_a"].str.len(), pairs["title_b"].str.len()
            return _split_scores((np.minimum(a, b) / np.maximum(a, b).clip(1)).to_numpy(), len(data.holdout))

    try:
        config = {**UNSUPERVISED, "members": [*UNSUPERVISED["members"], {"name": "ratio", "kind": "title_len_ratio"}]}
        summary = ccks_run(data, config, tmp_path / "run", progress=False)
    finally:
        del MEMBERS["title_len_ratio"]
    assert "member ratio" in summary["cv_f1"] and 0 <= summary["valid_f1"]["member ratio"] <= 1
    scores = pd.read_parquet(summary["scores"])
    assert scores["ratio"].between(0, 1).all()


def test_reuse_takes_unchanged_members_from_an_earlier_run(run, data, tmp_path):
    """--reuse: unchanged members keep the earlier scores (not retrained), a changed one is scored
    again, a dropped one is gone."""
    from dataclasses import asdict, replace

    config = load_config("ccks-test", CcksRunConfig)
    members = [m for m in config.members if m.kind != "pvs_jaccard"]
    i = next(i for i, m in enumerate(members) if m.kind == "tfidf_cosine")
    members[i] = replace(members[i], options={"analyzer": "word"})
    summary = ccks_run(data, asdict(replace(config, members=tuple(members))), tmp_path / "again", progress=False,
                       reuse=run["out"])
    record = json.loads((tmp_path / "again" / "run.json").read_text())
    reused = {name for name, info in record["members"].items() if "reused_from" in info}
    assert reused == {m.name for m in members} - {members[i].name}
    earlier, now = pd.read_parquet(run["scores"]), pd.read_parquet(summary["scores"])
    for name in reused:
        np.testing.assert_array_equal(now[name].to_numpy(), earlier[name].to_numpy())
    assert not np.array_equal(now[members[i].name].to_numpy(), earlier[members[i].name].to_numpy())
    assert "pvs_jaccard" not in now.columns
    # reusing the reusing run: each member still names the run that trained it
    ccks_run(data, asdict(replace(config, members=tuple(members))), tmp_path / "third", progress=False,
             reuse=tmp_path / "again")
    third = json.loads((tmp_path / "third" / "run.json").read_text())["members"]
    assert {third[name]["reused_from"] for name in reused} == {str(run["out"])}
    assert third[members[i].name]["reused_from"] == str(tmp_path / "again")


def test_reuse_refuses_a_run_on_other_data_or_split(run, data, tmp_path):
    from dataclasses import asdict

    folder = copy_data(data, tmp_path / "other")
    path = folder / "item_valid_info.jsonl"
    path.write_text(path.read_text().replace('"title": "', '"title": "edited ', 1))
    with pytest.raises(DataError, match="other data files"):
        ccks_run(folder, "ccks-test", tmp_path / "a", progress=False, reuse=run["out"])
    config = asdict(load_config("ccks-test", CcksRunConfig))
    config["seed"] = 1
    with pytest.raises(DataError, match=r"split settings differ \(seed\)"):
        ccks_run(data, config, tmp_path / "b", progress=False, reuse=run["out"])
    with pytest.raises(DataError, match="not a finished CCKS run"):
        ccks_run(data, "ccks-test", tmp_path / "c", progress=False, reuse=tmp_path)


def test_missing_images_follow_the_image_policy(data, tmp_path):
    folder = copy_data(data, tmp_path / "broken")
    victim = sorted((folder / "item_train_images").iterdir())[0]
    victim.unlink()
    config = {"holdout_items": 0.4, "members": [
        {"name": "image", "kind": "image_tower", "options": {"image": {"backbone": "test_resnet", "image_size": 32}},
         "train": {"epochs": 1, "batch_size": 16, "max_steps": 1}}]}
    with pytest.raises(DataError, match=f"1 missing .*{victim.name}"):
        ccks_run(folder, config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    summary = ccks_run(folder, {**config, "image_policy": "placeholder"}, tmp_path / "run", progress=False)
    assert summary["chosen"]
