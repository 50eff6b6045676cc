"""Untrained pair similarities for CCKS ensembles: TF-IDF text cosine and pvs key:value Jaccard.

Both read the columns of a :func:`prodmatch.pairs.pvs.pair_frame` (``title_a/b``, ``pvs_a/b``) and
use no labels, so their scores on training pairs are as honest as on new pairs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..encoders.tfidf import TfidfConfig, tfidf_embed
from .pvs import ENTRY_SEP


def text_cosine(texts_a, texts_b, config: TfidfConfig = TfidfConfig.char()) -> np.ndarray:
    """Row-wise TF-IDF cosine of two text lists, the TF-IDF fitted on both lists together (texts
    only, no labels: pairs to be scored may join in, as at test time)."""
    texts_a, texts_b = list(texts_a), list(texts_b)
    x = tfidf_embed(texts_a + texts_b, config)
    n = len(texts_a)
    return np.asarray(x[:n].multiply(x[n:]).sum(axis=1), dtype=np.float64).ravel()


def entry_matrix(texts_a, texts_b, sep: str = ENTRY_SEP) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Binary (n, vocabulary) matrices of the distinct non-empty ``sep``-separated entries of each
    text, one shared vocabulary for both sides."""
    a, b = pd.Series(list(texts_a), dtype=object), pd.Series(list(texts_b), dtype=object)
    n = len(a)
    both = pd.concat([a, b], ignore_index=True).fillna("").astype(str).str.split(sep).explode()
    both = both[both.astype(bool)]  # drop "" entries (empty texts, doubled separators)
    codes, vocab = pd.factorize(both)
    rows = both.index.to_numpy()
    matrix = sp.csr_matrix((np.ones(len(codes), np.float64), (rows, codes)), shape=(2 * n, max(len(vocab), 1)))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # a repeated entry counts once: sets, not bags
    return matrix[:n], matrix[n:]


def pvs_jaccard(pvs_a, pvs_b) -> np.ndarray:
    """Jaccard similarity of the ``key:value`` entry sets of two pvs texts (0 when both are empty):
    inter = row-wise dot of binary entry matrices, union = |a| + |b| - inter."""
    a, b = entry_matrix(pvs_a, pvs_b)
    inter = np.asarray(a.multiply(b).sum(axis=1), dtype=np.float64).ravel()
    union = np.asarray(a.sum(axis=1), dtype=np.float64).ravel() + np.asarray(b.sum(axis=1)).ravel() - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
