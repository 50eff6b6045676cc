"""KDD Cup 2020 Multimodalities Recall files: chunked .tsv reader with base64 box decoding and checks,
valid_answer.json and multimodal_labels.txt loaders. Errors are DataErrors naming file and line."""
from __future__ import annotations

import base64
import binascii
import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ..config import check_setting
from ..errors import DataError, preview
from ..io import data_hashes

COLUMNS = ("product_id", "image_h", "image_w", "num_boxes", "boxes", "features", "class_labels", "query", "query_id")
INT_COLUMNS = ("product_id", "image_h", "image_w", "num_boxes", "query_id")
ARRAYS = {"boxes": (np.float32, 4), "features": (np.float32, None), "class_labels": (np.int64, 1)}  # dtype, per box
INT64_MAX = int(np.iinfo(np.int64).max)
# exact integer fields: an optional sign, digits (leading zeros dropped), an optional ".0" (no float round trip)
_INTEGER = r"^\s*([+-]?)0*(\d+?)(?:\.0*)?\s*$"
SPLITS = ("train", "valid", "testA", "testB")
LABELS_FILE = "multimodal_labels.txt"
DEFAULT_CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class BoxChunk:
    """Rows of a .tsv chunk: `rows` (the integer columns, query, file `line`) and the decoded box arrays,
    flat over the chunk's boxes with row i's boxes at ``offsets[i]:offsets[i + 1]`` (None: not decoded)."""

    rows: pd.DataFrame
    offsets: np.ndarray
    boxes: np.ndarray | None = None
    features: np.ndarray | None = None
    class_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def box_rows(self) -> np.ndarray:
        """The row (within the chunk) each box belongs to."""
        return np.repeat(np.arange(len(self.rows)), np.diff(self.offsets))


def locate(data_dir, name: str) -> Path | None:
    """`name` in `data_dir`, or in its split sub-folder as the competition's archives unpack it
    (``valid/valid.tsv``, ``valid/valid_answer.json``, ``testA/testA.tsv``); None if in neither.
    A folder of that name is returned too: its reader then refuses it by name (never skipped unseen)."""
    data_dir = Path(data_dir)
    stem = name.split(".")[0].split("_")[0]
    for path in (data_dir / name, data_dir / stem / name):
        if path.exists():
            return path
    return None


def utf8_problem(path) -> str:
    """Where `path` stops being UTF-8 text: ``line N: byte 0x.. at column C`` (the error path only: it
    scans the file line by line up to the first bad byte)."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"line {number}: byte 0x{raw[err.start]:02x} at column {err.start + 1}"
    return "a byte sequence the UTF-8 decoder refused"


def _read_error(path: Path, err: BaseException) -> DataError:
    """A file that cannot be read as text, as one DataError naming it."""
    if isinstance(err, UnicodeDecodeError):
        try:
            where = utf8_problem(path)
        except OSError:
            where = str(err)
        return DataError(f"{path}: not UTF-8 text ({where}); is it the right file?")
    if isinstance(err, IsADirectoryError) or path.is_dir():
        return DataError(f"{path}: is a folder, expected a file")
    if isinstance(err, OSError):
        return DataError(f"{path}: cannot read it ({err.strerror or err})")
    return DataError(f"{path}: {' '.join(str(err).split())}")  # one line (pandas' messages end in newlines)


def read_text(path) -> str:
    """A whole (small) text file as UTF-8 (a byte-order mark dropped); DataError naming the file for a
    folder, a missing or unreadable file, or bytes that are not UTF-8 (with the line)."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise _read_error(path, err) from None


def _tsv_reader(path: Path, chunk_rows: int):
    try:
        return pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, chunksize=chunk_rows,
                           keep_default_na=False, skip_blank_lines=False, engine="c")
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: {err}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise _read_error(path, err) from None


def _next_frame(path: Path, reader) -> pd.DataFrame | None:
    """The reader's next chunk (None at the end) with every read error a DataError naming `path`."""
    try:
        frame = next(reader)
    except StopIteration:
        return None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise _read_error(path, err) from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (header has {', '.join(map(str, frame.columns))})")
    return frame


