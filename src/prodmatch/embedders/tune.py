"""The informational tuning of an unsupervised method: its threshold on a labelled frame over every
row's exact top-K list (the baseline stage's and the embed stage's reported F1).

Candidates are each row's exact top-K neighbours (K = 50, Shopee's largest group), never every
pair above a low similarity: at 34,250 rows that list holds hundreds of millions of pairs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..metrics import Scores
from ..post.tune import best_row_threshold
from . import get_embedder

NEIGHBOURS = 50  # a Shopee group has at most 50 postings, so top-50 (self included) loses none


def neighbour_pairs(frame: pd.DataFrame, method: str, k: int = NEIGHBOURS, embedding=None):
    """(rows, cols, sims) of every row's exact top-`k` list (self included) for an unsupervised
    embedding method (`prodmatch.embedders`); `embedding`: its ``transform(frame)``, if the caller
    has it already."""
    from ..post.pool import search

    embedder = get_embedder(method)
    data = embedder.transform(frame) if embedding is None else embedding
    model = search(embedder.kind, data, k)
    rows = np.repeat(np.arange(model.n), model.idx.shape[1])
    return rows, model.idx.ravel(), model.sims.ravel()


@dataclass(frozen=True)
class BaselineResult:
    method: str
    threshold: float
    scores: Scores


def tune_baseline(frame: pd.DataFrame, method: str, embedding=None) -> BaselineResult:
    """Best threshold for `method` on a labelled frame (optimistic: tuned on the rows it scores)."""
    rows, cols, sims = neighbour_pairs(frame, method, embedding=embedding)
    grid = get_embedder(method).grid
    t, scores = best_row_threshold(rows, cols, sims, frame["label_group"].to_numpy(), grid)
    return BaselineResult(method, t, scores)
