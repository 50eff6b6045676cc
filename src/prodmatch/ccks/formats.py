"""Product benchmarks of the entity-matching field as the pair stage's items and pairs.

Two layouts: Ditto lines (``train.txt``/``valid.txt``/``test.txt``, WDC: ``train.txt.<size>``),
``COL attr VAL value ... <TAB> COL attr VAL value ... <TAB> label``, and DeepMatcher CSVs
(``tableA.csv``, ``tableB.csv``, ``train/valid/test.csv`` of ``ltable_id, rtable_id, label``).
``read_benchmark(folder[, train_size])`` returns a :class:`Benchmark`; bad input is a DataError.
"""
from __future__ import annotations

import codecs
import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import DataError, preview

log = logging.getLogger(__name__)

TRAIN_SIZES = ("small", "medium", "large")
SPLITS = ("train", "valid", "test")
PAIR_KEY = ["src_item_id", "tgt_item_id"]
RESERVED = ("item_id", "item_pvs", "cate_id")
TITLE_ATTRIBUTES = ("title", "name")
PAIR_COLUMNS = ("ltable_id", "rtable_id", "label")

# A marker is "COL <attr> VAL" between spaces; a "COL" inside a value not followed by "<attr> VAL" is text.
_MARKER = re.compile(r"(?<!\S)COL (\S+) VAL(?!\S)")
_SIZED = re.compile(r"(train|valid)\.txt\.(\w+)")


@dataclass
class Benchmark:
    """Items (one row per distinct record) and the labelled pairs of each split.

    ``items``: item_id, title, item_pvs, cate_id (""), then one column per attribute (the attribute
    ``title``, when there is one, is the title column). Pair frames: src_item_id, tgt_item_id,
    item_label (int64), line (int64, the pair's line in its file). `repeats`: per split, the number
    of lines that repeat an earlier line's pair (kept: the benchmark counts each).
    """

    items: pd.DataFrame
    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    attributes: tuple[str, ...]
    files: dict[str, Path]
    format: str
    train_size: str | None
    warnings: list[str] = field(default_factory=list)
    repeats: dict[str, int] = field(default_factory=dict)


def detect_format(folder: str | os.PathLike) -> str | None:
    """"ditto" if the folder has test.txt, "deepmatcher" if it has tableA.csv, else None."""
    folder = Path(folder)
    if (folder / "test.txt").is_file():
        return "ditto"
    if (folder / "tableA.csv").is_file():
        return "deepmatcher"
    return None


def train_sizes(folder: str | os.PathLike) -> list[str]:
    """The train sizes a Ditto folder offers (its ``train.txt.<size>`` files), smallest first."""
    return _sizes(Path(folder), "train")


def read_benchmark(folder: str | os.PathLike, train_size: str | None = None) -> Benchmark:
    """Read a Ditto or DeepMatcher benchmark folder; `train_size` picks a WDC training size."""
    folder = Path(folder)
    kind = detect_format(folder)
    if kind == "ditto":
        return _read_ditto(folder, train_size)
    if kind == "deepmatcher":
        return _read_deepmatcher(folder, train_size)
    raise DataError(_not_a_benchmark(folder))


def record_id(pairs: list[tuple[str, str]]) -> str:
    """Content key of a Ditto record: "r" + 16 hex chars of sha1 over its stripped (attr, value) pairs."""
    text = "\x1f".join(f"{attr}\x1e{value}" for attr, value in pairs)
    return "r" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def parse_side(text: str, where: str) -> list[tuple[str, str]]:
    """(attr, stripped value) pairs of one ``COL attr VAL value ...`` side; `where` names it in errors."""
    text = text.strip()
    marks = list(_MARKER.finditer(text))
    if not marks or marks[0].start() != 0:
        got = f" (starts {text[:30]!r})" if text else " (it is empty)"
        raise DataError(f"{where} does not start with 'COL <attribute> VAL'{got}")
    ends = [m.start() for m in marks[1:]] + [len(text)]
    pairs = [(m.group(1), text[m.end():end].strip()) for m, end in zip(marks, ends)]
    _check_attributes([attr for attr, _ in pairs], where)
    return pairs


