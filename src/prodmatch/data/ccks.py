"""CCKS 2022 task 9.2 ("same item" verification) data layer: JSONL item/pair loaders and checks.

Files per split: ``item_{split}_info.jsonl`` (one item per line), ``item_{split}_pair.jsonl``
(``src_item_id, tgt_item_id[, item_label]``) and ``item_{split}_images/``. Loaders return flat
string frames and raise :class:`prodmatch.errors.DataError` naming the offending lines/ids, so a
bad file fails at load time instead of deep inside a model.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterator

import pandas as pd

from ..errors import DataError, preview
from .images import enforce_image_policy

INFO_FIELDS = (
    "item_id",
    "industry_name",
    "cate_id",
    "cate_name",
    "cate_id_path",
    "cate_name_path",
    "item_image_name",
    "title",
    "item_pvs",
    "sku_pvs",
)
PAIR_FIELDS = ("src_item_id", "tgt_item_id", "item_label")
PVS_ENTRY_SEP = "#;#"
PVS_KV_SEP = "#:#"


def parse_pvs(s: str | None) -> dict[str, list[str]]:
    """Parse a pvs string ``k#:#v#;#k#:#v`` into ``{key: [values in order]}``.

    Keys keep first-appearance order and may repeat (values are appended). Keys and values are
    whitespace-stripped; empty entries and entries with an empty value are skipped. A malformed
    entry without ``#:#`` is kept as a value under the key ``""`` (it is still text a model can
    use). None, NaN and "" give ``{}``.
    """
    if s is None or (isinstance(s, float) and math.isnan(s)) or s is pd.NA:
        return {}
    if not isinstance(s, str):
        raise TypeError(f"pvs must be a string, got {type(s).__name__}")
    out: dict[str, list[str]] = {}
    for entry in s.split(PVS_ENTRY_SEP):
        key, sep, value = entry.partition(PVS_KV_SEP)
        if not sep:
            key, value = "", key
        key, value = key.strip(), value.strip()
        if value:
            out.setdefault(key, []).append(value)
    return out


def read_ccks_items(path: str | os.PathLike) -> pd.DataFrame:
    """Load ``item_*_info.jsonl`` as a flat frame of strings, one row per item.

    Every field of :data:`INFO_FIELDS` is a column (missing, null -> ""); unknown extra fields
    are kept after them. ``item_id`` must be present, non-empty and unique.
    """
    frame, lines = _read_jsonl(path)
    frame = _as_text_columns(frame, INFO_FIELDS)
    empty = frame["item_id"] == ""
    if empty.any():
        raise DataError(f"{path}: item_id missing or empty on line(s) {preview(lines[empty.to_numpy()].tolist())}")
    dup = frame["item_id"].duplicated()
    if dup.any():
        raise DataError(f"{path}: duplicate item_id(s) {preview(frame['item_id'][dup].unique().tolist())}")
    return frame


def read_ccks_pairs(path: str | os.PathLike, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Load ``item_*_pair.jsonl``: string ``src_item_id``/``tgt_item_id``, int ``item_label`` if labelled.

    A file is labelled when any line has ``item_label``; then every line needs "0" or "1".
    With `items` given, every referenced id must be one of ``items.item_id``.
    """
    frame, lines = _read_jsonl(path)
    has_label = "item_label" in frame.columns
    text_fields = PAIR_FIELDS[:2]
    labels = frame.pop("item_label") if has_label else None
    frame = _as_text_columns(frame, text_fields)
    for col in text_fields:
        empty = frame[col] == ""
        if empty.any():
            raise DataError(f"{path}: {col} missing or empty on line(s) {preview(lines[empty.to_numpy()].tolist())}")
    if labels is not None:
        frame.insert(2, "item_label", _parse_labels(labels, lines, path))
    if items is not None:
        _check_known_ids(frame, items, path)
    return frame


def check_ccks_images(items: pd.DataFrame, image_dir: str | os.PathLike, policy: str = "error",
                      decode: bool = False) -> list[str]:
    """Image names of `items` missing or unreadable in `image_dir`, under an image policy.

    Items with an empty ``item_image_name`` have no image by design and are not reported.
    See `prodmatch.data.images` for the policies; ``decode=True`` also catches truncated files.
    """
    names = [n for n in pd.unique(items["item_image_name"].fillna("").astype(str)) if n]
    return enforce_image_policy(names, image_dir, policy, what="CCKS items", decode=decode)


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(1-based line number, object) for each non-blank line; a line that is not a JSON object
    is a DataError naming it."""
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}: line {number} is not UTF-8 (byte {raw[exc.start]:#04x} at column "
                                f"{exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}: line {number} is not a JSON object")
            yield number, obj


def _read_jsonl(path: str | os.PathLike) -> tuple[pd.DataFrame, "pd.Index"]:
    """Parse a JSONL file into a frame (object dtype) plus each row's 1-based line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    records, line_numbers = [], []
    for number, obj in iter_jsonl(path):
        records.append(obj)
        line_numbers.append(number)
    if not records:
        raise DataError(f"{path}: file is empty")
    # dtype=object keeps ints as ints (no 123 -> 123.0 through a float column with gaps)
    return pd.DataFrame(records, dtype=object), pd.Index(line_numbers)


def _as_text_columns(frame: pd.DataFrame, fields) -> pd.DataFrame:
    """Ensure `fields` exist (first, in order) as stripped strings; null/absent -> ""."""
    frame = frame.reindex(columns=list(fields) + [c for c in frame.columns if c not in fields])
    for col in fields:
        frame[col] = frame[col].where(frame[col].notna(), "").astype(str).str.strip()
    return frame.reset_index(drop=True)


def _parse_labels(labels: pd.Series, lines: pd.Index, path) -> pd.Series:
    """Labels "0"/"1" (or ints 0/1) -> int64; anything else is a DataError naming the line."""
    text = labels.where(labels.notna(), "<missing>").astype(str).str.strip()
    bad = ~text.isin(["0", "1"])
    if bad.any():
        shown = [f"line {n}: {v!r}" for n, v in zip(lines[bad.to_numpy()][:5].tolist(), text[bad][:5].tolist())]
        raise DataError(f"{path}: item_label must be \"0\" or \"1\"; {int(bad.sum())} bad: {'; '.join(shown)}")
    return text.astype("int64").reset_index(drop=True)


def _check_known_ids(pairs: pd.DataFrame, items: pd.DataFrame, path) -> None:
    """Every pair id must be an item id of `items`."""
    ids = pd.concat([pairs["src_item_id"], pairs["tgt_item_id"]], ignore_index=True)
    unknown = ids[~ids.isin(items["item_id"].astype(str))]
    if len(unknown):
        names = pd.unique(unknown).tolist()
        raise DataError(f"{path}: {len(names)} item id(s) not in the item file: {preview(names)}")
