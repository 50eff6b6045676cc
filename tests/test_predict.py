"""Offline inference: bundle a training run, predict test.csv, bad models folders fail early."""
from __future__ import annotations

import importlib.util
import json
import shutil

import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.embedders.run import embed_unsupervised
from prodmatch.errors import DataError
from prodmatch.metrics import read_submission, score_submission
from prodmatch.metrics import read_truth
from prodmatch.post.run import match_run
from prodmatch.stack.run import stack_run
from prodmatch.predict import make_bundle, predict, read_bundle

from .conftest import matched_run

FAST_STACK = {"k": 10, "lgbm": {"num_leaves": 7, "n_estimators": 40, "early_stopping_rounds": 10,
                                "min_child_samples": 5, "num_threads": 1}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Synthetic test preset -> TF-IDF + phash run -> matcher -> (stacker) -> two models folders."""
    root = tmp_path_factory.mktemp("predict")
    data, run = matched_run(root, methods=("tfidf", "tfidf-char", "phash"))
    matcher_only = make_bundle(run, root / "models-matcher")
    stack_run(run, data_dir=data, config=FAST_STACK, progress=False)
    stacked = make_bundle(run, root / "models-stacker", use="stacker")
    return data, run, matcher_only, stacked


@pytest.mark.parametrize("which", ["matcher", "stacker"])
def test_predict_writes_a_complete_submission(trained, tmp_path, which):
    data, _, matcher_only, stacked = trained
    models = matcher_only if which == "matcher" else stacked
    out = tmp_path / "submission.csv"
    result = predict(data, models, out, progress=False)
    assert result["used"] == which
    sub = read_submission(out)
    test = pd.read_csv(data / "test.csv")
    assert sub["posting_id"].tolist() == test["posting_id"].tolist()
    assert all(pid in m.split() for pid, m in zip(sub["posting_id"], sub["matches"]))
    scores = score_submission(read_truth(data / "test_truth.csv"), sub)
    assert scores.f1 > 0.6  # held-out groups; the TF-IDF baseline scores ~0.7 on this preset
    assert not list(tmp_path.glob(".*.tmp"))
    assert "embed tfidf" in result["timing"].seconds and "total" in result["timing"].summary()


def test_predict_on_three_rows(trained, tmp_path):
    """Kaggle's visible test.csv has 3 rows: K is clipped, nothing breaks."""
    data, _, matcher_only, stacked = trained
    small = tmp_path / "data"
    small.mkdir()
    pd.read_csv(data / "test.csv").head(3).to_csv(small / "test.csv", index=False)
    for models in (matcher_only, stacked):
        predict(small, models, tmp_path / "sub.csv", progress=False, overwrite=True)
        assert len(read_submission(tmp_path / "sub.csv")) == 3


def test_bundle_auto_picks_the_better_oof_f1(trained, tmp_path):
    _, run, _, _ = trained
    matcher_f1 = json.loads((run / "matcher.json").read_text())["oof_f1"]
    stacker_f1 = json.loads((run / "stack" / "stack.json").read_text())["oof"]["f1"]
    auto = read_bundle(make_bundle(run, tmp_path / "auto"))
    assert (auto["stacker"] is not None) == (stacker_f1 > matcher_f1)
    assert read_bundle(make_bundle(run, tmp_path / "m", use="matcher"))["stacker"] is None
    with pytest.raises(DataError, match="use must be"):
        make_bundle(run, tmp_path / "x", use="best")


def test_bundle_records_what_predict_needs(trained):
    _, _, matcher_only, stacked = trained
    info = read_bundle(stacked)
    assert set(info["models"]) == {"tfidf", "tfidf-char", "phash"}
    assert info["stacker"]["features"] and (stacked / "stacker" / "model.txt").is_file()
    assert read_bundle(matcher_only)["stacker"] is None


def test_bundle_needs_a_matched_run_and_refuses_to_overwrite(trained, tmp_path):
    data, run, matcher_only, _ = trained
    bare = tmp_path / "bare"
    embed_unsupervised(data, "tfidf", bare)
    with pytest.raises(DataError, match="no matcher.json"):
        make_bundle(bare, tmp_path / "m")
    with pytest.raises(FileExistsError):
        make_bundle(run, matcher_only)


def test_broken_models_folder_fails_before_work(trained, tmp_path):
    data, _, _, stacked = trained
    broken = tmp_path / "broken"
    shutil.copytree(stacked, broken)
    (broken / "stacker" / "model.txt").unlink()
    with pytest.raises(DataError, match="model.txt missing"):
        predict(data, broken, tmp_path / "s.csv", progress=False)
    assert not (tmp_path / "s.csv").exists()
    (broken / "bundle.json").unlink()
    with pytest.raises(DataError, match="no bundle.json"):
        predict(data, broken, tmp_path / "s.csv", progress=False)


def test_bundle_with_unknown_source_is_refused(trained, tmp_path):
    _, _, matcher_only, _ = trained
    bad = tmp_path / "bad"
    shutil.copytree(matcher_only, bad)
    info = json.loads((bad / "bundle.json").read_text())
    info["models"]["tfidf"]["source"] = "word2vec"
    (bad / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match="unknown source"):
        read_bundle(bad)


def test_predict_cli(trained, tmp_path, capsys):
    data, _, matcher_only, _ = trained
    out = tmp_path / "sub.csv"
    assert main(["predict", "--data", str(data), "--models", str(matcher_only), "--out", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "timing:" in text and out.is_file()
    assert main(["predict", "--data", str(data), "--models", str(tmp_path / "none"), "--out", str(out)]) == 2
    torch_out = tmp_path / "sub-torch.csv"  # --backend reaches the search: torch's exact lists, the same sets
    assert main(["predict", "--data", str(data), "--models", str(matcher_only), "--out", str(torch_out), "--quiet",
                 "--backend", "torch"]) == 0
    assert torch_out.read_text() == out.read_text()
    assert main(["predict", "--data", str(data), "--models", str(matcher_only), "--out", str(tmp_path / "x.csv"),
                 "--backend", "fais"]) == 2
    assert "(or auto): unknown KNN backend" in capsys.readouterr().err and not (tmp_path / "x.csv").exists()
    if importlib.util.find_spec("distributed"):  # the dask backends reach the search: no client, a clear error
        assert main(["predict", "--data", str(data), "--models", str(matcher_only), "--out", str(tmp_path / "x.csv"),
                     "--backend", "dask"]) == 2
        assert "runs on a Dask cluster: add --dask local" in capsys.readouterr().err


@pytest.fixture(scope="module")
def encoder_bundle(tmp_path_factory):
    """A run with a tiny BERT text encoder and a test_nfnet image encoder (2 folds, a few steps each)."""
    from prodmatch.encoders.run import load_experiment, train_oof
    from prodmatch.backbones import tiny_text_model

    root = tmp_path_factory.mktemp("encoders")
    data, run = root / "data", root / "run"
    from prodmatch.data.synth import generate

    generate("shopee", data, seed=2, preset="test")
    fast = {"epochs": 2, "max_steps_per_epoch": 2, "batch_size": 8}
    bert = tiny_text_model(root / "bert")
    text = load_experiment("tiny-text", n_folds=2, encoder={"model": str(bert), "max_length": 16}, train=fast)
    image = load_experiment("tiny-image", n_folds=2, encoder={"image_size": 32}, train={**fast, "freeze_backbone": False})
    for config in (text, image):
        train_oof(data, config, out=run, progress=False)
    embed_unsupervised(data, "tfidf", run, n_folds=2)
    match_run(run, data_dir=data, config={"k": 10, "union_select": "all"}, progress=False)
    shutil.rmtree(bert)  # the bundle must carry everything the text encoder needs
    return data, make_bundle(run, root / "models")


def test_predict_with_encoders_never_touches_the_network(encoder_bundle, tmp_path, monkeypatch):
    import socket

    data, models = encoder_bundle
    info = read_bundle(models)
    assert {s["source"] for s in info["models"].values()} == {"encoder", "tfidf"}

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted during predict")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    predict(data, models, tmp_path / "sub.csv", progress=False)
    assert len(read_submission(tmp_path / "sub.csv")) == len(pd.read_csv(data / "test.csv"))


def test_predict_survives_missing_and_corrupt_test_images(encoder_bundle, tmp_path, caplog):
    data, models = encoder_bundle
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    images = sorted((broken / "test_images").iterdir())
    images[0].unlink()
    images[1].write_bytes(b"not a jpeg")
    predict(broken, models, tmp_path / "sub.csv", progress=False)
    assert len(read_submission(tmp_path / "sub.csv")) == len(pd.read_csv(broken / "test.csv"))
    assert "placeholder" in caplog.text.lower()


def test_fold_encoders_of_another_dim_are_refused_before_work(encoder_bundle, tmp_path):
    _, models = encoder_bundle
    bad = tmp_path / "models"
    shutil.copytree(models, bad)
    enc = json.loads((bad / "encoders" / "tiny-text" / "1" / "encoder.json").read_text())
    enc["config"]["dim"] = 32
    (bad / "encoders" / "tiny-text" / "1" / "encoder.json").write_text(json.dumps(enc))
    with pytest.raises(DataError, match="disagree on kind/dim"):
        read_bundle(bad)


def test_timer_announces_each_stage_with_expected_and_elapsed_time(monkeypatch):
    from prodmatch import predict as predict_module
    from prodmatch.predict import Timer

    clock = iter([0.0, 70.0, 70.0, 75.0])  # stage a takes 70 s, stage b 5 s
    monkeypatch.setattr(predict_module.time, "perf_counter", lambda: next(clock))
    lines = []
    timer = Timer(expected={"a": 60, "b": 20}, report=lines.append)
    with timer.stage("a"):
        pass
    with timer.stage("b"):
        pass
    assert lines == ["[1/2] a: expected 1:00; elapsed 0 s, expected total 1:20",
                     "[2/2] b: expected 20 s; elapsed 1:10, expected total 1:30"]
    assert timer.seconds == {"a": 70.0, "b": 5.0}


def test_demo_expects_the_last_finished_demo_timing(tmp_path):
    from prodmatch.io import write_json
    from prodmatch.pipeline import DEMO_SECONDS, expected_demo_seconds

    assert expected_demo_seconds("test", tmp_path) == DEMO_SECONDS["test"]
    write_json(tmp_path / "demo-test-20260101-000000" / "demo.json", {"timing": {"match": 99.0}})
    write_json(tmp_path / "demo-test-20250101-000000" / "demo.json", {"timing": {"match": 1.0}})
    assert expected_demo_seconds("test", tmp_path)["match"] == 99.0


def test_matcher_bundle_of_a_run_without_a_stacker(tmp_path, caplog):
    """Was a TypeError ('NoneType' object is not subscriptable) that left a .partial folder."""
    _, run = matched_run(tmp_path, methods=("tfidf",))
    out = make_bundle(run, tmp_path / "models", use="matcher")
    assert read_bundle(out)["stacker"] is None
    assert not list(tmp_path.glob(".*partial*"))


def test_forced_matcher_bundle_logs_no_comparison(trained, tmp_path, caplog):
    """`--use matcher` used to log 'stacker OOF F1 x <= matcher y' even when x > y."""
    _, run, _, _ = trained
    with caplog.at_level("INFO", logger="prodmatch.predict"):
        make_bundle(run, tmp_path / "m", use="matcher")
    assert "predict will use the matcher" not in caplog.text


def test_failed_overwrite_keeps_the_old_bundle(trained, tmp_path, monkeypatch):
    import prodmatch.predict as predict_module

    _, run, _, _ = trained
    out = make_bundle(run, tmp_path / "models", use="stacker")
    before = (out / "bundle.json").read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(predict_module, "_bundle_model", broken)
    with pytest.raises(OSError, match="disk full"):
        make_bundle(run, out, overwrite=True, use="matcher")
    assert (out / "bundle.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
    monkeypatch.undo()
    assert read_bundle(make_bundle(run, out, overwrite=True, use="matcher"))["stacker"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]


def test_frozen_backbone_folds_share_one_feature_pass(encoder_bundle, monkeypatch):
    """tiny-text trains necks on a frozen backbone: predict runs the backbone once for all folds
    and gets what embedding with every fold encoder gives; fine-tuned folds embed one by one."""
    import numpy as np

    import prodmatch.encoders.inference as inference
    from prodmatch.data.shopee import read_shopee_csv
    from prodmatch.encoders import load_encoder
    from prodmatch.encoders.inference import embed_frame
    from prodmatch.predict import embed_test

    data, models = encoder_bundle
    info = read_bundle(models)
    frame = read_shopee_csv(data / "test.csv", image_policy="placeholder")
    calls = []
    real = inference._infer
    monkeypatch.setattr(inference, "_infer", lambda *a, **kw: calls.append(kw["desc"]) or real(*a, **kw))
    for name, expect_calls in (("tiny-text", 1), ("tiny-image", 2)):
        spec = info["models"][name]
        calls.clear()
        got = embed_test(models, spec, frame, progress=False)
        assert len(calls) == expect_calls, (name, calls)
        total = sum(embed_frame(load_encoder(models / f), frame) for f in spec["folders"])
        np.testing.assert_allclose(got, total / np.linalg.norm(total, axis=1, keepdims=True), atol=1e-5)


def test_encoders_swapped_for_another_runs_are_refused_before_work(encoder_bundle, tmp_path):
    """Was: a models folder whose encoders were replaced by another run's (other weights, other dim)
    predicted without a word: bundle.json recorded neither the encoders' weights nor their dim."""
    _, models = encoder_bundle
    swapped = tmp_path / "swapped"
    shutil.copytree(models, swapped)
    folds = swapped / "encoders" / "tiny-text"
    shutil.copy(folds / "1" / "model.safetensors", folds / "0" / "model.safetensors")
    with pytest.raises(DataError, match="tiny-text/0/model.safetensors is not the encoder the bundle was built with"):
        read_bundle(swapped)
    narrower = tmp_path / "narrower"
    shutil.copytree(models, narrower)
    for encoder_json in (narrower / "encoders" / "tiny-text").glob("*/encoder.json"):
        info = json.loads(encoder_json.read_text())
        info["config"]["dim"] = info["config"]["dim"] // 2
        encoder_json.write_text(json.dumps(info))
    with pytest.raises(DataError, match=r"-d encoder, but model tiny-text's thresholds and stacker were fitted on"):
        read_bundle(narrower)
