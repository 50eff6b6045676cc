import subprocess
import sys

import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.commands._base import COMMANDS as _COMMANDS

from .conftest import shopee_rows, write_shopee


@pytest.mark.parametrize("name", sorted(_COMMANDS))
def test_every_subcommand_has_help(name, capsys):
    assert main([name, "--help"]) == 0  # argparse's exit is main's return code
    assert "usage: prodmatch" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "prodmatch.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("prodmatch ")


def test_score_prints_f1_precision_recall(tmp_path, capsys):
    truth = write_shopee(tmp_path, shopee_rows(4), images=False)
    sub = tmp_path / "submission.csv"
    ids = [r["posting_id"] for r in shopee_rows(4)]
    pd.DataFrame({"posting_id": ids, "matches": [f"{ids[0]} {ids[1]}", ids[1], ids[2], ids[3]]}).to_csv(sub, index=False)
    assert main(["score", "--truth", str(truth), "--pred", str(sub)]) == 0
    # rows: 1.0, 2/3, 2/3, 2/3
    assert capsys.readouterr().out.strip() == "f1=0.7500 precision=1.0000 recall=0.6250"


def test_score_bad_submission_is_one_clear_line(tmp_path, capsys):
    truth = write_shopee(tmp_path, shopee_rows(4), images=False)
    sub = tmp_path / "submission.csv"
    pd.DataFrame({"posting_id": ["train_1000"], "matches": ["train_1000"]}).to_csv(sub, index=False)
    assert main(["score", "--truth", str(truth), "--pred", str(sub)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prodmatch score: error: submission lacks 3 posting_id(s)") and "Traceback" not in err


def test_check_shopee(shopee_folder, capsys):
    assert main(["check", "shopee", str(shopee_folder / "train.csv")]) == 0
    assert "6 postings, 3 groups, bad images: 0" in capsys.readouterr().out


def test_check_reports_missing_image(shopee_folder, capsys):
    next((shopee_folder / "train_images").iterdir()).unlink()
    assert main(["check", "shopee", str(shopee_folder / "train.csv")]) == 2
    assert "1 missing" in capsys.readouterr().err


def test_folds_cli(shopee_folder, capsys):
    out = shopee_folder / "folds.csv"
    assert main(["folds", "shopee", str(shopee_folder / "train.csv"), "--out", str(out), "--n-folds", "3"]) == 0
    folds = pd.read_csv(out)
    assert folds.groupby("label_group")["fold"].nunique().eq(1).all()


@pytest.mark.parametrize("n_test", [1, 3])
def test_baseline_writes_a_fresh_run_folder_each_time(tmp_path, capsys, n_test):
    write_shopee(tmp_path, shopee_rows(8), images=False)
    write_shopee(tmp_path, shopee_rows(n_test, labelled=False, prefix="test"), stem="test", images=False)
    args = ["baseline", "--data", str(tmp_path), "--out-root", str(tmp_path / "oof")]
    assert main(args) == 0 and main(args) == 0
    runs = sorted((tmp_path / "oof").iterdir())
    assert len(runs) == 2
    sub = pd.read_csv(runs[0] / "submission.csv")
    assert len(sub) == n_test
    assert all(pid in m.split() for pid, m in zip(sub["posting_id"], sub["matches"]))


def test_check_ccks_finds_images_beside_the_info_file(tmp_path, capsys):
    from prodmatch.data.synth import generate

    generate("ccks", tmp_path, seed=0, preset="test")
    info, pairs = tmp_path / "item_train_info.jsonl", tmp_path / "item_train_pair.jsonl"
    assert main(["check", "ccks", str(info), "--pairs", str(pairs)]) == 0
    out = capsys.readouterr().out
    assert "200 pairs" in out and "bad images: 0" in out


def test_score_empty_truth_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "truth.csv").write_text("")
    (tmp_path / "sub.csv").write_text("posting_id,matches\na,a\n")
    assert main(["score", "--truth", str(tmp_path / "truth.csv"), "--pred", str(tmp_path / "sub.csv")]) == 2
    assert "truth file missing or empty" in capsys.readouterr().err
