"""Shopee's train.csv / test.csv: load, decode titles, validate, locate images."""
from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, preview
from .images import enforce_image_policy
from .text import decode_titles

REQUIRED_COLUMNS = ("posting_id", "image", "image_phash", "title")
PHASH_PATTERN = r"^[0-9a-f]{16}$"
log = logging.getLogger(__name__)


def load_shopee(data_dir, image_policy: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """train.csv (required, labelled) and test.csv (optional) of a Shopee folder."""
    data_dir = Path(data_dir)
    train = read_shopee_csv(data_dir / "train.csv", image_policy=image_policy)
    if "label_group" not in train.columns:
        raise DataError(f"{data_dir / 'train.csv'}: no label_group column")
    test_path = data_dir / "test.csv"
    test = read_shopee_csv(test_path, image_policy=image_policy) if test_path.is_file() else None
    return train, test


def check_file(path, *, image_dir=None, image_policy: str = "error") -> str:
    """A train/test.csv read and checked, every image decoded (a truncated JPEG passes a header
    check); one line on what it holds."""
    frame = read_shopee_csv(path, image_dir=image_dir, image_policy=image_policy, decode=True)
    groups = frame["label_group"].nunique() if "label_group" in frame else "n/a"
    bad = int((~frame["image_ok"]).sum()) if "image_ok" in frame else "not checked"
    return f"{path}: {len(frame)} postings, {groups} groups, bad images: {bad}"


def read_shopee_csv(
    path,
    *,
    image_dir=None,
    image_policy: str = "error",
    decode: bool = False,
) -> pd.DataFrame:
    """Load a Shopee CSV into a validated frame with a stable 0..n-1 index.

    Columns: posting_id, image, image_phash (lowercase), title (decoded text), label_group
    (int64, when the file has it), image_path and image_ok (when images are checked).
    `image_dir` defaults to ``<csv folder>/<csv stem>_images`` (train.csv -> train_images/).
    `image_policy`: ``error`` | ``placeholder`` | ``text-only`` (see `prodmatch.data.images`).
    `decode` loads every image's pixels (catches truncated JPEGs a header check passes; slower).
    """
    path = Path(path)
    frame = _read_raw(path)
    _check_columns(frame, path)
    frame = frame[[c for c in (*REQUIRED_COLUMNS, "label_group") if c in frame.columns]].copy()
    frame.index = pd.RangeIndex(len(frame))
    _check_ids(frame, path)
    frame["image_phash"] = _checked_phash(frame["image_phash"], frame["posting_id"], path)
    frame["title"] = decode_titles(frame["title"])
    _warn_empty_titles(frame, path)
    if "label_group" in frame.columns:
        frame["label_group"] = checked_labels(frame["label_group"], frame["posting_id"], path)
    if image_policy != "text-only":
        image_dir = Path(image_dir) if image_dir is not None else path.parent / f"{path.stem}_images"
        bad = set(enforce_image_policy(frame["image"].tolist(), image_dir, image_policy, what=str(path), decode=decode))
        frame["image_path"] = [str(image_dir / name) for name in frame["image"]]
        frame["image_ok"] = ~frame["image"].isin(bad)
    return frame


def _read_raw(path: Path) -> pd.DataFrame:
    frame = read_csv_strict(path)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed:") or c == ""])
    if frame.empty:
        raise DataError(f"{path}: no rows")
    return frame


def read_csv_strict(path, what: str = "CSV") -> pd.DataFrame:
    """A one-line-per-row UTF-8 CSV as strings, or a DataError naming the file: missing, a folder,
    empty, not UTF-8, a row with more fields than the header, a repeated column, an unclosed quote."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a {what} file")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():  # index_col=False only warns when a row has more fields than the header
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8",
                                index_col=False, on_bad_lines="error")
    except pd.errors.ParserWarning:
        raise DataError(f"{path}: a row has more fields than the header; not a readable {what}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
                        f"not a readable {what}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise DataError(f"{path}: not a readable {what} ({' '.join(str(err).split())})") from None
    _check_unique_header(path)
    check_single_line_rows(frame, path)
    return frame


def _check_unique_header(path: Path) -> None:
    """pandas renames a repeated column ("title", "title.1") and the first would be used silently."""
    with open(path, encoding="utf-8", newline="") as handle:
        header = next(csv.reader(handle), [])
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: column(s) {repeated} appear more than once in the header")


def check_single_line_rows(frame: pd.DataFrame, path: Path) -> None:
    """Every posting is one line in both competitions' files: a field holding a line break is an
    unclosed quote swallowing the rows after it (pandas would read on without a word)."""
    broken = np.zeros(len(frame), bool)
    for column in frame.columns:
        broken |= frame[column].str.contains(r"[\r\n]", regex=True).to_numpy()
    if broken.any():
        first = int(np.flatnonzero(broken)[0])
        line = _line_of_row(path, first)
        raise DataError(f"{path}: row {first + 1} (line {line}) holds a line break inside a field - most likely "
                        f"an unclosed quote that swallowed the rows after it; {int(broken.sum())} such row(s)")


def _line_of_row(path: Path, row: int) -> int:
    """1-based file line where data row `row` (0-based) starts, assuming rows before it are one line each."""
    return row + 2  # the header is line 1


def _check_columns(frame: pd.DataFrame, path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")


def _check_ids(frame: pd.DataFrame, path: Path) -> None:
    ids = frame["posting_id"].str.strip()
    if (ids == "").any():
        raise DataError(f"{path}: empty posting_id on row(s) {preview(np.flatnonzero(ids == ''))}")
    spaced = frame["posting_id"].str.contains(r"\s", regex=True)
    if spaced.any():  # submissions list ids separated by spaces: such an id cannot be written back
        raise DataError(f"{path}: posting_id must not hold whitespace (submissions separate ids by spaces); "
                        f"{int(spaced.sum())} such id(s): {preview(frame.loc[spaced, 'posting_id'])}")
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise DataError(f"{path}: {len(dup)} duplicate posting_id(s): {preview(dup)}")
    if (frame["image"].str.strip() == "").any():
        raise DataError(f"{path}: empty image name for posting(s) {preview(frame.loc[frame['image'] == '', 'posting_id'])}")


def _checked_phash(phash: pd.Series, ids: pd.Series, path: Path) -> pd.Series:
    phash = phash.str.strip().str.lower()
    bad = ~phash.str.match(PHASH_PATTERN)
    if bad.any():
        offenders = [f"{i}={h!r}" for i, h in zip(ids[bad], phash[bad])]
        raise DataError(f"{path}: image_phash must be 16 hex digits; bad: {preview(offenders)}")
    return phash


INTEGER_TEXT = r"^[+-]?\d+(?:\.0*)?$"  # "7" and "7.0" (a float-writing export), never "7.5" or "1e3"


def checked_labels(labels: pd.Series, ids: pd.Series, path: Path) -> pd.Series:
    """label_group parsed exactly from its text: no float64 detour, which merges integers above 2**53."""
    text = labels.astype(str).str.strip()
    digits = text.str.replace(r"\.0*$", "", regex=True)
    magnitude = digits.str.lstrip("+-").str.lstrip("0")
    bad = ~text.str.match(INTEGER_TEXT) | (magnitude.str.len() > 19)
    bad |= (magnitude.str.len() == 19) & (magnitude > str(2**63 - 1))  # same length: text order is number order
    if bad.any():
        raise DataError(f"{path}: label_group must be an integer below 2**63; bad for {preview(ids[bad])}")
    return digits.astype("int64")


def _warn_empty_titles(frame: pd.DataFrame, path: Path) -> None:
    empty = frame["title"] == ""
    if empty.any():
        log.warning("%s: %d empty title(s) (kept; image models still see them): %s",
                    path, int(empty.sum()), preview(frame.loc[empty, "posting_id"]))