def _check_attributes(attributes: list[str], where: str) -> None:
    reserved = [a for a in attributes if a in RESERVED]
    if reserved:
        raise DataError(f"{where}: attribute name {reserved[0]!r} is reserved ({', '.join(RESERVED)} are item columns)")
    seen: set[str] = set()
    twice = [a for a in attributes if a in seen or seen.add(a)]
    if twice:
        raise DataError(f"{where}: attribute {twice[0]!r} is listed twice")


# ---- Ditto


def _sizes(folder: Path, split: str) -> list[str]:
    found = [m.group(2) for p in folder.glob(f"{split}.txt.*")
             if (m := _SIZED.fullmatch(p.name)) and p.is_file()]
    rank = {size: i for i, size in enumerate(TRAIN_SIZES)}
    return sorted(found, key=lambda s: (rank.get(s, len(rank)), s))


def _ditto_files(folder: Path, train_size: str | None) -> tuple[dict[str, Path], str | None]:
    """The split files to read and the train size used (None for a folder with one train.txt)."""
    sizes = train_sizes(folder)
    if (folder / "train.txt").is_file() or not sizes:
        files = {split: folder / f"{split}.txt" for split in SPLITS}
        _require(files, folder)
        if train_size is not None:
            raise DataError(f"{folder}: train size {train_size!r} given, but this benchmark has one train size "
                            "(train.txt)")
        return files, None
    offered = ", ".join(sizes)
    if train_size is None:
        if len(sizes) > 1:
            raise DataError(f"{folder}: {folder.name} offers train sizes {offered}: pass --train-size")
        train_size = sizes[0]
    if train_size not in sizes:
        raise DataError(f"{folder}: unknown train size {train_size!r}; {folder.name} offers {offered}")
    valid = folder / f"valid.txt.{train_size}"
    if not valid.is_file():
        valids = _sizes(folder, "valid")
        if not valids:
            raise DataError(f"{folder}: no valid.txt.{train_size} nor any valid.txt.<size> (train sizes available: "
                            f"{offered})")
        # the WDC corpus has no valid set of its largest size; its protocol uses the largest there is
        valid = folder / f"valid.txt.{valids[-1]}"
        log.info("%s: no valid.txt.%s, using %s", folder, train_size, valid.name)
    return {"train": folder / f"train.txt.{train_size}", "valid": valid, "test": folder / "test.txt"}, train_size


def _require(files: dict[str, Path], folder: Path) -> None:
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}")


class _Records:
    """Distinct Ditto records met so far, keyed by content; attributes in first-seen order."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, str]] = {}
        self.attributes: dict[str, None] = {}
        self._ids: dict[str, str] = {}  # raw side text -> id: most sides repeat across lines

    def add(self, text: str, where: str) -> str:
        item_id = self._ids.get(text)
        if item_id is None:
            pairs = parse_side(text, where)
            item_id = record_id(pairs)
            if item_id not in self.rows:
                self.rows[item_id] = dict(pairs)
                self.attributes.update(dict.fromkeys(attr for attr, _ in pairs))
            self._ids[text] = item_id
        return item_id


def _read_ditto(folder: Path, train_size: str | None) -> Benchmark:
    files, size = _ditto_files(folder, train_size)
    records = _Records()
    pairs = {split: _read_ditto_pairs(files[split], records) for split in SPLITS}
    return _benchmark("ditto", records.rows, list(records.attributes), pairs, files, size)


def _read_ditto_pairs(path: Path, records: _Records) -> pd.DataFrame:
    src, tgt, labels, lines = [], [], [], []
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"{path}: line {number} has {len(fields)} tab-separated field(s), expected 3 "
                            "(left offer, right offer, label)")
        left, right, label = fields
        label = label.strip()
        if label not in ("0", "1"):
            raise DataError(f"{path}: line {number}: label {label!r} is not 0 or 1")
        src.append(records.add(left, f"{path}: line {number}: left offer"))
        tgt.append(records.add(right, f"{path}: line {number}: right offer"))
        labels.append(int(label))
        lines.append(number)
    if not lines:
        raise DataError(f"{path}: file is empty")
    return _pair_frame(src, tgt, labels, lines)


def _read_text(path: Path) -> str:
    """The file as text; a byte sequence that is not UTF-8 is a DataError naming its line."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}: line {line} is not UTF-8 (byte {data[exc.start]:#04x})") from None