def feature_dim_of(path, *, chunk_rows: int = 64) -> int | None:
    """The float32 values per box of the first row of .tsv `path` that has boxes (None: no row has any):
    how :func:`iter_tsv` can take the feature dimension from the data."""
    path = Path(path)
    with _tsv_reader(path, chunk_rows) as reader:
        first_line = 2
        while (frame := _next_frame(path, reader)) is not None:
            counts = frame["num_boxes"].str.extract(_INTEGER)[1]
            for i, (count, text) in enumerate(zip(counts, frame["features"])):
                if not isinstance(count, str) or int(count) == 0 or not text:
                    continue  # no boxes, or a bad count the full reader reports with its line
                n = int(count)
                try:
                    nbytes = len(base64.b64decode(text, validate=True))
                except (binascii.Error, ValueError) as err:
                    raise DataError(f"{path}: line {first_line + i}: features is not valid base64 ({err})") from None
                if nbytes % (4 * n):
                    raise DataError(f"{path}: line {first_line + i}: features decode to {nbytes} bytes, not a whole "
                                    f"number of float32 values for each of its {n} boxes")
                return nbytes // (4 * n)
            first_line += len(frame)
    return None


def iter_tsv(path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, feature_dim: int = 2048,
             decode=("boxes", "features", "class_labels")) -> Iterator[BoxChunk]:
    """Stream a train/valid/test .tsv as :class:`BoxChunk` of `chunk_rows` rows, never the whole file.
    Columns in `decode` are base64-decoded and checked against num_boxes (features: x `feature_dim`);
    the others are length-checked from their base64 length only (cheap; bad characters go unseen there)."""
    unknown = set(decode) - set(ARRAYS)
    if unknown:
        raise ValueError(f"decode: unknown column(s) {sorted(unknown)}; known: {sorted(ARRAYS)}")
    check_setting("chunk_rows", chunk_rows)
    check_setting("feature_dim", feature_dim)
    path = Path(path)
    with _tsv_reader(path, chunk_rows) as reader:
        first_line = 2  # line 1 is the header
        while (frame := _next_frame(path, reader)) is not None:
            yield _chunk(path, frame, first_line, feature_dim, decode)
            first_line += len(frame)


def read_tsv(path, **options) -> BoxChunk:
    """A whole .tsv as one :class:`BoxChunk` (valid/test sizes; use :func:`iter_tsv` for train)."""
    chunks = [c for c in iter_tsv(path, **options) if len(c)]
    if not chunks:
        raise DataError(f"{path}: no rows (a header at most)")
    return concat_chunks(chunks)


def concat_chunks(chunks: list[BoxChunk]) -> BoxChunk:
    """One chunk from several (offsets shifted, arrays concatenated)."""
    if not chunks:
        raise DataError("no rows")
    sizes = [c.offsets[-1] for c in chunks]
    starts = np.cumsum([0] + sizes[:-1])
    offsets = np.concatenate([[0]] + [c.offsets[1:] + s for c, s in zip(chunks, starts)]).astype(np.int64)
    arrays = {name: None if chunks[0].__dict__[name] is None else np.concatenate([c.__dict__[name] for c in chunks])
              for name in ARRAYS}
    return BoxChunk(pd.concat([c.rows for c in chunks], ignore_index=True), offsets, **arrays)


def _chunk(path: Path, frame: pd.DataFrame, first_line: int, feature_dim: int, decode) -> BoxChunk:
    lines = np.arange(first_line, first_line + len(frame))
    empty = frame[list(INT_COLUMNS)].isna() | (frame[list(INT_COLUMNS)] == "")
    empty["query"] = frame["query"].isna()  # an empty query string is allowed, a missing field is not
    frame = frame.fillna({c: "" for c in ARRAYS})  # a box-less row's arrays are empty; lengths are checked below
    bad = empty.any(axis=1).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        cols = [c for c in empty.columns if empty.iloc[i][c]]
        raise DataError(f"{path}: line {lines[i]}: empty {', '.join(cols)} ({int(bad.sum())} line(s) with empty fields "
                        f"in this chunk: {preview(lines[bad].tolist())})")
    rows = pd.DataFrame({"line": lines})
    for col in INT_COLUMNS:
        rows[col] = _integers(path, col, frame[col], lines)
    rows["query"] = frame["query"].fillna("").to_numpy(object)
    n_boxes = rows["num_boxes"].to_numpy()
    offsets = np.concatenate([[0], np.cumsum(n_boxes)]).astype(np.int64)
    arrays = {}
    for col, (dtype, per_box) in ARRAYS.items():
        width = feature_dim if per_box is None else per_box
        expected = n_boxes * width * np.dtype(dtype).itemsize
        text = frame[col]
        if col in decode:
            arrays[col] = _decode(path, col, text.to_numpy(object), lines, expected, dtype, width)
            if arrays[col].dtype.kind == "f":
                _check_finite(path, col, arrays[col], n_boxes, lines)
        else:
            length = text.str.len().to_numpy() // 4 * 3 - text.str.count("=").clip(upper=2).to_numpy()
            _check_lengths(path, col, length, expected, lines, width)
    return BoxChunk(rows, offsets, **arrays)


