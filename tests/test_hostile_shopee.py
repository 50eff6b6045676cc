"""Hostile-input pass 2 (Shopee side and the shared mechanisms): each silent defect it found is now
an error or a correct result, and each loud class is one line, exit 2, nothing left behind.
Each test failed before its fix (docstrings say what happened)."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.data.shopee import read_shopee_csv
from prodmatch.errors import DataError
from prodmatch.io import atomic_dir, atomic_path, write_text
from prodmatch.post.run import match_run
from prodmatch.store import load_runs

from .conftest import matched_run, shopee_rows, write_shopee


@pytest.fixture(scope="module")
def run_and_models(tmp_path_factory):
    """A TF-IDF + phash run with its matcher and a matcher bundle (read-only: tests copy it)."""
    from prodmatch.predict import make_bundle

    root = tmp_path_factory.mktemp("hostile2")
    data, run = matched_run(root)
    return data, run, make_bundle(run, root / "models", use="matcher")


def copied(tmp_path, run_and_models):
    data, run, models = run_and_models
    shutil.copytree(run, tmp_path / "run")
    shutil.copytree(models, tmp_path / "models")
    return data, tmp_path / "run", tmp_path / "models"


# ---------------------------------------------------------------- silent defects
def test_a_posting_id_with_whitespace_is_refused_at_load(tmp_path, run_and_models, capsys):
    """Was: accepted; predict wrote `test 3137614890,test 3137614890 test 1608384814`, unparseable."""
    rows = shopee_rows(4)
    rows[2]["posting_id"] = "train 1002"
    with pytest.raises(DataError, match="posting_id must not hold whitespace.*'train 1002'"):
        read_shopee_csv(write_shopee(tmp_path / "a", rows, images=False), image_policy="text-only")
    data, _, models = run_and_models
    spaced = tmp_path / "spaced"
    shutil.copytree(data, spaced)
    test = pd.read_csv(spaced / "test.csv", dtype=str)
    test["posting_id"] = test["posting_id"].str.replace("_", "\t")
    test.to_csv(spaced / "test.csv", index=False)
    out = tmp_path / "sub.csv"
    assert main(["predict", "--data", str(spaced), "--models", str(models), "--out", str(out), "--quiet"]) == 2
    assert "must not hold whitespace" in capsys.readouterr().err and not out.exists()


def test_a_writer_that_must_not_overwrite_loses_a_race_loudly(tmp_path):
    """Was: the existence check came before the work and the final rename replaced whatever another
    writer had published meanwhile: two `predict --out race.csv` both exited 0, one result lost."""
    target = tmp_path / "race.csv"
    with pytest.raises(FileExistsError, match="appeared while this run was writing it"):
        with atomic_path(target, replace=False) as first:  # leaving it publishes `first`: too late
            first.write_text("first\n")
            with atomic_path(target, replace=False) as second:
                second.write_text("second\n")
    assert target.read_text() == "second\n" and sorted(p.name for p in tmp_path.iterdir()) == ["race.csv"]
    folder = tmp_path / "run"
    with pytest.raises(FileExistsError, match="appeared while this run was writing it"):
        with atomic_dir(folder, replace=False) as first:
            (first / "a.txt").write_text("first")
            with atomic_dir(folder, replace=False) as second:
                (second / "a.txt").write_text("second")
    assert (folder / "a.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.csv", "run"]
    write_text(target, "replaced\n")  # replace=True (the default, --overwrite) still replaces
    assert target.read_text() == "replaced\n"


def test_predict_does_not_replace_a_submission_published_while_it_ran(tmp_path, run_and_models, monkeypatch):
    """Was: a second predict to the same new --out silently replaced the first one's file."""
    import prodmatch.predict as predict_module

    data, _, models = run_and_models
    out = tmp_path / "race.csv"
    real = predict_module.embed_test

    def embed_while_another_writer_finishes(*args, **kwargs):
        out.write_text("posting_id,matches\nother,other\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_module, "embed_test", embed_while_another_writer_finishes)
    with pytest.raises(FileExistsError, match="appeared while this run was writing it"):
        predict_module.predict(data, models, out, progress=False)
    assert out.read_text() == "posting_id,matches\nother,other\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.csv"]


@pytest.mark.parametrize("change", [1, -1])
def test_an_oof_matrix_of_another_row_count_is_refused(tmp_path, run_and_models, change):
    """Was: one extra OOF row was used misaligned (OOF F1 0.84 -> 0.53, exit 0); one fewer an IndexError."""
    _, run, _ = copied(tmp_path, run_and_models)
    path = run / "models" / "phash" / "oof.npy"
    codes = np.load(path)
    np.save(path, np.concatenate([codes[:1], codes]) if change > 0 else codes[1:])
    with pytest.raises(DataError, match=r"phash/oof.npy: shape \(\d+,\), but model.json records \(150,\) and rows.csv has 150"):
        load_runs(run)