# ---- DeepMatcher


def _read_deepmatcher(folder: Path, train_size: str | None) -> Benchmark:
    files = {split: folder / f"{split}.csv" for split in SPLITS}
    files.update(tableA=folder / "tableA.csv", tableB=folder / "tableB.csv")
    _require(files, folder)
    if train_size is not None:
        raise DataError(f"{folder}: train size {train_size!r} given, but this benchmark has one train size "
                        "(train.csv)")
    rows: dict[str, dict[str, str]] = {}
    attributes: dict[str, None] = {}
    tables = {}
    for table, prefix in (("tableA", "a"), ("tableB", "b")):
        table_rows, table_attributes = _read_table(files[table], prefix)
        rows.update(table_rows)
        attributes.update(dict.fromkeys(table_attributes))
        tables[table] = table_rows
    pairs = {split: _read_csv_pairs(files[split], tables) for split in SPLITS}
    return _benchmark("deepmatcher", rows, list(attributes), pairs, files, None)


def _read_csv(path: Path) -> pd.DataFrame:
    text = _read_text(path)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None
    if not len(frame):
        raise DataError(f"{path}: file is empty (a header, no rows)")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_table(path: Path, prefix: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """``{prefix + id: {attr: stripped value}}`` of a DeepMatcher table, and its attributes."""
    frame = _read_csv(path)
    if "id" not in frame.columns:
        raise DataError(f"{path}: no 'id' column (columns: {preview(frame.columns)})")
    attributes = [c for c in frame.columns if c != "id"]
    if not attributes:
        raise DataError(f"{path}: no attribute columns besides 'id'")
    _check_attributes(attributes, str(path))
    ids = frame["id"].str.strip()
    lines = pd.RangeIndex(2, len(frame) + 2)
    if (ids == "").any():
        raise DataError(f"{path}: empty id on line(s) {preview(lines[(ids == '').to_numpy()].tolist())}")
    if ids.duplicated().any():
        raise DataError(f"{path}: duplicate id(s) {preview(ids[ids.duplicated()].unique().tolist())}")
    values = {attr: frame[attr].str.strip().tolist() for attr in attributes}
    rows = {prefix + item_id: {attr: values[attr][i] for attr in attributes}
            for i, item_id in enumerate(ids.tolist())}
    return rows, attributes


def _read_csv_pairs(path: Path, tables: dict[str, dict]) -> pd.DataFrame:
    frame = _read_csv(path)
    missing = [c for c in PAIR_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {preview(missing)} (columns: {preview(frame.columns)})")
    lines = pd.RangeIndex(2, len(frame) + 2)  # line 1 is the header
    labels = frame["label"].str.strip()
    bad = ~labels.isin(["0", "1"])
    if bad.any():
        first = int(bad.to_numpy().argmax())
        raise DataError(f"{path}: {int(bad.sum())} label(s) not 0 or 1, first on line {lines[first]}: "
                        f"{labels.iloc[first]!r}")
    ids = {}
    for column, table, prefix in (("ltable_id", "tableA", "a"), ("rtable_id", "tableB", "b")):
        ids[column] = prefix + frame[column].str.strip()
        unknown = ~ids[column].isin(tables[table].keys())
        if unknown.any():
            first = int(unknown.to_numpy().argmax())
            raise DataError(f"{path}: {int(unknown.sum())} {column}(s) not in {table}.csv, first on line "
                            f"{lines[first]}: {preview(frame[column][unknown].unique().tolist())}")
    return _pair_frame(ids["ltable_id"].tolist(), ids["rtable_id"].tolist(), labels.astype("int64").tolist(),
                       list(lines))


# ---- shared


def _pair_frame(src: list, tgt: list, labels: list, lines: list) -> pd.DataFrame:
    return pd.DataFrame({"src_item_id": pd.Series(src, dtype=object), "tgt_item_id": pd.Series(tgt, dtype=object),
                         "item_label": pd.Series(labels, dtype="int64"), "line": pd.Series(lines, dtype="int64")})


def _benchmark(kind: str, rows: dict[str, dict[str, str]], attributes: list[str], pairs: dict[str, pd.DataFrame],
               files: dict[str, Path], train_size: str | None) -> Benchmark:
    items = items_frame(rows, attributes)
    titles = dict(zip(items["item_id"], items["title"]))
    repeats, warnings = {}, []
    for split in SPLITS:
        repeats[split], found = _repeats_and_conflicts(pairs[split], files[split], titles)
        warnings += found
    return Benchmark(items, pairs["train"], pairs["valid"], pairs["test"], tuple(attributes), files, kind,
                     train_size, warnings, repeats)


def items_frame(rows: dict[str, dict[str, str]], attributes: list[str]) -> pd.DataFrame:
    """The items frame of ``{item_id: {attr: value}}``: title from ``title``, else ``name``, else the
    first attribute; the other non-empty attributes as ``attr#:#value#;#...`` pvs."""
    title_attr = next((a for a in TITLE_ATTRIBUTES if a in attributes), attributes[0])
    others = [a for a in attributes if a != title_attr]
    records = list(rows.values())
    pvs = ["#;#".join(f"{_pvs_text(a)}#:#{_pvs_text(v)}" for a in others if (v := rec.get(a, "")))
           for rec in records]
    columns = {"item_id": list(rows), "title": [rec.get(title_attr, "") for rec in records], "item_pvs": pvs,
               "cate_id": [""] * len(records)}
    columns.update({a: [rec.get(a, "") for rec in records] for a in attributes if a != "title"})
    return pd.DataFrame(columns, dtype=object)


def _pvs_text(text: str) -> str:
    return text.replace("#;#", " ").replace("#:#", " ")


def _repeats_and_conflicts(pairs: pd.DataFrame, path: Path, titles: dict[str, str]) -> tuple[int, list[str]]:
    """Lines repeating an earlier line's pair (logged), and a warning per pair listed with both labels."""
    repeats = int(pairs.duplicated(PAIR_KEY).sum())
    if not repeats:
        return 0, []
    log.info("%s: %d repeated pair lines kept (the benchmark counts each)", path.name, repeats)
    shared = pairs[pairs.duplicated(PAIR_KEY, keep=False)]
    warnings = []
    for (src, _), group in shared.groupby(PAIR_KEY, sort=False):
        if group["item_label"].nunique() > 1:
            message = (f"{path.name}: pair on lines {_and(group['line'].tolist())} is listed with both labels 0 and 1 "
                       f"(left: {_short(titles[src] or src)!r})")
            log.warning(message)
            warnings.append(message)
    return repeats, warnings


def _and(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers[:-1])) + f" and {numbers[-1]}"


def _short(text: str, width: int = 40) -> str:
    if len(text) <= width:
        return text
    cut = text[:width]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + " ..."


def _not_a_benchmark(folder: Path) -> str:
    if not folder.is_dir():
        return f"{folder}: no such folder"
    if any(folder.glob("train.txt*")) or any(folder.glob("valid.txt*")):
        return f"{folder}: missing test.txt (a Ditto benchmark has train, valid and test files)"
    if any((folder / name).is_file() for name in ("tableB.csv", "train.csv", "valid.csv", "test.csv")):
        return f"{folder}: missing tableA.csv (a DeepMatcher benchmark has tableA, tableB, train, valid and test CSVs)"
    return f"{folder}: not a benchmark folder: neither Ditto (test.txt) nor DeepMatcher (tableA.csv)"
