"""Hostile CCKS input (issue 27): each case is a one-line error naming the input, raised before any
member trains, or a correct result. Each test failed before its fix (the docstrings say how)."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest

import prodmatch.ccks.run as stage
from prodmatch.ccks import ccks_run
from prodmatch.ccks.data import read_ccks_items, read_ccks_pairs
from prodmatch.cli import main
from prodmatch.errors import DataError

from .test_pairs_stage import write_benchmark

from .conftest import preset_folder

UNSUPERVISED = ("holdout_items: 0.4\nmembers:\n  - {name: tfidf, kind: tfidf_cosine}\n"
                "  - {name: pvs, kind: pvs_jaccard}\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preset_folder(tmp_path_factory, "ccks")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "unsupervised.yaml"
    path.write_text(UNSUPERVISED, encoding="utf-8")
    return path


@pytest.fixture
def no_training(monkeypatch):
    """Any member scored is a test failure: every check must come before training."""
    def trained(*args, **kwargs):
        raise AssertionError("a member trained / scored before the input was refused")

    monkeypatch.setattr(stage, "score_members", trained)


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def copy_ccks(data: Path, folder: Path) -> Path:
    """The CCKS folder's jsonl files (the unsupervised members read no image)."""
    shutil.copytree(data, folder, ignore=lambda _, names: [n for n in names if not n.endswith(".jsonl")])
    return folder


def add_self_pair(folder: Path) -> str:
    path = folder / "item_train_pair.jsonl"
    first = json.loads(lines_of(path)[0])
    write_lines(path, lines_of(path) + [json.dumps({**first, "tgt_item_id": first["src_item_id"]})])
    return first["src_item_id"]


def add_flipped_label(folder: Path, reverse: bool = False) -> str:
    """The first train pair again with the other label (`reverse`: also the ids swapped)."""
    path = folder / "item_train_pair.jsonl"
    first = json.loads(lines_of(path)[0])
    flipped = {**first, "item_label": str(1 - int(first["item_label"]))}
    if reverse:
        flipped.update(src_item_id=first["tgt_item_id"], tgt_item_id=first["src_item_id"])
    write_lines(path, lines_of(path) + [json.dumps(flipped)])
    return first["src_item_id"]


def repeat_valid_pair(folder: Path, files=("item_valid_pair.jsonl", "item_valid_pair_truth.jsonl")) -> str:
    for name in files:
        path = folder / name
        write_lines(path, lines_of(path) + [lines_of(path)[3]])
    return json.loads(lines_of(folder / files[0])[3])["src_item_id"]


def set_item_field(folder: Path, field: str, value, line: int = 3) -> None:
    path = folder / "item_train_info.jsonl"
    lines = lines_of(path)
    lines[line - 1] = json.dumps({**json.loads(lines[line - 1]), field: value}, ensure_ascii=False)
    write_lines(path, lines)