def test_match_refuses_a_train_csv_other_than_the_runs(tmp_path, run_and_models):
    """Was: `match --data` at another train.csv with the same ids (9 titles edited) ran, exit 0, the F1
    moved and matcher.json recorded the new hash."""
    data, run, _ = copied(tmp_path, run_and_models)
    edited = tmp_path / "edited"
    shutil.copytree(data, edited)
    train = pd.read_csv(edited / "train.csv", dtype=str, keep_default_na=False)
    train.loc[:8, "title"] = "edited title"
    train.to_csv(edited / "train.csv", index=False)
    with pytest.raises(DataError, match="edited/train.csv is not the train.csv model '(phash|tfidf)' was built on"):
        match_run(run, data_dir=edited, overwrite=True, progress=False)


def test_a_label_edited_in_rows_csv_is_refused(tmp_path, run_and_models):
    """Was: an edited label_group in rows.csv was read as truth, exit 0."""
    _, run, _ = copied(tmp_path, run_and_models)
    rows = pd.read_csv(run / "rows.csv", dtype=str)
    rows.loc[3, "label_group"] = "999"
    rows.to_csv(run / "rows.csv", index=False)
    with pytest.raises(DataError, match="rows.csv changed since .*model.json was written"):
        load_runs(run)


def test_label_groups_are_parsed_exactly_from_text(tmp_path):
    """Was: one label written as a float sent the column through float64: 9007199254740993 and
    9007199254740992 merged into one group and `check` said OK."""
    rows = shopee_rows(4)
    rows[0]["label_group"], rows[1]["label_group"] = "9007199254740993", "9007199254740992"
    rows[2]["label_group"], rows[3]["label_group"] = "7.0", "-12"
    frame = read_shopee_csv(write_shopee(tmp_path, rows, images=False), image_policy="text-only")
    assert frame["label_group"].tolist() == [9007199254740993, 9007199254740992, 7, -12]
    for bad in ("7.5", "1e3", "9223372036854775808", "twelve"):
        rows[3]["label_group"] = bad
        with pytest.raises(DataError, match="label_group must be an integer below 2\\*\\*63"):
            read_shopee_csv(write_shopee(tmp_path / bad, rows, images=False), image_policy="text-only")


def test_a_repeated_column_is_refused(tmp_path):
    """Was: a test.csv with two `title` columns silently used the first."""
    csv = write_shopee(tmp_path, shopee_rows(3, labelled=False), stem="test", images=False)
    frame = pd.read_csv(csv, dtype=str)
    frame.insert(1, "title_again", "another title")
    frame.to_csv(csv, index=False, header=[c if c != "title_again" else "title" for c in frame.columns])
    with pytest.raises(DataError, match=r"column\(s\) \['title'\] appear more than once"):
        read_shopee_csv(csv, image_policy="text-only")


def test_test_rows_far_beyond_the_train_rows_warn(tmp_path, run_and_models, caplog):
    """Was: --test-rows 1000000000000 on a 150-row run reported a predicted F1 without a word."""
    _, run, _ = copied(tmp_path, run_and_models)
    with caplog.at_level(logging.WARNING):
        match_run(run, config={"k": 10, "units": False}, overwrite=True, progress=False, test_rows=10**12)
    assert "extrapolate the density correction" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        match_run(run, config={"k": 10, "units": False}, overwrite=True, progress=False, test_rows=300)
    assert "extrapolate" not in caplog.text


# ---------------------------------------------------------------- loud classes
def yaml_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def bundle_predict(damage):
    def case(tmp_path, data, run, models):
        damage(models)
        return ["predict", "--data", str(data), "--models", str(models), "--out", str(tmp_path / "sub.csv")]
    return case


def on_run(command, damage=lambda run: None, *extra):
    def case(tmp_path, data, run, models):
        damage(run)
        return [command, "--run", str(run), "--data", str(data), "--overwrite", *extra]
    return case


def with_config(command, text, name="config.yaml"):
    def case(tmp_path, data, run, models):
        return [command, "--run", str(run), "--data", str(data), "--overwrite", "--config",
                yaml_file(tmp_path, name, text)]
    return case


def truncate(path, keep=40):
    path.write_bytes(path.read_bytes()[:keep])


