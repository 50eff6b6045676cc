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

from ..errors import DataError, preview
from ..io import data_hashes

COLUMNS = ("product_id", "image_h", "image_w", "num_boxes", "boxes", "features", "class_labels", "query", "query_id")
INT_COLUMNS = ("product_id", "image_h", "image_w", "num_boxes", "query_id")
ARRAYS = {"boxes": (np.float32, 4), "features": (np.float32, None), "class_labels": (np.int64, 1)}  # dtype, per box
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
    (``valid/valid.tsv``, ``valid/valid_answer.json``, ``testA/testA.tsv``); None if in neither."""
    data_dir = Path(data_dir)
    stem = name.split(".")[0].split("_")[0]
    for path in (data_dir / name, data_dir / stem / name):
        if path.is_file():
            return path
    return None


def iter_tsv(path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, feature_dim: int = 2048,
             decode=("boxes", "features", "class_labels")) -> Iterator[BoxChunk]:
    """Stream a train/valid/test .tsv as :class:`BoxChunk` of `chunk_rows` rows, never the whole file.
    Columns in `decode` are base64-decoded and checked against num_boxes (features: x `feature_dim`);
    the others are length-checked from their base64 length only (cheap; bad characters go unseen there)."""
    unknown = set(decode) - set(ARRAYS)
    if unknown:
        raise ValueError(f"decode: unknown column(s) {sorted(unknown)}; known: {sorted(ARRAYS)}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    path = Path(path)
    try:
        reader = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, chunksize=chunk_rows,
                             keep_default_na=False, skip_blank_lines=False, engine="c")
    except (FileNotFoundError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{path}: {err}") from err
    with reader:
        first_line = 2  # line 1 is the header
        while True:
            try:
                frame = next(reader)
            except StopIteration:
                return
            except pd.errors.ParserError as err:
                raise DataError(f"{path}: {err}") from err
            missing = [c for c in COLUMNS if c not in frame.columns]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (header has {', '.join(frame.columns)})")
            yield _chunk(path, frame, first_line, feature_dim, decode)
            first_line += len(frame)


def read_tsv(path, **options) -> BoxChunk:
    """A whole .tsv as one :class:`BoxChunk` (valid/test sizes; use :func:`iter_tsv` for train)."""
    return concat_chunks(list(iter_tsv(path, **options)))


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
        values = pd.to_numeric(frame[col], errors="coerce")
        wrong = (values.isna() | (values != values.round())).to_numpy()
        if wrong.any():
            raise DataError(f"{path}: {col} not an integer on line(s) {preview(lines[wrong].tolist())} "
                            f"(e.g. {frame[col].iloc[int(np.flatnonzero(wrong)[0])]!r})")
        rows[col] = values.to_numpy(np.int64)
    rows["query"] = frame["query"].fillna("").to_numpy(object)
    n_boxes = rows["num_boxes"].to_numpy()
    if (n_boxes < 0).any():
        raise DataError(f"{path}: negative num_boxes on line(s) {preview(lines[n_boxes < 0].tolist())}")
    offsets = np.concatenate([[0], np.cumsum(n_boxes)]).astype(np.int64)
    arrays = {}
    for col, (dtype, per_box) in ARRAYS.items():
        width = feature_dim if per_box is None else per_box
        expected = n_boxes * width * np.dtype(dtype).itemsize
        text = frame[col]
        if col in decode:
            arrays[col] = _decode(path, col, text.to_numpy(object), lines, expected, dtype, width)
        else:
            length = text.str.len().to_numpy() // 4 * 3 - text.str.count("=").clip(upper=2).to_numpy()
            _check_lengths(path, col, length, expected, lines, width)
    return BoxChunk(rows, offsets, **arrays)


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
    answered query has candidates."""
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
    return Candidates(path, data, query_ids, codes.astype(np.int64), queries)


def read_answers(path) -> dict[int, list[int]]:
    """valid_answer.json (or a held-out testA_answer.json): query_id -> its relevant product_ids."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: {err}") from err
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object query_id -> [product_id, ...], got {type(raw).__name__}")
    if not raw:
        raise DataError(f"{path}: no queries: there is nothing to score")
    answers = {}
    for qid, pids in raw.items():
        if not isinstance(pids, list) or not str(qid).strip().isdigit() or not all(str(p).strip().isdigit() for p in pids):
            raise DataError(f"{path}: query {qid!r}: expected a list of integer product ids, got {pids!r}")
        answers[int(qid)] = list(dict.fromkeys(int(p) for p in pids))
    return answers


def read_labels(path) -> list[str]:
    """multimodal_labels.txt: box class id -> name (tab-separated ``id<TAB>name``, a header line allowed);
    ids must be 0..n-1."""
    path = Path(path)
    try:
        lines = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as err:
        raise DataError(f"{path}: {err}") from err
    if lines and not lines[0].split("\t")[0].strip().isdigit():
        lines = lines[1:]
    ids, names = [], []
    for n, line in enumerate(lines, 1):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip().isdigit():
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
