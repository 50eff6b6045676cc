"""Hostile KDD input (issue 27): each case is a clear error (a DataError naming the file / input; on the
command line exit 2 and one `prodmatch <cmd>: error:` line) before any work. Each test failed before its fix."""
from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest
import yaml

from prodmatch.cli import main
from prodmatch.config import load_config
from prodmatch.errors import DataError
from prodmatch.kdd import KddRunConfig, kdd_run
from prodmatch.kdd.data import read_answers, read_candidates, read_labels, read_tsv

from .conftest import preset_folder

DIM = 32  # the test preset's feature dim
# a seconds-long stage run: no trained member, no test split
CHEAP = {"name": "cheap", "feature_dim": DIM, "test_splits": [],
         "methods": [{"name": "random", "kind": "random"}, {"name": "overlap", "kind": "box_label_overlap"}]}
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb004300") + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preset_folder(tmp_path_factory, "kdd")


def copy(data, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(data, folder)
    return folder


def tsv_lines(path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def write_lines(path, lines) -> None:
    path.write_text("\n".join("\t".join(fields) for fields in lines) + "\n")


def stray_answers(folder, n: int = 12) -> list[int]:
    """Set one answer of `n` queries of valid_answer.json to a product no candidate row lists."""
    path = folder / "valid_answer.json"
    answers = json.loads(path.read_text())
    changed = list(answers)[:n]
    for i, qid in enumerate(changed):
        answers[qid][0] = 900_000_000 + i
    path.write_text(json.dumps(answers))
    return [int(q) for q in changed]


def set_field(path, line: int, column: str, value: str) -> None:
    """Replace `column` of file line `line` (1: the header) of a .tsv."""
    lines = tsv_lines(path)
    lines[line - 1][lines[0].index(column)] = value
    write_lines(path, lines)


def poison_features(path, line: int, value: float, column: str = "features", dim: int = DIM) -> None:
    lines = tsv_lines(path)
    header = lines[0]
    fields = lines[line - 1]
    width = dim if column == "features" else 4
    array = np.frombuffer(base64.b64decode(fields[header.index(column)]), np.float32).reshape(-1, width).copy()
    array[-1, 1] = value
    fields[header.index(column)] = base64.b64encode(array.tobytes()).decode()
    write_lines(path, lines)


# ---------------------------------------------------------------- 1: answers outside the candidates
def test_answers_that_are_not_candidates_are_refused_at_load(data, tmp_path):
    """Was: 12 of 24 answers set to non-candidate ids were accepted (rc 0, valid NDCG@5 dropped and the
    level-2 models were fitted on the broken answers)."""
    folder = copy(data, tmp_path)
    changed = stray_answers(folder)
    answers = read_answers(folder / "valid_answer.json")
    with pytest.raises(DataError, match=r"valid_answer.json: 12 answer\(s\) name products that are not among their "
                                        r"query's candidates in .*valid.tsv, query_id\(s\) "
                                        + ", ".join(map(str, changed[:5])) + r" \(\+7 more\)"):
        read_candidates(folder / "valid.tsv", answers, folder / "valid_answer.json", feature_dim=DIM)
    with pytest.raises(DataError, match="valid_answer.json: 12 answer"):
        kdd_run(folder, CHEAP, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- 2: ids past int64, exact ids
def test_ids_beyond_int64_are_refused_and_ids_parse_exactly(tmp_path, data):
    """Was: a product_id of 2**63 wrapped to -9223372036854775808 (check and kdd rc 0), two of them then
    read as 'a product listed twice'; ids went through float64 (2**53 + 1 -> 2**53 beside a '5.0')."""
    folder = copy(data, tmp_path)
    valid = folder / "valid.tsv"
    set_field(valid, 2, "product_id", str(2 ** 63))
    set_field(valid, 3, "product_id", str(2 ** 63 + 1))
    with pytest.raises(DataError, match=r"valid.tsv: product_id outside 0..9223372036854775807 on line\(s\) 2, 3 "
                                        r"\(e.g. '9223372036854775808'\)"):
        read_tsv(valid, feature_dim=DIM)
    with pytest.raises(DataError, match="valid.tsv: product_id outside"):
        kdd_run(folder, CHEAP, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    exact = copy(data, tmp_path / "exact")
    set_field(exact / "valid.tsv", 2, "product_id", str(2 ** 53 + 1))
    set_field(exact / "valid.tsv", 3, "product_id", tsv_lines(exact / "valid.tsv")[2][0] + ".0")  # was: float64
    ids = read_tsv(exact / "valid.tsv", feature_dim=DIM).rows["product_id"]
    assert ids.iloc[0] == 2 ** 53 + 1 and ids.dtype == np.int64
    (tmp_path / "a.json").write_text('{"1": [%d]}' % 2 ** 64)
    with pytest.raises(DataError, match=r"a.json: query '1': id outside 0..9223372036854775807"):
        read_answers(tmp_path / "a.json")


# ---------------------------------------------------------------- 3: text inputs that are not UTF-8 text files
def latin1(path):
    """A latin-1 'é' at the start of line 2."""
    raw = path.read_bytes()
    cut = raw.index(b"\n") + 1
    path.write_bytes(raw[:cut] + b"\xe9" + raw[cut:])


def as_folder(path):
    path.unlink()
    path.mkdir()
    (path / "inside.txt").write_text("x")


def as_jpeg(path):
    path.write_bytes(JPEG)


@pytest.mark.parametrize("name", ["valid.tsv", "valid_answer.json", "multimodal_labels.txt"])
@pytest.mark.parametrize("spoil, message", [
    (latin1, r"not UTF-8 text \(line 2: byte 0xe9 at column 1\)"),
    (as_folder, "is a folder, expected a file"),
    (as_jpeg, r"not UTF-8 text \(line 1: byte 0xff at column 1\)"),
])
def test_text_inputs_that_are_not_utf8_files_are_data_errors(data, tmp_path, name, spoil, message):
    """Was: a latin-1 / JPEG .tsv, answer json or labels txt raised UnicodeDecodeError (a traceback); a
    folder named valid_answer.json / multimodal_labels.txt was skipped as 'no valid_answer.json', a
    folder given to `check kdd` raised IsADirectoryError (a traceback)."""
    folder = copy(data, tmp_path)
    spoil(folder / name)
    with pytest.raises(DataError, match=f"{name}: {message}"):
        kdd_run(folder, CHEAP, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    reader = {"valid.tsv": lambda p: read_tsv(p, feature_dim=DIM), "valid_answer.json": read_answers,
              "multimodal_labels.txt": read_labels}[name]
    with pytest.raises(DataError, match=f"{name}: {message}"):
        reader(folder / name)


# ---------------------------------------------------------------- 4: NaN / inf box values
@pytest.mark.parametrize("column, value", [("features", np.nan), ("features", np.inf), ("boxes", -np.inf)])
def test_non_finite_box_values_are_refused_at_load(data, tmp_path, column, value):
    """Was: NaN / inf box features passed `check kdd` and surfaced only at the end of a run as
    'non-finite scores' (after every member had trained)."""
    folder = copy(data, tmp_path)
    poison_features(folder / "valid.tsv", 40, value, column)
    with pytest.raises(DataError, match=rf"valid.tsv: line 40: {column} holds NaN or infinite values "
                                        r"\(1 such line\(s\) in this chunk: 40\)"):
        read_tsv(folder / "valid.tsv", feature_dim=DIM)
    assert main(["check", "kdd", str(folder / "valid.tsv"), "--feature-dim", str(DIM)]) == 2


# ---------------------------------------------------------------- 5: the feature dimension
def test_the_feature_dim_comes_from_the_data_or_names_the_config_that_fits(data, tmp_path, capsys):
    """Was: `prodmatch kdd --data <synth kdd --preset test>` failed on 702 lines of 'features decodes to
    384 bytes, num_boxes needs 24576' (the default config's 2,048-d), naming no config that fits."""
    out = tmp_path / "out"
    assert main(["kdd", "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"prodmatch kdd: error: {data / 'valid.tsv'}: box features are 32-d but config 'kdd' states "
                   "feature_dim: 2048; the shipped config kdd-test is made for 32-d features (--config kdd-test)")
    assert not out.exists()
    unstated = {k: v for k, v in CHEAP.items() if k != "feature_dim"}  # no feature_dim: read from valid.tsv
    result = kdd_run(data, unstated, tmp_path / "run")
    record = json.loads(result["run"].read_text())
    assert record["config"]["feature_dim"] == DIM and set(result["valid"]) == {"random", "overlap"}


# ---------------------------------------------------------------- 6: numbers in KDD configs
@pytest.mark.parametrize("method, message", [
    ({"kind": "two_tower", "options": {"lr": float("nan")}}, r"options.lr: must be a finite number, got nan"),
    ({"kind": "two_tower", "options": {"lr": 0}}, r"options.lr: must be > 0, got 0"),
    ({"kind": "word_match", "options": {"batch_size": 0}}, r"options.batch_size: must be >= 1, got 0"),
    ({"kind": "sentence_match", "options": {"epochs": 0}}, r"options.epochs: must be >= 1, got 0"),
    ({"kind": "word_match", "options": {"pretrain": {"lr": float("inf")}}}, r"pretrain.lr: must be a finite number"),
    # these three were accepted at load and failed (or silently dropped an input) mid-run
    ({"kind": "two_tower", "options": {"box": {"feature_proj": 0}}}, r"method 'm' options: box tower feature_proj: must be >= 1, got 0"),
    ({"kind": "sentence_match", "options": {"boxes": {"label_dim": -1}}}, r"method 'm' options: box tower label_dim: must be >= 1"),
    ({"kind": "lgbm_rerank", "options": {"min_child_samples": -1}}, r"options.min_child_samples: must be >= 1"),
    ({"kind": "lgbm_rerank", "options": {"rounds": 0}}, r"rounds:? must be >= 1"),  # held before too
])
def test_config_numbers_are_refused_when_the_config_loads(method, message):
    """Was: `box.feature_proj: 0` / `boxes.label_dim: -1` (tower sizes) and lgbm_rerank's
    `min_child_samples: -1` loaded fine and failed mid-run or built a 0-wide layer (lr / batch_size /
    epochs / pretrain numbers were already refused by load_config: kept here as a guard)."""
    methods = [{"name": "random", "kind": "random"}, {"name": "m", **method}]
    with pytest.raises(DataError, match=message):
        load_config({**CHEAP, "methods": methods}, KddRunConfig)


# ---------------------------------------------------------------- the command line, table-driven
def _answers(folder, tmp_path):
    stray_answers(folder)
    return ["kdd"], "valid_answer.json: 12 answer(s)"


def _big_id(folder, tmp_path):
    set_field(folder / "valid.tsv", 5, "product_id", "18446744073709551616")
    return ["check", "kdd", str(folder / "valid.tsv"), "--feature-dim", str(DIM)], "valid.tsv: product_id outside"


def _labels_latin1(folder, tmp_path):
    latin1(folder / "multimodal_labels.txt")
    return ["kdd"], "multimodal_labels.txt: not UTF-8 text"


def _jpeg_tsv(folder, tmp_path):
    as_jpeg(folder / "valid.tsv")
    return ["check", "kdd", str(folder / "valid.tsv"), "--feature-dim", str(DIM)], "valid.tsv: not UTF-8 text"


def _answers_folder(folder, tmp_path):
    as_folder(folder / "valid_answer.json")
    return ["kdd"], "valid_answer.json: is a folder"


def _nan_features(folder, tmp_path):
    poison_features(folder / "valid.tsv", 7, np.nan)
    return ["check", "kdd", str(folder / "valid.tsv"), "--feature-dim", str(DIM)], "valid.tsv: line 7: features holds NaN"


def _data_flag_a_file(folder, tmp_path):
    return ["kdd", "--data", str(folder / "valid.tsv")], "valid.tsv is not a folder"


def _config_flag_a_jpeg(folder, tmp_path):
    as_jpeg(tmp_path / "photo.jpg")
    return ["kdd", "--config", str(tmp_path / "photo.jpg")], "photo.jpg: not UTF-8 text"


def _config_not_yaml(folder, tmp_path):
    (tmp_path / "broken.yaml").write_text("name: [unclosed\nmethods: {\n")
    return ["kdd", "--config", str(tmp_path / "broken.yaml")], "broken.yaml: not valid YAML"


def _default_config(folder, tmp_path):
    return ["kdd", "--config", "kdd"], "the shipped config kdd-test is made for 32-d features"


def _config_tower_size(folder, tmp_path):
    path = tmp_path / "bad.yaml"
    bad = {**CHEAP, "methods": CHEAP["methods"] + [{"name": "t", "kind": "two_tower", "options": {"box": {"feature_proj": 0}}}]}
    path.write_text(yaml.safe_dump(bad))
    return ["kdd", "--config", str(path)], "box tower feature_proj: must be >= 1, got 0"


@pytest.mark.parametrize("case", [_answers, _big_id, _labels_latin1, _jpeg_tsv, _answers_folder, _nan_features,
                                  _data_flag_a_file, _config_flag_a_jpeg, _config_not_yaml, _default_config,
                                  _config_tower_size])
def test_cli_refuses_hostile_kdd_input_in_one_line(data, tmp_path, capsys, case):
    """Was: stray answers rc 0; an id past int64 rc 0; latin-1 labels / a JPEG .tsv a UnicodeDecodeError
    traceback; a folder as valid_answer.json 'no valid_answer.json'; NaN features rc 0; --data naming a
    file 'no multimodal_labels.txt'; a JPEG / broken YAML as --config a UnicodeDecodeError / YAMLError
    traceback; the default config 702 lines of wrong lengths; a 0-wide tower loaded."""
    folder = copy(data, tmp_path)
    config = tmp_path / "cheap.yaml"
    config.write_text(yaml.safe_dump(CHEAP))
    argv, names = case(folder, tmp_path)
    out = tmp_path / "out"
    if argv[0] == "kdd":
        argv = (argv + (["--config", str(config)] if "--config" not in argv else [])
                + (["--data", str(folder)] if "--data" not in argv else []) + ["--out", str(out)])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if not line.startswith(("INFO ", "DEBUG ", "WARNING "))]
    assert len(lines) == 1 and lines[0].startswith(f"prodmatch {argv[0]}: error: ") and names in lines[0], err
    assert not out.exists()