def replace_rows(column, value):
    def damage(run):
        rows = pd.read_csv(run / "rows.csv", dtype=str)
        rows.loc[2, column] = value
        rows.to_csv(run / "rows.csv", index=False)
    return damage


def nan_embeddings(run):
    oof = np.load(run / "models" / "phash" / "oof.npy")
    dense = np.random.default_rng(0).normal(size=(len(oof), 8)).astype(np.float32)
    dense[5, 2] = np.nan
    from prodmatch.store import read_rows, save_embeddings
    save_embeddings(run, "dense", "dense", dense, rows=read_rows(run))


NUMBERS = {  # a number out of its range, in a config or a flag, named before any work
    "matcher k 0": (with_config("match", "k: 0\n"), "k: must be >= 1, got 0"),
    "matcher grid_step 0": (with_config("match", "grid_step: 0\n"), "grid_step: must be > 0, got 0"),
    "matcher grid_step nan": (with_config("match", "grid_step: .nan\n"), "grid_step: must be a finite number"),
    "stacker num_leaves 0": (with_config("stack", "lgbm: {num_leaves: 0}\n"), "lgbm.num_leaves: must be >= 2, got 0"),
    "stacker learning_rate inf": (with_config("stack", "lgbm: {learning_rate: .inf}\n"),
                                  "lgbm.learning_rate: must be a finite number"),
    "predict --batch-size 0": (lambda t, d, r, m: ["predict", "--data", str(d), "--models", str(m), "--out",
                                                   str(t / "sub.csv"), "--batch-size", "0"],
                               "argument --batch-size: must be >= 1, got 0"),
    "match --test-rows -5": (on_run("match", lambda run: None, "--test-rows", "-5"),
                             "argument --test-rows: must be >= 1, got -5"),
    "train batch_size 0": (lambda t, d, r, m: ["train", "text", "--data", str(d), "--out", str(t / "trained"), "--config",
                                               yaml_file(t, "text.yaml", "name: t\nkind: text\ntrain: {batch_size: 0}\n")],
                           "train.batch_size: must be >= 1, got 0"),
}
ARTIFACTS = {  # every file a stage reads: one line naming it
    "truncated model.json": (on_run("match", lambda run: truncate(run / "models" / "tfidf" / "model.json")),
                             "tfidf/model.json: model.json is not valid JSON"),
    "model.json a list": (on_run("match", lambda run: (run / "models" / "tfidf" / "model.json").write_text("[1]")),
                          "tfidf/model.json: model.json is not a JSON object"),
    "truncated oof.npy": (on_run("match", lambda run: truncate(run / "models" / "phash" / "oof.npy", 100)),
                          "phash/oof.npy: not a readable array file"),
    "rows.csv fold 1.5": (on_run("match", replace_rows("fold", "1.5")), "rows.csv: column fold must hold integers"),
    "NaN embedding row": (on_run("match", nan_embeddings), "dense"),
    "truncated matcher.json": (lambda t, d, r, m: (truncate(r / "matcher.json"),
                                                   ["bundle", "--run", str(r), "--out", str(t / "bundle")])[1],
                               "matcher.json: the matcher is not valid JSON"),
    "bundle.json a string": (bundle_predict(lambda m: (m / "bundle.json").write_text('"x"')),
                             "bundle.json: the bundle is not a JSON object"),
}
PATHS = {  # every path argument, checked before the work
    "predict --out a folder": (lambda t, d, r, m: (t.joinpath("subdir").mkdir(),
                                                   ["predict", "--data", str(d), "--models", str(m), "--out",
                                                    str(t / "subdir")])[1], "subdir is a folder"),
    "predict --out in a missing folder's file": (
        lambda t, d, r, m: (t.joinpath("afile").write_text("x"),
                            ["predict", "--data", str(d), "--models", str(m), "--out", str(t / "afile" / "s.csv")])[1],
        "afile is not a folder"),
    "bundle --out an existing file": (lambda t, d, r, m: (t.joinpath("bfile").write_text("x"),
                                                          ["bundle", "--run", str(r), "--out", str(t / "bfile")])[1],
                                      "bfile is a file; this output is a folder"),
    "embed --out an existing file": (lambda t, d, r, m: (t.joinpath("efile").write_text("x"),
                                                         ["embed", "tfidf", "--data", str(d), "--out", str(t / "efile")])[1],
                                     "efile is a file; this output is a folder"),
    "train --out an existing file": (lambda t, d, r, m: (t.joinpath("tfile").write_text("x"),
                                                         ["train", "text", "--data", str(d), "--config", "tiny-text",
                                                          "--out", str(t / "tfile")])[1],
                                     "tfile is a file; this output is a folder"),
    "baseline --out-root an existing file": (lambda t, d, r, m: (t.joinpath("rfile").write_text("x"),
                                                                 ["baseline", "--data", str(d), "--out-root",
                                                                  str(t / "rfile")])[1],
                                             "rfile is a file; this output is a folder"),
    "folds --out a folder": (lambda t, d, r, m: ["folds", "shopee", str(d / "train.csv"), "--out", str(d)],
                             "is a folder; this output is a file"),
    "config not YAML": (with_config("match", "k: [1, 2\n"), "config.yaml: not valid YAML"),
    "config not UTF-8": (with_config("match", b"k: 5 # caf\xe9\n"), "config.yaml: not UTF-8"),
    "config a folder": (lambda t, d, r, m: ["match", "--run", str(r), "--config", str(t)], "is a folder, not a config"),
    "--data a file": (lambda t, d, r, m: ["match", "--run", str(r), "--data", str(d / "train.csv"), "--overwrite"],
                      "train.csv is not a folder"),
}
TEXT = {  # every text input decoded with a clear error
    "score --pred bad bytes": (lambda t, d, r, m: ["score", "--truth", str(d / "train.csv"), "--pred",
                                                   yaml_file(t, "p.csv", b"posting_id,matches\nx,caf\xe9\n")],
                               "p.csv: not UTF-8"),
    "score --pred extra field": (lambda t, d, r, m: ["score", "--truth", str(d / "train.csv"), "--pred",
                                                     yaml_file(t, "p.csv", "posting_id,matches\na,a,b\n")],
                                 "p.csv"),
    "score --pred unclosed quote": (lambda t, d, r, m: ["score", "--truth", str(d / "train.csv"), "--pred",
                                                        yaml_file(t, "p.csv", 'posting_id,matches\na,"a b\nc,c\n')],
                                    "p.csv"),
    "score --pred a folder": (lambda t, d, r, m: ["score", "--truth", str(d / "train.csv"), "--pred", str(t)],
                              "is a folder"),
    "train.csv not UTF-8": (lambda t, d, r, m: (shutil.copytree(d, t / "d8"),
                                                (t / "d8" / "train.csv").write_bytes(
                                                    (d / "train.csv").read_bytes().replace(b"\n", b"\xe9\n", 3)),
                                                ["check", "shopee", str(t / "d8" / "train.csv")])[2],
                            "train.csv: not UTF-8 text"),
}
BACKENDS = {  # optional backends fail fast, in the flag's own words
    "--backend cuml without cuML": (on_run("match", lambda run: None, "--backend", "cuml"), "--backend cuml"),
    "--backend unknown": (on_run("match", lambda run: None, "--backend", "annoy"), "--backend annoy"),
    "--dask with nothing listening": (lambda t, d, r, m: ["--dask", "tcp://127.0.0.1:9", "match", "--run", str(r),
                                                          "--backend", "dask", "--overwrite"], "--dask tcp://127.0.0.1:9"),
    "--backend dask_ivf without --dask": (on_run("stack", lambda run: None, "--backend", "dask_ivf"),
                                          "--backend dask_ivf runs on a Dask cluster: add --dask local"),
    "--dask local:two": (lambda t, d, r, m: ["--dask", "local:two", "match", "--run", str(r), "--backend", "dask",
                                             "--overwrite"], "--dask 'local:two': write local:N"),
    "predict --backend cuml": (lambda t, d, r, m: ["predict", "--data", str(d), "--models", str(m), "--out",
                                                   str(t / "sub.csv"), "--backend", "cuml"], "--backend cuml"),
}
CASES = {**NUMBERS, **ARTIFACTS, **PATHS, **TEXT, **BACKENDS}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(name, tmp_path, run_and_models, capsys):
    """Was (issue 27): tracebacks (ZeroDivisionError, LightGBMError, NotADirectoryError, IsADirectoryError,
    ParserError, UnicodeDecodeError), errors after the work, or messages naming Python arguments."""
    make_args, message = CASES[name]
    data, run, models = copied(tmp_path, run_and_models)
    argv = make_args(tmp_path, data, run, models)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    if "cuml" in name:
        pytest.importorskip("faiss")
        try:
            import cuml  # noqa: F401
            pytest.skip("cuML is installed here")
        except ImportError:
            pass
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"prodmatch {argv[2] if argv[0] == '--dask' else argv[0]}: error:"), err
    assert message in errors[0], errors[0]
    assert "Traceback" not in err
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert after == before, set(after) ^ set(before)  # no output file, no half run folder
