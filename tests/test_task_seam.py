"""The task seam: a new task is one package plus one registration, and the CLI's synth / check /
folds / run and the leaderboard serve it like the built-in tasks; the one run summary format."""
from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.errors import DataError
from prodmatch.leaderboard import collect
from prodmatch.summary import ENTRY_FIELDS, f1_entry, ndcg_entry, read_summary, run_summaries, write_summary
from prodmatch.task import TASKS, Task

TOY_PACKAGE = '''
"""A toy task: rows with labels; its "model" guesses that rows sharing a label's parity match."""
from pathlib import Path

import pandas as pd

from prodmatch.data.folds import group_folds
from prodmatch.data.synth import SynthReport
from prodmatch.summary import f1_entry, write_summary


def generate(out, *, seed, preset, overwrite=False):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=overwrite)
    n = {"test": 12, "demo": 60}[preset]
    pd.DataFrame({"id": range(n), "label": [i // 2 for i in range(n)]}).to_csv(out / "rows.csv", index=False)
    return SynthReport(out, files=[out / "rows.csv"], counts={"rows": n})


def check(path, *, strict=False):
    table = pd.read_csv(path)
    return f"{path}: {len(table)} rows, {table['label'].nunique()} labels" + (" (strict)" if strict else "")


def folds(path, n_folds, seed):
    table = pd.read_csv(path)
    return table.assign(fold=group_folds(table["label"], n_folds, seed))


def run(data, config, out, *, overwrite=False, progress=True):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = pd.read_csv(Path(data) / "rows.csv")
    precision = 0.5  # a row's guessed set: its own label's 2 rows + the other label of the same parity's 2
    write_summary(out, task="toy", stage="toy", entries=[f1_entry("toy", f"parity guess on {len(rows)} rows",
                  {"seconds": 0.0}, {"f1": 2 * precision / (1 + precision), "precision": precision, "recall": 1.0})])
    return {"out": out}
'''


@pytest.fixture
def toy_task(tmp_path, monkeypatch):
    """The toy package on sys.path and its one registration, removed again after the test."""
    (tmp_path / "pkg" / "toytask").mkdir(parents=True)
    (tmp_path / "pkg" / "toytask" / "__init__.py").write_text(textwrap.dedent(TOY_PACKAGE))
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    TASKS.register("toy", Task("a toy task", generate="toytask:generate", check="toytask:check",
                               folds="toytask:folds", run="toytask:run", check_options=()))
    yield tmp_path
    TASKS.unregister("toy")


def test_a_new_task_is_one_package_plus_one_registration(toy_task, capsys):
    tmp = toy_task
    assert main(["synth", "toy", "--out", str(tmp / "data"), "--preset", "test"]) == 0
    assert "wrote toy (test, seed 0)" in capsys.readouterr().out
    assert main(["check", "toy", str(tmp / "data" / "rows.csv")]) == 0
    assert capsys.readouterr().out.strip() == f"{tmp / 'data' / 'rows.csv'}: 12 rows, 6 labels"
    assert main(["folds", "toy", str(tmp / "data" / "rows.csv"), "--out", str(tmp / "folds.csv"), "--n-folds", "3"]) == 0
    table = pd.read_csv(tmp / "folds.csv")
    assert sorted(table["fold"].unique()) == [0, 1, 2]
    assert (table.groupby("label")["fold"].nunique() == 1).all()  # a label never spans two folds
    assert main(["run", "toy", "--data", str(tmp / "data"), "--out", str(tmp / "oof" / "toy-run")]) == 0
    assert "toy: parity guess on 12 rows F1 0.6667" in capsys.readouterr().out

    board = collect(tmp / "oof")
    assert board[["run", "entry", "metric", "f1", "precision", "recall"]].values.tolist() == [
        ["toy-run", "toy", "F1", 0.6667, 0.5, 1.0]]


def test_a_check_flag_the_task_does_not_read_is_refused(toy_task, capsys):
    assert main(["check", "toy", "rows.csv", "--feature-dim", "8"]) == 2
    assert capsys.readouterr().err.strip() == ("prodmatch check: error: --feature-dim is not an option of task toy's "
                                               "check (it reads none)")