def _integers(path: Path, col: str, text: pd.Series, lines: np.ndarray) -> np.ndarray:
    """An integer column parsed exactly (no float round trip: an id past 2**53 keeps its digits) and
    refused outside 0..INT64_MAX (numpy would wrap a larger one to a negative id)."""
    parts = text.str.extract(_INTEGER)
    digits = parts[1]
    wrong = digits.isna().to_numpy()
    if wrong.any():
        raise DataError(f"{path}: {col} not an integer on line(s) {preview(lines[wrong].tolist())} "
                        f"(e.g. {text.iloc[int(np.flatnonzero(wrong)[0])]!r})")
    size = digits.str.len().to_numpy()
    outside = (((parts[0] == "-") & (digits != "0")).to_numpy() | (size > 19)
               | ((size == 19) & (digits > str(INT64_MAX)).to_numpy()))
    if outside.any():
        raise DataError(f"{path}: {col} outside 0..{INT64_MAX} on line(s) {preview(lines[outside].tolist())} "
                        f"(e.g. {text.iloc[int(np.flatnonzero(outside)[0])].strip()!r})")
    return digits.to_numpy(object).astype(np.int64)


def _check_finite(path: Path, col: str, values: np.ndarray, n_boxes: np.ndarray, lines: np.ndarray) -> None:
    """DataError naming the lines whose decoded floats hold NaN or infinity."""
    finite = np.isfinite(values).reshape(len(values), -1).all(axis=1) if values.size else np.ones(len(values), bool)
    if not finite.all():
        bad = np.unique(np.repeat(lines, n_boxes)[~finite])
        raise DataError(f"{path}: line {bad[0]}: {col} holds NaN or infinite values ({len(bad)} such line(s) in "
                        f"this chunk: {preview(bad.tolist())})")


def _decode(path: Path, col: str, text: np.ndarray, lines: np.ndarray, expected: np.ndarray, dtype, width: int) -> np.ndarray:
    """Base64 strings -> one flat array (boxes x width), each row's byte length checked."""
    try:
        raw = [base64.b64decode(s, validate=True) for s in text]
    except (binascii.Error, ValueError):
        for s, line in zip(text, lines):  # the error path only: find the offending line
            try:
                base64.b64decode(s, validate=True)
            except (binascii.Error, ValueError) as err:
                raise DataError(f"{path}: line {line}: {col} is not valid base64 ({err})") from err
        raise
    _check_lengths(path, col, np.fromiter(map(len, raw), np.int64, len(raw)), expected, lines, width)
    flat = np.frombuffer(b"".join(raw), dtype=dtype)
    return flat.reshape(-1, width) if width > 1 else flat


def _check_lengths(path: Path, col: str, nbytes: np.ndarray, expected: np.ndarray, lines: np.ndarray, width: int) -> None:
    wrong = nbytes != expected
    if wrong.any():
        i = int(np.flatnonzero(wrong)[0])
        raise DataError(f"{path}: line {lines[i]}: {col} decodes to {nbytes[i]} bytes, num_boxes needs {expected[i]} "
                        f"(num_boxes x {width} values{': is feature_dim right?' if col == 'features' else ''}); "
                        f"{int(wrong.sum())} such line(s) in this chunk: {preview(lines[wrong].tolist())}")


@dataclass(frozen=True)
class Candidates:
    """A valid/test split: its rows (a :class:`BoxChunk`), grouped by query: row r belongs to query
    ``query_ids[codes[r]]`` whose text is ``queries[codes[r]]``."""

    path: Path
    data: BoxChunk
    query_ids: np.ndarray
    codes: np.ndarray
    queries: np.ndarray

    @property
    def product_ids(self) -> np.ndarray:
        return self.data.rows["product_id"].to_numpy()


