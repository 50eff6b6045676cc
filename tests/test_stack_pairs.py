"""Pair models as stacker features (`stack.pair_members`): the candidate rule, out-of-fold honesty,
and the bundle round trip (issue 28)."""
from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pandas as pd
import pytest

from prodmatch.errors import DataError
from prodmatch.predict import make_bundle, predict, read_bundle
from prodmatch.stack import pair_members
from prodmatch.stack.pair_members import PairMemberConfig, decision_pairs

from .conftest import matched_run


def test_decision_pairs_keeps_each_rows_top_candidates():
    # best of the two sims: (0,1) 0.8, (0,2) 0.1, (0,3) 0.9, (1,2) 0.6
    pairs = pd.DataFrame({"i": [0, 0, 0, 1], "j": [1, 2, 3, 2], "a_sim": [0.8, 0.1, 0.9, 0.5], "b_sim": [0.0, 0.0, 0.2, 0.6]})
    # each row's best: row 0 (0,3), row 1 (0,1), row 2 (1,2), row 3 (0,3); (0,2) is nobody's
    assert decision_pairs(pairs, ["a_sim", "b_sim"], 1).tolist() == [True, False, True, True]
    # row 2's second best is (0,2)
    assert decision_pairs(pairs, ["a_sim", "b_sim"], 2).tolist() == [True, True, True, True]
    with pytest.raises(DataError, match="has none"):
        decision_pairs(pairs, [], 1)


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    """A TF-IDF + phash run whose stacker has a tiny random cross-encoder as pair member."""
    from prodmatch.backbones import tiny_text_model
    from prodmatch.stack.run import stack_run

    root = tmp_path_factory.mktemp("stack_pairs")
    data, run = matched_run(root)
    bert = tiny_text_model(root / "bert")
    member = {"name": "cross", "kind": "cross", "top": 3,
              "options": {"model": str(bert), "max_length": 32, "pooling": "mean", "dropout": 0.0},
              "train": {"epochs": 1, "batch_size": 16, "lr_backbone": 2e-3, "lr_head": 5e-3}}
    config = {"k": 10, "pair_members": [member],
              "lgbm": {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5, "num_threads": 1}}
    calls = []
    real_fit = pair_members._fit

    def recording_fit(spec, frame, folder, progress):
        calls.append(set(zip(frame["src_item_id"], frame["tgt_item_id"])))
        return real_fit(spec, frame, folder, progress)

    pair_members._fit = recording_fit
    try:
        result = stack_run(run, data_dir=data, config=config, progress=False)
    finally:
        pair_members._fit = real_fit
    shutil.rmtree(bert)  # the bundle must carry the pair model's backbone
    return data, run, result, calls, root


def test_oof_pair_scores_never_come_from_a_model_that_saw_the_pairs_label(stacked):
    _, run, result, calls, _ = stacked
    pairs = pd.read_parquet(run / "stack" / "pairs.parquet")
    assert "pair_cross" in pairs.columns and result["info"]["features"].count("pair_cross") == 1
    scored = pairs["pair_cross"].notna().to_numpy()
    assert 0 < scored.sum() < len(pairs)  # only the decision pairs are scored
    assert np.array_equal(scored, decision_pairs(pairs, ["phash_sim", "tfidf_sim"], 3))
    folds = np.unique(pairs["fold"])
    assert len(calls) == len(folds) + 1  # one model per fold, then the final one on every selected pair
    for fold, seen in zip(folds, calls):
        at = pairs[scored & (pairs["fold"] == fold).to_numpy()]
        held_out = set(zip(at["i"].astype(str), at["j"].astype(str)))
        assert held_out and not held_out & seen  # the fold's model never trained on a pair it scores
    assert calls[-1] == set(zip(pairs.loc[scored, "i"].astype(str), pairs.loc[scored, "j"].astype(str)))
    facts = result["info"]["pair_members"]["cross"]
    assert facts["pairs_scored"] == int(scored.sum()) and facts["pairs"] == len(pairs)


def test_bundle_round_trip_reproduces_the_stacker_scores_offline(stacked, tmp_path, monkeypatch):
    """predict of a bundle with a pair member: offline, and on the train rows its features and
    probabilities equal the final models' on the same candidates."""
    import lightgbm as lgb

    from prodmatch.post.pool import Pool
    from prodmatch.stack.candidates import pair_features
    from prodmatch.stack.pair_members import score_bundled
    from prodmatch.store import load_runs

    data, run, _, _, root = stacked
    models = make_bundle(run, tmp_path / "models", use="stacker")
    bundle = read_bundle(models)
    member = bundle["stacker"]["pair_members"][0]
    assert member["name"] == "cross" and (models / member["folder"] / "model.safetensors").is_file()

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted during predict")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    out = tmp_path / "sub.csv"
    result = predict(data, models, out, progress=False)
    assert result["used"] == "stacker" and len(pd.read_csv(out)) == len(pd.read_csv(data / "test.csv"))

    # on the train rows' pool: the bundled member and booster give the run's stacker probabilities exactly
    rows, stored = load_runs(run)
    titles = pd.read_csv(data / "train.csv", dtype=str).set_index("posting_id").loc[rows["posting_id"], "title"]
    pool = Pool({m.name: (m.kind, m.oof) for m in stored}, titles=titles.to_numpy(object), k=10)
    names = bundle["stacker"]["models"]

    def stacker_prob(folder, member_folder):
        pairs = pair_features(pool, names)
        pairs["pair_cross"] = score_bundled({**member, "folder": member_folder}, folder, pairs, names, pool.titles)
        booster = lgb.Booster(model_file=str(folder / ("stacker/model.txt" if folder == models else "model.txt")))
        return pairs["pair_cross"].to_numpy(), booster.predict(pairs[booster.feature_name()].to_numpy(np.float32))

    bundled, run_own = stacker_prob(models, member["folder"]), stacker_prob(run / "stack", "pairs/cross")
    assert np.isfinite(bundled[0]).any()
    np.testing.assert_array_equal(bundled[0], run_own[0])
    np.testing.assert_array_equal(bundled[1], run_own[1])


def test_a_tampered_pair_member_is_refused_before_work(stacked, tmp_path):
    _, run, _, _, _ = stacked
    models = make_bundle(run, tmp_path / "models", use="stacker")
    weights = models / "stacker" / "pairs" / "cross" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(DataError, match="is not the pair model the stacker was fitted with"):
        read_bundle(models)


def test_pair_member_settings_are_checked_before_any_work(tmp_path):
    from prodmatch.config import load_config
    from prodmatch.stack.lgbm import StackerConfig

    with pytest.raises(DataError, match=r"pair_members\[0\].top: must be >= 1, got 0"):
        load_config({"pair_members": [{"name": "x", "top": 0}]}, StackerConfig)
    bad = load_config({"pair_members": [{"name": "x", "options": {"max_length": 4}}]}, StackerConfig)
    with pytest.raises(DataError, match="max_length=4 < 8"):
        bad.pair_members[0].check()
    assert json.dumps(load_config({}, StackerConfig).pair_members) == "[]"
