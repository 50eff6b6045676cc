"""Smaller data sets that keep whole label groups: a group is never split, so group-disjoint folds,
a group's matches and the row-F1 mean the same on the subsample as on the whole set."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ..io import write_csv

CSVS = ("train.csv", "test.csv", "test_truth.csv")
IMAGE_FOLDERS = ("train_images", "test_images")


def take_groups(frame: pd.DataFrame, rows: int, seed=0, *, column: str = "label_group") -> pd.DataFrame:
    """The rows of whole `column` groups, the groups taken in a random order until at least `rows`
    rows are in: about `rows` rows (over by less than the last group's size), in their own order.

    `seed` is an int or a numpy Generator (advanced, so successive draws differ). A frame of at most
    `rows` rows comes back whole, without a draw.
    """
    if int(rows) < 1:
        raise DataError(f"take_groups: rows must be >= 1, got {rows}")
    if column not in frame.columns:
        raise DataError(f"take_groups: the frame has no {column!r} column")
    if len(frame) <= rows:
        return frame
    codes, names = pd.factorize(frame[column], sort=True, use_na_sentinel=False)  # np.unique's order; NaN one group
    sizes = np.bincount(codes, minlength=len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    taken = np.searchsorted(np.cumsum(sizes[order]), rows) + 1  # the first prefix reaching `rows`
    keep = np.zeros(len(names), bool)
    keep[order[:taken]] = True
    return frame[keep[codes]]


def subsample_shopee(src, dst, *, train_rows: int | None = None, test_rows: int | None = None, seed=0,
                     overwrite: bool = False) -> dict:
    """Write a Shopee folder `dst` with whole label groups of `src`'s train.csv (about `train_rows`
    rows) and test.csv (about `test_rows`, its groups from test_truth.csv); None or 0: every row.

    The CSVs keep their rows' text as it is; the image folders are symbolic links to `src`'s (nothing
    is copied). One generator (`seed`) draws train first, then test. Files already in `dst` are
    replaced only with `overwrite`. Returns the rows and groups of each side.
    """
    src, dst = Path(src).resolve(), Path(dst)
    if dst.resolve() == src:
        raise DataError(f"subsample: {dst} is the source folder itself")
    if not (src / "train.csv").is_file():
        raise DataError(f"subsample: {src} has no train.csv")
    if dst.exists() and not dst.is_dir():
        raise DataError(f"subsample: {dst} is a file, not a folder")
    read = {"dtype": str, "keep_default_na": False}
    frames = {name: pd.read_csv(src / name, **read) for name in CSVS if (src / name).is_file() or name != CSVS[2]}
    if test_rows and "test_truth.csv" not in frames:
        raise DataError(f"subsample: test rows are drawn by label group, and {src} has no test_truth.csv")
    outputs = [dst / name for name in frames] + [dst / f for f in IMAGE_FOLDERS if (src / f).is_dir()]
    present = [p for p in outputs if p.exists() or p.is_symlink()]
    if present and not overwrite:
        raise FileExistsError(f"{present[0]} already exists; pass overwrite=True (--overwrite) to replace it")
    real = [p for p in present if p.name in IMAGE_FOLDERS and not p.is_symlink()]
    if real:  # checked before any write: a refused run leaves dst as it was
        raise DataError(f"subsample: {real[0]} is a real folder, not a link to the source's images; remove it first")
    rng = np.random.default_rng(seed)
    train, test = frames["train.csv"], frames["test.csv"]
    if train_rows:
        train = take_groups(train, train_rows, rng)
    if test_rows:
        keep = take_groups(frames["test_truth.csv"], test_rows, rng)["posting_id"]
        test = test[test["posting_id"].isin(keep)]
    written = {"train.csv": train, "test.csv": test}
    if "test_truth.csv" in frames:
        truth = frames["test_truth.csv"]
        written["test_truth.csv"] = truth[truth["posting_id"].isin(test["posting_id"])]
    for name, frame in written.items():
        write_csv(dst / name, frame)
    for folder in IMAGE_FOLDERS:
        if (src / folder).is_dir():
            _link(dst / folder, src / folder)
    truth = written.get("test_truth.csv")
    return {"train": len(train), "test": len(test), "train_groups": int(train["label_group"].nunique()),
            "test_groups": int(truth["label_group"].nunique()) if truth is not None else None}


def _link(link: Path, target: Path) -> None:
    """`link` -> `target`, replacing an earlier link atomically (a real folder there is refused before)."""
    tmp = link.with_name(f".{link.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target, target_is_directory=True)
    os.replace(tmp, link)
