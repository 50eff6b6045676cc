"""Group-disjoint folds, computed once and written to a file every later stage reads.

Shopee: GroupKFold on label_group, so a fold model never saw any posting of a held-out group.
CCKS: items linked by labelled pairs form connected components; folds split components, so a
validation item never occurs in a training pair.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import GroupKFold

from ..errors import DataError
from ..io import write_csv


def group_folds(groups, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Fold id (0..n_folds-1) per row; rows of one group share a fold; shuffled by `seed`."""
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_folds < 2:
        raise DataError(f"n_folds must be >= 2, got {n_folds}")
    if n_groups < n_folds:
        raise DataError(f"{n_groups} group(s) cannot fill {n_folds} folds")
    folds = np.empty(len(groups), dtype=np.int64)
    splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, valid) in enumerate(splitter.split(groups, groups=groups)):
        folds[valid] = fold
    return folds


def shopee_folds(frame: pd.DataFrame, n_folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """``posting_id, label_group, fold`` for a labelled Shopee frame."""
    if "label_group" not in frame.columns:
        raise DataError("folds need label_group (train.csv), this frame has none")
    folds = group_folds(frame["label_group"].to_numpy(), n_folds, seed)
    return pd.DataFrame({"posting_id": frame["posting_id"], "label_group": frame["label_group"], "fold": folds})


def shopee_folds_file(path, n_folds: int, seed: int) -> pd.DataFrame:
    """`shopee_folds` of a train.csv."""
    from .shopee import read_shopee_csv

    return shopee_folds(read_shopee_csv(path, image_policy="text-only"), n_folds, seed)


def shopee_fold_ids(train: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """The int64 fold of every row of `train` (`shopee_folds`: whole label groups per fold)."""
    return shopee_folds(train, n_folds, seed)["fold"].to_numpy().astype(np.int64)


def pair_components(src, tgt) -> np.ndarray:
    """Connected-component id of each pair in the graph whose nodes are items and edges the pairs
    (ids of any hashable type; components numbered by their first item's appearance)."""
    codes, _ = pd.factorize(pd.concat([pd.Series(src, dtype=object), pd.Series(tgt, dtype=object)], ignore_index=True))
    a, b = codes[:len(codes) // 2], codes[len(codes) // 2:]
    n = int(codes.max()) + 1 if len(codes) else 0
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1][a]


def ccks_folds(pairs: pd.DataFrame, n_folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """``src_item_id, tgt_item_id, fold`` where no item appears in two folds."""
    components = pair_components(pairs["src_item_id"], pairs["tgt_item_id"])
    folds = group_folds(components, n_folds, seed)
    return pd.DataFrame({"src_item_id": pairs["src_item_id"], "tgt_item_id": pairs["tgt_item_id"], "fold": folds})


def write_folds(folds: pd.DataFrame, path, *, overwrite: bool = False) -> Path:
    """Write a folds table atomically; an existing different file is kept unless `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        existing = pd.read_csv(path, dtype=str, keep_default_na=False)
        if not existing.equals(folds.astype(str).reset_index(drop=True)):
            raise FileExistsError(f"{path} exists with other folds; pass overwrite=True (--overwrite) to replace it")
        return path
    return write_csv(path, folds)


def read_folds(path) -> pd.DataFrame:
    """A folds table written by `write_folds` (ids as str, fold as int)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: folds file not found; run `prodmatch folds` first")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["fold"] = frame["fold"].astype("int64")
    return frame