# ---------------------------------------------------------------- defect 10: self pairs, both labels
@pytest.mark.parametrize("edit, message", [
    (add_self_pair, r"item_train_pair\.jsonl: 1 self pair\(s\) \(src_item_id == tgt_item_id\): line 201 \((\w+), \1\)"),
    (add_flipped_label, r"item_train_pair\.jsonl: 1 pair\(s\) listed with both labels 0 and 1: line 1 \(.*line 201"),
    (lambda f: add_flipped_label(f, reverse=True), r"item_train_pair\.jsonl: 1 pair\(s\) listed with both labels"),
], ids=["self pair", "both labels", "both labels, ids swapped"])
def test_check_ccks_refuses_self_and_both_label_pairs(data, tmp_path, capsys, edit, message):
    """Was: `prodmatch check ccks --pairs` printed "... 201 pairs (71 positive)" and exited 0."""
    folder = copy_ccks(data, tmp_path / "data")
    edit(folder)
    assert main(["check", "ccks", str(folder / "item_train_info.jsonl"), "--pairs",
                 str(folder / "item_train_pair.jsonl"), "--image-policy", "text-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prodmatch check: error: ") and len(err.splitlines()) == 1
    assert re.search(message, err), err


@pytest.mark.parametrize("edit", [add_self_pair, add_flipped_label])
def test_stage_refuses_self_and_both_label_pairs_before_training(data, config, tmp_path, edit, no_training):
    """Was: the stage trained every member on the self pair / the contradictory pair and wrote the run."""
    folder = copy_ccks(data, tmp_path / "data")
    item = edit(folder)
    with pytest.raises(DataError, match=rf"item_train_pair\.jsonl: 1 .*line 201 \({item}"):
        ccks_run(folder, config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_read_pairs_refuses_self_both_labels_and_unlabelled_repeats_but_warns_same_label_repeats(tmp_path, caplog):
    """Was: every one of these files was read without a word."""
    def pairs(name, rows):
        return write_lines(tmp_path / name, [json.dumps(dict(zip(("src_item_id", "tgt_item_id", "item_label"), r)))
                                             for r in rows])

    with pytest.raises(DataError, match=r"s\.jsonl: 2 self pair\(s\).*line 2 \(b, b\); line 3 \(c, c\)"):
        read_ccks_pairs(pairs("s.jsonl", [("a", "b", "1"), ("b", "b", "1"), ("c", "c", "0")]))
    with pytest.raises(DataError, match=r"l\.jsonl: 1 pair\(s\) listed with both labels 0 and 1: line 1 \(a, b\); "
                                        r"line 3 \(b, a\)"):
        read_ccks_pairs(pairs("l.jsonl", [("a", "b", "1"), ("a", "c", "0"), ("b", "a", "0")]))
    with pytest.raises(DataError, match=r"u\.jsonl: 1 repeated pair\(s\).*line 3 \(a, b\)"):
        read_ccks_pairs(pairs("u.jsonl", [("a", "b"), ("a", "c"), ("a", "b")]))
    with pytest.raises(DataError, match=r"t\.jsonl: 1 repeated pair"):
        read_ccks_pairs(pairs("t.jsonl", [("a", "b", "1"), ("a", "b", "1")]), unique=True)
    with caplog.at_level(logging.WARNING, logger="prodmatch.ccks.data"):
        same = read_ccks_pairs(pairs("r.jsonl", [("a", "b", "1"), ("a", "b", "1"), ("b", "c", "0")]))
    assert len(same) == 3 and "r.jsonl: 1 repeated pair(s)" in caplog.text


# ---------------------------------------------------------------- defect 13: wrong JSON types
@pytest.mark.parametrize("field, value, kind", [
    ("item_pvs", {"k": "v"}, "a JSON object"),
    ("sku_pvs", {"颜色分类": ["黑色"]}, "a JSON object"),
    ("title", ["手机", "X20"], "a JSON array"),
    ("cate_name", True, "true"),
    ("cate_id", 123.5, "the number 123.5"),
])
def test_item_field_of_the_wrong_json_type_is_refused_not_a_repr(tmp_path, field, value, kind):
    """Was: `item_pvs: {"k": "v"}` became the text "{'k': 'v'}" (a Python repr), and so on."""
    path = write_lines(tmp_path / "item_train_info.jsonl",
                       [json.dumps({"item_id": "a", "title": "x"}),
                        json.dumps({"item_id": "b", "title": "y"}),
                        json.dumps({"item_id": "c", field: value}, ensure_ascii=False)])
    with pytest.raises(DataError, match=rf"item_train_info\.jsonl: line 3: {field} must be a string, got {kind}"):
        read_ccks_items(path)


def test_integer_fields_are_their_digits_and_pair_ids_of_the_wrong_type_are_refused(tmp_path):
    """Was: a pair id {"id": 1} became the id "{'id': 1}" (then 'not in the item file')."""
    items = read_ccks_items(write_lines(tmp_path / "i.jsonl", [json.dumps({"item_id": 7, "title": 2022}),
                                                               json.dumps({"item_id": "8", "title": None})]))
    assert items["item_id"].tolist() == ["7", "8"] and items["title"].tolist() == ["2022", ""]
    path = write_lines(tmp_path / "p.jsonl", [json.dumps({"src_item_id": 7, "tgt_item_id": "8"}),
                                              json.dumps({"src_item_id": "7", "tgt_item_id": {"id": 1}})])
    with pytest.raises(DataError, match=r"p\.jsonl: line 2: tgt_item_id must be a string, got a JSON object"):
        read_ccks_pairs(path, items)


def test_stage_refuses_an_item_field_of_the_wrong_type(data, config, tmp_path, no_training):
    """Was: the stage trained on the title "['a', 'b']" and wrote the run."""
    folder = copy_ccks(data, tmp_path / "data")
    set_item_field(folder, "title", ["a", "b"], line=5)
    with pytest.raises(DataError, match=r"item_train_info\.jsonl: line 5: title must be a string, got a JSON array"):
        ccks_run(folder, config, tmp_path / "run", progress=False)


# ---------------------------------------------------------------- loud: valid pairs twice, before training
@pytest.mark.parametrize("files, named", [
    (("item_valid_pair.jsonl", "item_valid_pair_truth.jsonl"), "item_valid_pair_truth.jsonl"),
    (("item_valid_pair.jsonl",), "item_valid_pair.jsonl"),
], ids=["with truth", "without truth"])
def test_a_valid_pair_listed_twice_is_refused_before_any_member_trains(data, config, tmp_path, files, named,
                                                                       no_training):
    """Was: with the truth, every member trained and the scorer then refused the result ("the truth
    repeats the pair"), leaving <out>.failed; without it, result.jsonl repeated the pair (exit 0)."""
    folder = copy_ccks(data, tmp_path / "data")
    if len(files) == 1:
        (folder / "item_valid_pair_truth.jsonl").unlink()
    item = repeat_valid_pair(folder, files)
    with pytest.raises(DataError, match=rf"{named}: 1 repeated pair\(s\) \(listed more than once\): line 81 \({item}"):
        ccks_run(folder, config, tmp_path / "run", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


# ---------------------------------------------------------------- defect 6: --overwrite of the reused run
def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*")
            if p.is_file()}


def with_checkpoint(run: Path) -> Path:
    """A member checkpoint in the run's members/ (as a trained member leaves; these members train none)."""
    (run / "members" / "cross" / "best").mkdir(parents=True, exist_ok=True)
    (run / "members" / "cross" / "best" / "pair_model.json").write_text('{"kind": "cross"}')
    return run


@pytest.fixture(scope="module")
def ccks_runs(data, config, tmp_path_factory):
    """A finished run and a second one that reused all its members."""
    root = tmp_path_factory.mktemp("runs")
    first = ccks_run(data, config, root / "first", progress=False)["out"]
    second = ccks_run(data, config, root / "second", progress=False, reuse=first)["out"]
    return with_checkpoint(first), second


@pytest.mark.parametrize("spelling", ["same", "trailing slash", "dot segments"])
def test_cli_ccks_refuses_to_overwrite_the_run_it_reuses(ccks_runs, data, config, capsys, spelling):
    """Was (before the check in ccks/run.py): `--out R --overwrite --reuse R` replaced R, deleting the
    members/ it claimed to reuse. The check predates this test; no test covered the CLI form."""
    run = ccks_runs[0]
    reuse = {"same": str(run), "trailing slash": f"{run}/", "dot segments": str(run.parent / "." / ".." /
                                                                             run.parent.name / run.name)}[spelling]
    before = tree(run)
    assert main(["ccks", "--data", str(data), "--config", str(config), "--out", str(run), "--overwrite",
                 "--reuse", reuse, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prodmatch ccks: error: --reuse ") and "--overwrite replaces" in err
    assert tree(run) == before and (run / "members" / "cross" / "best" / "pair_model.json").is_file()


def test_cli_ccks_refuses_to_overwrite_the_run_that_trained_the_reused_members(ccks_runs, data, config, capsys):
    """Was: `--out R --overwrite --reuse S`, where S had reused R's members, replaced R: the new run's
    run.json said its members came from R while R's members/ were deleted."""
    first, second = ccks_runs
    before = tree(first)
    assert main(["ccks", "--data", str(data), "--config", str(config), "--out", str(first), "--overwrite",
                 "--reuse", str(second), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"prodmatch ccks: error: --reuse {second}: member(s) tfidf, pvs were trained in {first}")
    assert tree(first) == before


def test_cli_pairs_refuses_to_overwrite_the_run_it_reuses(tmp_path, capsys):
    """Was (before the check in ccks/run.py): as for `ccks`; only ccks_run(...) was tested, not the CLI."""
    bench = write_benchmark(tmp_path / "shop")
    config = tmp_path / "em.yaml"
    config.write_text("select_folds: 3\nmembers:\n  - {name: tfidf, kind: tfidf_cosine, options: {field: offer}}\n")
    run = tmp_path / "run"
    assert main(["pairs", "--data", str(bench), "--config", str(config), "--out", str(run), "--quiet"]) == 0
    before = tree(with_checkpoint(run))
    capsys.readouterr()
    assert main(["pairs", "--data", str(bench), "--config", str(config), "--out", str(run), "--overwrite",
                 "--reuse", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prodmatch pairs: error: --reuse ") and "--overwrite replaces" in err
    assert tree(run) == before


# ---------------------------------------------------------------- the table: exit 2, one line, nothing left
def bad_data(edit):
    def make(data: Path, tmp: Path) -> Path:
        folder = copy_ccks(data, tmp / "data")
        edit(folder)
        return folder
    return make


def good_data(data: Path, tmp: Path) -> Path:
    return data


def broken_earlier_run(run_json: str, scores: bytes):
    """The data as it is, and an earlier run ``tmp/earlier`` whose artifacts are damaged."""
    def make(data: Path, tmp: Path) -> Path:
        (tmp / "earlier").mkdir()
        (tmp / "earlier" / "run.json").write_text(run_json)
        (tmp / "earlier" / "scores.parquet").write_bytes(scores)
        return data
    return make


def bad_config(text: str):
    def make(tmp: Path) -> str:
        path = tmp / "bad.yaml"
        path.write_text(text, encoding="utf-8")
        return str(path)
    return make


HOSTILE = {
    # Was: exit 0, the self pair trained on
    "self pair": ("ccks", bad_data(add_self_pair), None, [], "item_train_pair.jsonl: 1 self pair"),
    # Was: exit 0, the contradictory labels trained on
    "both labels": ("ccks", bad_data(add_flipped_label), None, [], "item_train_pair.jsonl: 1 pair(s) listed with both"),
    # Was: members scored, then "the truth repeats the pair" and a <out>.failed left behind
    "valid pair twice": ("ccks", bad_data(repeat_valid_pair), None, [], "item_valid_pair_truth.jsonl: 1 repeated pair"),
    # Was: exit 0, item_pvs read as the text "{'k': 'v'}"
    "item_pvs object": ("ccks", bad_data(lambda f: set_item_field(f, "item_pvs", {"k": "v"})), None, [],
                        "item_train_info.jsonl: line 3: item_pvs must be a string"),
    # Was: exit 0 from `check` on a self pair
    "check self pair": ("check", bad_data(add_self_pair), None, [], "item_train_pair.jsonl: 1 self pair"),
    # Was: exit 0 from `check`, the title read as "['a', 'b']"
    "check title array": ("check", bad_data(lambda f: set_item_field(f, "title", ["a", "b"])), None, [],
                          "item_train_info.jsonl: line 3: title must be a string"),
    # already refused (config ranges): kept here so they stay so
    "lr nan": ("ccks", good_data, bad_config("members:\n  - {name: t, kind: textcnn, train: {lr_head: .nan}}\n"), [],
               "members[0].train.lr_head: must be a finite number"),
    "select_folds 0": ("ccks", good_data, bad_config(UNSUPERVISED + "select_folds: 0\n"), [], "select_folds"),
    "reuse no run": ("ccks", good_data, None, ["--reuse", "{tmp}/nowhere"], "--reuse {tmp}/nowhere: not a finished"),
    # Was: a JSONDecodeError traceback
    "reuse truncated run.json": ("ccks", broken_earlier_run('{"config": {"memb', b""), None,
                                 ["--reuse", "{tmp}/earlier"], "earlier/run.json: the run record is not valid JSON"),
    # Was: a pyarrow ArrowInvalid traceback
    "reuse truncated scores": ("ccks", broken_earlier_run("{}", b"PAR1\x00\x01"), None,
                               ["--reuse", "{tmp}/earlier"], "earlier/scores.parquet: not a readable scores file"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_ccks_input_is_one_error_line_and_leaves_no_run_folder(case, data, config, tmp_path, capsys,
                                                                       no_training):
    """Was: see each row's comment in HOSTILE (exit 0 with the input used, or a failure after training)."""
    command, make_data, make_config, flags, named = HOSTILE[case]
    folder = make_data(data, tmp_path)
    flags = [f.format(tmp=tmp_path) for f in flags]
    named = named.format(tmp=tmp_path)
    before = set(os.listdir(tmp_path))
    out = tmp_path / "run"
    if command == "ccks":
        cfg = make_config(tmp_path) if make_config else str(config)
        before = set(os.listdir(tmp_path))
        rc = main(["ccks", "--data", str(folder), "--config", cfg, "--out", str(out), "--quiet", *flags])
    else:
        rc = main(["check", "ccks", str(folder / "item_train_info.jsonl"), "--pairs",
                   str(folder / "item_train_pair.jsonl"), "--image-policy", "text-only", *flags])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith(f"prodmatch {command}: error:")]
    assert len(errors) == 1 and named in errors[0], err
    assert set(os.listdir(tmp_path)) == before  # no run folder, no <out>.failed, no temp folder
