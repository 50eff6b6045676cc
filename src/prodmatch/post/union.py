"""Similarity union of several models: ``s = a + b - a*b`` (probabilistic OR) on all candidate pairs.

The models are `prodmatch.similarity`'s; a pair that only some models proposed gets the other
models' similarity computed exactly (dot product / Hamming), never assumed 0.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DataError
from ..similarity import Model
from .threshold import Matches

BLENDABLE = ("dense", "sparse")  # model kinds with vectors to blend (NB); phash codes have none


def candidate_pairs(models: Sequence[Model]):
    """Union of every model's (row, neighbour) pairs plus self pairs, sorted by (row, col).

    Returns ``(rows, cols, known)``: ``known[e, m]`` is model m's listed similarity of pair e,
    NaN where model m did not list it (or listed no sims).
    """
    n = _common_n(models)
    # self pairs are always candidates (tag -1: no model's listed value)
    keys, vals, tags = [np.arange(n, dtype=np.int64) * (n + 1)], [np.full(n, np.nan, np.float32)], [np.full(n, -1, np.int16)]
    for m, model in enumerate(models):
        if model.idx is None:
            continue
        idx = np.asarray(model.idx, dtype=np.int64)
        if idx.ndim != 2 or len(idx) != n or (idx.size and (idx.min() < 0 or idx.max() >= n)):
            raise DataError(f"model {m}: idx must be an (n, k) array of row indices in [0, {n})")
        keys.append((np.arange(n, dtype=np.int64)[:, None] * n + idx).ravel())
        sims = np.full(idx.size, np.nan, np.float32) if model.sims is None else np.asarray(model.sims, np.float32).ravel()
        if len(sims) != idx.size:
            raise DataError(f"model {m}: sims and idx differ in shape")
        vals.append(sims)
        tags.append(np.full(idx.size, m, np.int16))
    keys, vals, tags = np.concatenate(keys), np.concatenate(vals), np.concatenate(tags)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    first = np.r_[True, keys[1:] != keys[:-1]]
    group = np.cumsum(first) - 1
    known = np.full((int(first.sum()), len(models)), np.nan, np.float32, order="F")
    tags, vals = tags[order], vals[order]
    listed = tags >= 0
    known[group[listed], tags[listed]] = vals[listed]
    unique = keys[first]
    return unique // n, unique % n, known


def pair_similarities(models: Sequence[Model], rows, cols, known=None) -> np.ndarray:
    """(n_pairs, n_models) float32 similarities; entries of `known` that are not NaN are reused."""
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    shape = (len(rows), len(models))
    out = np.full(shape, np.nan, np.float32, order="F") if known is None else np.array(known, np.float32, order="F")
    for m, model in enumerate(models):
        missing = np.flatnonzero(np.isnan(out[:, m]))
        if len(missing):
            out[missing, m] = model.pair_similarity(rows[missing], cols[missing])
    return out


def union_scores(per_model) -> np.ndarray:
    """Probabilistic OR across columns, ``a + b - a*b`` folded left, each clipped to [0, 1].

    The result is at least every input (enforced exactly, against rounding) and at most 1.
    """
    p = np.asarray(per_model)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError("per_model must be an (n_pairs, n_models) array with at least one model")
    s = np.clip(p[:, 0].astype(np.float64), 0.0, 1.0)
    top = s.copy()
    for m in range(1, p.shape[1]):
        b = np.clip(p[:, m].astype(np.float64), 0.0, 1.0)
        s += b - s * b
        np.maximum(top, b, out=top)
    np.maximum(s, top, out=s)
    return np.minimum(s, 1.0, out=s)


def similarity_union(models: Sequence[Model]):
    """Candidate pairs of all models scored by the union; returns ``(Matches, per_model)``.

    ``per_model[e, m]`` is model m's similarity of pair e (float32, aligned with the Matches
    pairs, e.g. stacker features); self pairs score 1.
    """
    rows, cols, known = candidate_pairs(models)
    per_model = pair_similarities(models, rows, cols, known)
    is_self = rows == cols
    per_model[is_self] = 1.0  # a row always matches itself, whatever a model says (e.g. an empty title)
    scores = union_scores(per_model)
    scores[is_self] = 1.0
    return Matches(rows, cols, scores, _common_n(models)), per_model


def _common_n(models: Sequence[Model]) -> int:
    if not models:
        raise ValueError("need at least one model")
    sizes = {int(m.n) for m in models}
    if len(sizes) != 1:
        raise DataError(f"models cover different numbers of rows: {sorted(sizes)}")
    return sizes.pop()
