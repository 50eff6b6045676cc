"""Entity-matching benchmark readers (Ditto lines, DeepMatcher CSVs) on small hand-made folders."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd
import pytest

from prodmatch.ccks.formats import TRAIN_SIZES, detect_format, read_benchmark, train_sizes
from prodmatch.errors import DataError

REAL_ABT_BUY = Path(__file__).resolve().parents[2] / "shared" / "data" / "em_products" / "abt_buy"

# the same offer A on the left in train and on the right in test, with an empty price
A = "COL title VAL sony cyber-shot dsc-w120  COL brand VAL sony COL price VAL "
B = "COL title VAL olympus fe-360 COL pink COL brand VAL olympus COL price VAL 104.95"
C = "COL title VAL canon a590 COL brand VAL COL price VAL 99#;#usd"
A_PAIRS = [("title", "sony cyber-shot dsc-w120"), ("brand", "sony"), ("price", "")]
B_PAIRS = [("title", "olympus fe-360 COL pink"), ("brand", "olympus"), ("price", "104.95")]
C_PAIRS = [("title", "canon a590"), ("brand", ""), ("price", "99#;#usd")]


def rid(pairs):
    text = "\x1f".join(f"{attr}\x1e{value}" for attr, value in pairs)
    return "r" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def write(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def line(left: str, right: str, label: str) -> str:
    return f"{left}\t{right}\t{label}"


def ditto(folder: Path, train=None, valid=None, test=None) -> Path:
    write(folder, "train.txt", train or [line(A, B, "0")])
    write(folder, "valid.txt", valid or [line(B, C, "0")])
    write(folder, "test.txt", test or [line(C, A, "1")])
    return folder


def pairs(src, tgt, labels, lines) -> pd.DataFrame:
    return pd.DataFrame({"src_item_id": pd.Series(src, dtype=object), "tgt_item_id": pd.Series(tgt, dtype=object),
                         "item_label": pd.Series(labels, dtype="int64"), "line": pd.Series(lines, dtype="int64")})


def test_ditto_records_are_items_shared_across_pairs_and_splits(tmp_path):
    folder = ditto(tmp_path / "abt", train=[line(A, B, "0"), "", line(A, C, " 1 ")], test=[line(C, A, "1")])
    bench = read_benchmark(folder)
    a, b, c = rid(A_PAIRS), rid(B_PAIRS), rid(C_PAIRS)
    expected = pd.DataFrame({
        "item_id": [a, b, c],
        "title": ["sony cyber-shot dsc-w120", "olympus fe-360 COL pink", "canon a590"],
        "item_pvs": ["brand#:#sony", "brand#:#olympus#;#price#:#104.95", "price#:#99 usd"],
        "cate_id": ["", "", ""],
        "brand": ["sony", "olympus", ""],
        "price": ["", "104.95", "99#;#usd"],
    }, dtype=object)
    pd.testing.assert_frame_equal(bench.items, expected)
    pd.testing.assert_frame_equal(bench.train, pairs([a, a], [b, c], [0, 1], [1, 3]))
    pd.testing.assert_frame_equal(bench.valid, pairs([b], [c], [0], [1]))
    pd.testing.assert_frame_equal(bench.test, pairs([c], [a], [1], [1]))
    assert bench.attributes == ("title", "brand", "price")
    assert bench.files == {split: folder / f"{split}.txt" for split in ("train", "valid", "test")}
    assert (bench.format, bench.train_size, bench.warnings) == ("ditto", None, [])
    assert bench.repeats == {"train": 0, "valid": 0, "test": 0}
    assert detect_format(folder) == "ditto" and train_sizes(folder) == []


def test_title_from_name_without_a_title_attribute(tmp_path):
    left = "COL name VAL lg microwave COL description VAL 2.0 cu ft COL price VAL 199"
    right = "COL name VAL lg oven COL description VAL  COL price VAL 99"
    folder = ditto(tmp_path / "abt", train=[line(left, right, "1")], valid=[line(left, right, "1")],
                   test=[line(right, left, "0")])
    bench = read_benchmark(folder)
    assert bench.attributes == ("name", "description", "price")
    assert list(bench.items.columns) == ["item_id", "title", "item_pvs", "cate_id", "name", "description", "price"]
    assert bench.items["title"].tolist() == ["lg microwave", "lg oven"]
    assert bench.items["name"].tolist() == ["lg microwave", "lg oven"]
    assert bench.items["item_pvs"].tolist() == ["description#:#2.0 cu ft#;#price#:#199", "price#:#99"]
    assert bench.items["description"].tolist() == ["2.0 cu ft", ""]


def test_title_from_first_attribute_and_order_independent_columns(tmp_path):
    left = "COL model VAL x100 COL maker VAL acme"
    right = "COL maker VAL beta COL model VAL y200"  # other order: columns still by attribute
    folder = ditto(tmp_path / "d", train=[line(left, right, "0")], valid=[line(left, right, "0")],
                   test=[line(left, right, "0")])
    bench = read_benchmark(folder)
    assert bench.attributes == ("model", "maker")
    assert bench.items["title"].tolist() == ["x100", "y200"]
    assert bench.items["maker"].tolist() == ["acme", "beta"]
    assert bench.items["item_pvs"].tolist() == ["maker#:#acme", "maker#:#beta"]


def test_repeated_pairs_are_kept_and_label_conflicts_warned(tmp_path, caplog):
    long_title = "COL title VAL sony cyber-shot dsc-w120 pink 7.2 megapixel digital camera"
    folder = ditto(tmp_path / "abt",
                   valid=[line(long_title, B, "0"), line(A, B, "0"), line(long_title, B, "1")],
                   test=[line(A, B, "1"), line(A, C, "0"), line(A, B, "1")])
    with caplog.at_level(logging.INFO, logger="prodmatch.ccks.formats"):
        bench = read_benchmark(folder)
    a, b, c = rid(A_PAIRS), rid(B_PAIRS), rid(C_PAIRS)
    pd.testing.assert_frame_equal(bench.test, pairs([a, a, a], [b, c, b], [1, 0, 1], [1, 2, 3]))
    assert len(bench.valid) == 3
    assert bench.repeats == {"train": 0, "valid": 1, "test": 1}
    message = ("valid.txt: pair on lines 1 and 3 is listed with both labels 0 and 1 "
               "(left: 'sony cyber-shot dsc-w120 pink 7.2 ...')")
    assert bench.warnings == [message]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [message]
    assert "test.txt: 1 repeated pair lines kept (the benchmark counts each)" in caplog.messages


@pytest.mark.parametrize("files, size, match", [
    ({"train.txt": [line(A, B, "0"), f"{A}\t1"]}, None, r"train\.txt: line 2 has 2 tab-separated field\(s\)"),
    ({"train.txt": [line(A, B, "0"), "", line(A, B, "2")]}, None, r"train\.txt: line 3: label '2' is not 0 or 1"),
    ({"train.txt": [line("title VAL x", B, "0")]}, None,
     r"train\.txt: line 1: left offer does not start with 'COL <attribute> VAL'"),
    ({"train.txt": [line(A, "", "0")]}, None, r"train\.txt: line 1: right offer does not start .* empty"),
    ({"train.txt": [line("COL item_id VAL 3", B, "0")]}, None, r"train\.txt: line 1: left offer: .*'item_id' is reserved"),
    ({"train.txt": [line("COL a VAL 1 COL a VAL 2", B, "0")]}, None, r"line 1: left offer: attribute 'a' is listed twice"),
    ({"train.txt": ["", " "]}, None, r"train\.txt: file is empty"),
    ({"train.txt": [line(A, B, "0")]}, "small", r"train size 'small' given, but this benchmark has one train size"),
    ({"valid.txt": None}, None, r"abt: missing valid\.txt"),
])
def test_ditto_errors_name_file_and_line(tmp_path, files, size, match):
    folder = ditto(tmp_path / "abt")
    for name, lines in files.items():
        if lines is None:
            (folder / name).unlink()
        else:
            write(folder, name, lines)
    with pytest.raises(DataError, match=match):
        read_benchmark(folder, size)


def test_non_utf8_line_is_named(tmp_path):
    folder = ditto(tmp_path / "abt")
    (folder / "test.txt").write_bytes(line(A, B, "0").encode() + b"\n" + b"COL title VAL caf\xe9\t" + B.encode() + b"\t1\n")
    with pytest.raises(DataError, match=r"test\.txt: line 2 is not UTF-8"):
        read_benchmark(folder)


def test_missing_test_file_and_non_benchmark_folders(tmp_path):
    folder = ditto(tmp_path / "abt")
    (folder / "test.txt").unlink()
    assert detect_format(folder) is None
    with pytest.raises(DataError, match=r"abt: missing test\.txt"):
        read_benchmark(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: not a benchmark folder: neither Ditto"):
        read_benchmark(tmp_path / "empty")
    with pytest.raises(DataError, match=r"nowhere: no such folder"):
        read_benchmark(tmp_path / "nowhere")


def wdc(folder: Path, names: list[str]) -> Path:
    for i, name in enumerate(names + ["test.txt"]):
        write(folder, name, [line(A, B, "0")] * (i + 1))
    return folder


def test_wdc_train_sizes_pick_their_files(tmp_path):
    folder = wdc(tmp_path / "wdc_computers", ["train.txt.small", "valid.txt.small", "train.txt.large",
                                              "valid.txt.medium"])
    assert train_sizes(folder) == ["small", "large"]
    small = read_benchmark(folder, "small")
    assert [p.name for p in small.files.values()] == ["train.txt.small", "valid.txt.small", "test.txt"]
    assert (small.train_size, len(small.train), len(small.valid), len(small.test)) == ("small", 1, 2, 5)
    large = read_benchmark(folder, "large")
    assert [p.name for p in large.files.values()] == ["train.txt.large", "valid.txt.medium", "test.txt"]
    assert (large.train_size, len(large.train), len(large.valid)) == ("large", 3, 4)
    assert large.repeats == {"train": 2, "valid": 3, "test": 4}
    assert TRAIN_SIZES == ("small", "medium", "large")


def test_wdc_single_size_needs_no_train_size(tmp_path):
    folder = wdc(tmp_path / "wdc_cameras", ["train.txt.medium", "valid.txt.medium"])
    assert read_benchmark(folder).train_size == "medium"


def test_wdc_train_size_errors(tmp_path):
    folder = wdc(tmp_path / "wdc_computers", ["train.txt.medium", "valid.txt.medium", "train.txt.small",
                                              "valid.txt.small"])
    assert train_sizes(folder) == ["small", "medium"]
    with pytest.raises(DataError, match=r"wdc_computers offers train sizes small, medium: pass --train-size"):
        read_benchmark(folder)
    with pytest.raises(DataError, match=r"unknown train size 'large'; wdc_computers offers small, medium"):
        read_benchmark(folder, "large")
    for name in ("valid.txt.small", "valid.txt.medium"):
        (folder / name).unlink()
    with pytest.raises(DataError, match=r"no valid\.txt\.small nor any valid\.txt\.<size> \(train sizes available: "
                                        r"small, medium\)"):
        read_benchmark(folder, "small")


def write_csv(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def deepmatcher(folder: Path, train: str = "ltable_id,rtable_id,label\n1,7,1\n007,8,0\n") -> Path:
    write_csv(folder, "tableA.csv", "id,title,manufacturer,price\n1,sony cam , sony,\n007,canon a590,canon,99\n")
    write_csv(folder, "tableB.csv", "id,title,manufacturer,price,category\n7,sony camera,,12.50,cameras\n"
                                    "8,nikon d40,nikon,NA,\n")
    write_csv(folder, "train.csv", train)
    write_csv(folder, "valid.csv", "ltable_id,rtable_id,label\n007,7,0\n")
    write_csv(folder, "test.csv", "_id,ltable_id,rtable_id,label\n0,1,8,0\n1,1,8,1\n")
    return folder


def test_deepmatcher_folder(tmp_path):
    folder = deepmatcher(tmp_path / "walmart")
    assert detect_format(folder) == "deepmatcher"
    bench = read_benchmark(folder)
    expected = pd.DataFrame({
        "item_id": ["a1", "a007", "b7", "b8"],
        "title": ["sony cam", "canon a590", "sony camera", "nikon d40"],
        "item_pvs": ["manufacturer#:#sony", "manufacturer#:#canon#;#price#:#99",
                     "price#:#12.50#;#category#:#cameras", "manufacturer#:#nikon#;#price#:#NA"],
        "cate_id": ["", "", "", ""],
        "manufacturer": ["sony", "canon", "", "nikon"],
        "price": ["", "99", "12.50", "NA"],
        "category": ["", "", "cameras", ""],
    }, dtype=object)
    pd.testing.assert_frame_equal(bench.items, expected)
    pd.testing.assert_frame_equal(bench.train, pairs(["a1", "a007"], ["b7", "b8"], [1, 0], [2, 3]))
    pd.testing.assert_frame_equal(bench.valid, pairs(["a007"], ["b7"], [0], [2]))
    pd.testing.assert_frame_equal(bench.test, pairs(["a1", "a1"], ["b8", "b8"], [0, 1], [2, 3]))
    assert bench.attributes == ("title", "manufacturer", "price", "category")
    assert (bench.format, bench.train_size, bench.repeats) == ("deepmatcher", None, {"train": 0, "valid": 0, "test": 1})
    assert bench.warnings == ["test.csv: pair on lines 2 and 3 is listed with both labels 0 and 1 (left: 'sony cam')"]
    assert set(bench.files) == {"train", "valid", "test", "tableA", "tableB"}


@pytest.mark.parametrize("train, match", [
    ("ltable_id,rtable_id,label\n1,7,1\n9,8,0\n", r"train\.csv: 1 ltable_id\(s\) not in tableA\.csv, first on line 3: '9'"),
    ("ltable_id,rtable_id,label\n1,1,1\n", r"train\.csv: 1 rtable_id\(s\) not in tableB\.csv, first on line 2: '1'"),
    ("ltable_id,rtable_id\n1,7\n", r"train\.csv: missing column\(s\) 'label'"),
    ("ltable_id,rtable_id,label\n1,7,yes\n", r"train\.csv: 1 label\(s\) not 0 or 1, first on line 2: 'yes'"),
    ("ltable_id,rtable_id,label\n", r"train\.csv: file is empty"),
])
def test_deepmatcher_errors(tmp_path, train, match):
    folder = deepmatcher(tmp_path / "walmart", train)
    with pytest.raises(DataError, match=match):
        read_benchmark(folder)


def test_deepmatcher_train_size_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"one train size \(train\.csv\)"):
        read_benchmark(deepmatcher(tmp_path / "walmart"), "small")


def test_real_abt_buy():
    if not REAL_ABT_BUY.is_dir():
        pytest.skip(f"{REAL_ABT_BUY} not present")
    bench = read_benchmark(REAL_ABT_BUY)
    assert (len(bench.train), len(bench.valid), len(bench.test)) == (5743, 1916, 1916)
    assert bench.attributes == ("name", "description", "price")
    assert bench.repeats["test"] >= 1
    assert bench.items["item_id"].is_unique