def test_an_unknown_task_names_the_known_ones(capsys):
    assert main(["run", "shope", "--data", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean shopee?" in err[0] and "known: ccks, kdd, shopee" in err[0]


def test_task_parts_resolve_lazily_and_a_missing_part_is_named():
    task = TASKS.get("kdd")
    assert task.folds is None
    with pytest.raises(DataError, match="this task has no folds"):
        task.function("folds")
    assert task.function("check").__module__ == "prodmatch.kdd.task"


# ------------------------------------------------------------------------------ one summary format
def test_summary_round_trip_and_schema(tmp_path):
    entries = [f1_entry("m", "what", {"seconds": 1.5, "data": {"train.csv": "ab" * 32}}, {"f1": 0.123456},
                        predicted={"f1": 0.5, "test_rows": 70_000}),
               ndcg_entry("k", "ranked", {}, 0.61234, None)]
    path = write_summary(tmp_path, task="t", stage="s", entries=entries)
    data = read_summary(path)
    assert data["task"] == "t" and data["stage"] == "s" and data["schema"] == 1
    first, second = data["entries"]
    assert first == {"entry": "m", "what": "what", "data": "abababababab", "metric": "F1", "f1": 0.1235,
                     "precision": None, "recall": None, "predicted_f1": 0.5, "ndcg5": None, "test_ndcg5": None,
                     "test_rows": 70_000, "stages": "", "seconds": 1.5}
    assert second["metric"] == "NDCG@5" and second["ndcg5"] == 0.6123 and second["f1"] is None
    assert set(first) == set(ENTRY_FIELDS)


def test_a_summary_entry_without_every_field_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        write_summary(tmp_path, task="t", stage="s", entries=[{"entry": "m"}])


def test_the_leaderboard_skips_a_damaged_summary_naming_it(tmp_path, caplog):
    good, bad = tmp_path / "good", tmp_path / "bad" / "stack"
    write_summary(good, task="t", stage="s", entries=[f1_entry("m", "w", {}, {"f1": 0.5})])
    bad.mkdir(parents=True)
    (bad / "summary.json").write_text(json.dumps({"schema": 99, "entries": []}))
    assert run_summaries(tmp_path / "bad") == [bad / "summary.json"]
    assert collect(tmp_path)["run"].tolist() == ["good"]
    assert "skipped" in caplog.text and str(bad / "summary.json") in caplog.text


# ------------------------------------------------------------------------------ the Shopee task's run
def test_shopee_run_chains_the_stages_and_writes_their_summaries(tmp_path, capsys):
    """`prodmatch run shopee` with unsupervised methods only (seconds): matcher, stacker, bundle and
    predict on one folder, every stage's summary listed."""
    assert main(["synth", "shopee", "--out", str(tmp_path / "data"), "--preset", "test", "--no-images"]) == 0
    config = tmp_path / "text-only.yaml"
    config.write_text("encoders: []\nunsupervised: [tfidf, tfidf-char]\n")
    out = tmp_path / "oof" / "shopee-run"
    assert main(["run", "shopee", "--data", str(tmp_path / "data"), "--config", str(config), "--out", str(out),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    for start in ("model: tfidf (sparse)", "model: tfidf-char (sparse)", "matcher: full chain:", "stacker: LightGBM on"):
        assert any(line.startswith(start) for line in printed.splitlines()), start
    assert (out / "submission.csv").is_file() and (out / "stack" / "summary.json").is_file()
    assert set(collect(tmp_path / "oof")["entry"]) == {"model", "matcher", "stacker"}
    assert main(["run", "shopee", "--data", str(tmp_path / "data"), "--config", str(config), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_shopee_run_trains_encoder_folds_one_at_a_time_by_default(tmp_path, monkeypatch):
    """A config without `jobs` trains one fold at a time (it once passed None to the fold workers)."""
    import prodmatch.encoders.run as encoder_run
    from prodmatch.shopee import ShopeeRunConfig, run_chain

    asked = []

    class Stop(Exception):
        pass

    def train_oof(folder, experiment, *, out, progress, jobs):
        asked.append(jobs)
        raise Stop

    monkeypatch.setattr(encoder_run, "train_oof", train_oof)
    with pytest.raises(Stop):
        run_chain(tmp_path, tmp_path, ShopeeRunConfig(encoders=("tiny-text",)), progress=False)
    assert asked == [1]


def test_a_generator_taking_any_options_gets_the_shopee_flags(tmp_path, capsys):
    """A generator with ``**options`` receives --rows (the flag check once refused it as foreign)."""
    from prodmatch.data.synth import SynthReport

    seen = {}

    def generate(out, *, seed, preset, overwrite=False, **options):
        seen.update(options)
        return SynthReport(out, counts={"rows": 0})

    TASKS.register("open", Task("open options", generate=generate, check="toytask:check", run="toytask:run"))
    try:
        assert main(["synth", "open", "--out", str(tmp_path / "d"), "--rows", "3", "4"]) == 0
    finally:
        TASKS.unregister("open")
    assert seen == {"rows": (3, 4)}


def test_a_run_that_fails_before_writing_leaves_no_oof_folder(kdd_preset, tmp_path, monkeypatch, capsys):
    """The default run folder and the oof/ made for it go again when the run fails (oof/ once stayed)."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", "kdd", "--data", str(kdd_preset), "--config", "kdd-test", "--set", "methods[0].kind=x"]) == 2
    assert "unknown kind 'x'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
