"""Per-query views of candidate scores (rank, gap to the query's best, z-score) and cheap candidate
features, for the level-2 methods; each a vectorised groupby over the query codes, no loop over queries."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .data import Candidates


def _grouped(values, codes) -> tuple[pd.DataFrame, "pd.core.groupby.DataFrameGroupBy"]:
    frame = pd.DataFrame(np.asarray(values, dtype=np.float64).reshape(len(codes), -1))
    return frame, frame.groupby(np.asarray(codes), sort=False)


def query_rank(values, codes) -> np.ndarray:
    """Rank of each row within its query, 1 = highest value, ties share their mean rank; (n, m) like `values`."""
    return _grouped(values, codes)[1].rank(ascending=False, method="average").to_numpy().reshape(np.shape(values))


def rank_unit(values, codes) -> np.ndarray:
    """Rank mapped to [0, 1] within its query: 1 for the best, 0 for the worst, 1 for a query's only row."""
    rank = query_rank(values, codes)
    size = np.bincount(np.asarray(codes))[np.asarray(codes)].astype(np.float64)
    size = size.reshape((-1,) + (1,) * (rank.ndim - 1))
    return 1.0 - np.divide(rank - 1.0, size - 1.0, out=np.zeros_like(rank), where=size > 1)


def minus_query_max(values, codes) -> np.ndarray:
    """Value minus its query's highest value (0 for the best row, negative below)."""
    frame, groups = _grouped(values, codes)
    return (frame - groups.transform("max")).to_numpy().reshape(np.shape(values))


def query_zscore(values, codes) -> np.ndarray:
    """(value - query mean) / query standard deviation (population); 0 where a query's values are all equal."""
    frame, groups = _grouped(values, codes)
    centred = (frame - groups.transform("mean")).to_numpy()
    std = groups.transform("std", ddof=0).to_numpy()
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 1e-12).reshape(np.shape(values))


TRANSFORMS: dict[str, Callable] = {
    "raw": lambda values, codes: np.asarray(values, dtype=np.float64),
    "rank": query_rank,
    "minus_max": minus_query_max,
    "z": query_zscore,
}
"""Per-query transform name -> f(values (n, m), codes) -> (n, m): what `lgbm_rerank` may feed the booster."""


def query_features(values: np.ndarray, names, codes, transforms) -> tuple[np.ndarray, list[str]]:
    """Every (transform, column) of `values` (n, m) side by side, named ``<column>:<transform>``."""
    blocks = [TRANSFORMS[t](values, codes) for t in transforms]
    return np.column_stack(blocks), [f"{n}:{t}" for t in transforms for n in names]


def _box_area(c: Candidates) -> np.ndarray:
    """Mean box area over the image area per row (0 without boxes)."""
    data = c.data
    b = data.boxes.astype(np.float64)
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    total = np.bincount(data.box_rows(), area, minlength=len(data))
    rows = data.rows
    n = rows["num_boxes"].to_numpy(np.float64)
    image = (rows["image_h"] * rows["image_w"]).to_numpy(np.float64)
    return np.divide(total, n * image, out=np.zeros(len(data)), where=(n > 0) & (image > 0))


# name -> (what the reader must decode, f(candidates) -> one value per row)
CANDIDATE_FEATURES: dict[str, tuple[tuple[str, ...], Callable[[Candidates], np.ndarray]]] = {
    "num_boxes": ((), lambda c: c.data.rows["num_boxes"].to_numpy(np.float64)),
    "image_area": ((), lambda c: (c.data.rows["image_h"] * c.data.rows["image_w"]).to_numpy(np.float64)),
    "box_area": (("boxes",), _box_area),
    "candidates": ((), lambda c: np.bincount(c.codes)[c.codes].astype(np.float64)),
}
"""Cheap per-candidate features a level-2 method may add to its inputs (no training)."""