def read_candidates(path, answers: dict[int, list[int]] | None = None, answers_path=None, **options) -> Candidates:
    """A valid/test .tsv whose rows sharing query_id are that query's candidates (`options`: :func:`iter_tsv`).
    Checked: one query text per query_id, no product twice in a query, and (with `answers`) every
    answered query has candidates and every answer is one of its query's candidates."""
    path = Path(path)
    data = read_tsv(path, **options)
    rows = data.rows
    query_ids, first, codes = np.unique(rows["query_id"].to_numpy(), return_index=True, return_inverse=True)
    texts = rows["query"].to_numpy(object)
    queries = texts[first]
    differ = texts != queries[codes]
    if differ.any():
        raise DataError(f"{path}: query_id with more than one query text on line(s) "
                        f"{preview(rows['line'].to_numpy()[differ].tolist())}")
    twice = rows.duplicated(["query_id", "product_id"]).to_numpy()
    if twice.any():
        raise DataError(f"{path}: a product listed twice for one query on line(s) {preview(rows['line'].to_numpy()[twice].tolist())}")
    if answers is not None:
        lacking = sorted(set(answers) - set(query_ids.tolist()))
        if lacking:
            raise DataError(f"{answers_path or 'answers'}: query_id(s) {preview(lacking)} have no candidates in {path}")
        listed = set(zip(rows["query_id"].tolist(), rows["product_id"].tolist()))
        stray = {q: [p for p in ps if (q, p) not in listed] for q, ps in answers.items()}
        stray = {q: ps for q, ps in stray.items() if ps}
        if stray:
            raise DataError(f"{answers_path or 'answers'}: {sum(map(len, stray.values()))} answer(s) name products that "
                            f"are not among their query's candidates in {path}, query_id(s) {preview(stray)}")
    return Candidates(path, data, query_ids, codes.astype(np.int64), queries)


def read_answers(path) -> dict[int, list[int]]:
    """valid_answer.json (or a held-out testA_answer.json): query_id -> its relevant product_ids."""
    path = Path(path)
    try:
        raw = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not JSON ({err})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object query_id -> [product_id, ...], got {type(raw).__name__}")
    if not raw:
        raise DataError(f"{path}: no queries: there is nothing to score")
    answers = {}
    for qid, pids in raw.items():
        if not isinstance(pids, list) or not _id(qid) or not all(_id(p) for p in pids):
            got = preview(pids) if isinstance(pids, list) else repr(pids)
            raise DataError(f"{path}: query {qid!r}: expected a list of integer product ids, got {got}")
        ids = [int(str(p).strip()) for p in pids]
        if int(qid) > INT64_MAX or any(p > INT64_MAX for p in ids):
            raise DataError(f"{path}: query {qid!r}: id outside 0..{INT64_MAX}")
        if int(qid) in answers:
            raise DataError(f"{path}: query_id {int(qid)} listed twice (as {qid!r} and before)")
        answers[int(qid)] = list(dict.fromkeys(ids))
    return answers


def _id(value) -> bool:
    """A JSON id: an integer (not a bool, not a float) or a string of ASCII digits."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.strip().isascii() and value.strip().isdigit()


def read_labels(path) -> list[str]:
    """multimodal_labels.txt: box class id -> name (tab-separated ``id<TAB>name``, a header line allowed);
    ids must be 0..n-1."""
    path = Path(path)
    lines = [line.rstrip("\r\n") for line in read_text(path).splitlines() if line.strip()]
    if lines and not lines[0].split("\t")[0].strip().isdigit():
        lines = lines[1:]
    ids, names = [], []
    for n, line in enumerate(lines, 1):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip().isascii() or not parts[0].strip().isdigit():
            raise DataError(f"{path}: expected 'id<TAB>name', got {line!r}")
        ids.append(int(parts[0]))
        names.append(parts[1].strip())
    if sorted(ids) != list(range(len(ids))):
        raise DataError(f"{path}: class ids must be 0..{len(ids) - 1}, each once; got {preview(sorted(ids))}")
    return [name for _, name in sorted(zip(ids, names))]


def kdd_hashes(data_dir, names) -> dict:
    """SHA-256 of each of `names` (found by :func:`locate`) in `data_dir`, keyed by its relative path."""
    data_dir = Path(data_dir)
    paths = [p for p in (locate(data_dir, n) for n in names) if p is not None]
    return data_hashes(data_dir, names=tuple(os.path.relpath(p, data_dir) for p in paths))
