"""Similarity union of several models: ``s = a + b - a*b`` (probabilistic OR) on all candidate pairs.

A model is anything with ``n``, neighbour lists ``idx`` (and optionally their ``sims``) and
``pair_similarity(rows, cols)``; a pair that only some models proposed gets the other models'
similarity computed exactly (dot product / Hamming), never assumed 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import scipy.sparse as sp

from ..encoders.phash import phash_similarity
from ..errors import DataError
from ..neighbors import TIE_MARGIN, knn, normalize_rows, sort_neighbours
from ..resources import available_cores
from .threshold import Matches

PAIR_CHUNK_VALUES = 2**19  # gathered embedding values per pair-similarity chunk (2 MB per side)
BLENDABLE = ("dense", "sparse")  # model kinds with vectors to blend (NB); phash codes have none


@runtime_checkable
class Model(Protocol):
    """One similarity model: its candidate neighbour lists and exact similarity of any pair."""

    n: int
    idx: np.ndarray | None  # (n, k) neighbour indices, or None: proposes no candidates
    sims: np.ndarray | None  # their similarities on this model's scale, or None: recomputed

    def pair_similarity(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray: ...


@dataclass(eq=False)
class DenseModel:
    """Unit-row float32 embeddings (rows are normalised on construction); similarity = cosine."""

    emb: np.ndarray
    idx: np.ndarray | None = None
    sims: np.ndarray | None = None

    def __post_init__(self):
        self.emb = normalize_rows(self.emb)

    @classmethod
    def search(cls, emb, k: int, *, backend: str = "auto") -> "DenseModel":
        """The model with its exact top-k lists from `knn`."""
        emb = normalize_rows(emb)
        sims, idx = knn(emb, k, backend=backend)
        return cls(emb, idx, sims)

    @property
    def n(self) -> int:
        return len(self.emb)

    def pair_similarity(self, rows, cols) -> np.ndarray:
        """Row-wise float32 dot products (the precision of the search itself), in cache-sized chunks."""
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        out = np.empty(len(rows), np.float32)
        step = max(256, PAIR_CHUNK_VALUES // self.emb.shape[1])
        for s in range(0, len(rows), step):
            a = np.take(self.emb, rows[s : s + step], axis=0)
            b = np.take(self.emb, cols[s : s + step], axis=0)
            out[s : s + step] = np.einsum("ij,ij->i", a, b)
        return out


@dataclass(eq=False)
class SparseModel:
    """Sparse rows such as TF-IDF (normalised on construction; empty rows stay 0); similarity = cosine."""

    x: sp.csr_matrix
    idx: np.ndarray | None = None
    sims: np.ndarray | None = None

    def __post_init__(self):
        x = sp.csr_matrix(self.x, dtype=np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self.x = (sp.diags(inv.astype(np.float32)) @ x).tocsr()

    @classmethod
    def search(cls, x, k: int, *, threads: int | None = None) -> "SparseModel":
        """The model with exact top-k lists: `sparse_dot_topn`'s multithreaded sparse product keeps
        each row's best k + TIE_MARGIN, which are re-scored by `pair_similarity` and cut to k by
        (similarity desc, index asc), so ties and float rounding resolve as every other backend's.
        """
        from sparse_dot_topn import sp_matmul_topn

        model = cls(x)
        n = model.n
        if n == 0:
            raise DataError("sparse rows: nothing to search (0 rows)")
        k = min(int(k), n)
        keep = min(n, k + TIE_MARGIN)
        top = sp_matmul_topn(model.x, model.x.T.tocsr(), top_n=keep, n_threads=threads or available_cores()).tocsr()
        counts = np.diff(top.indptr)
        rows = np.repeat(np.arange(n, dtype=np.int64), counts)
        cols = top.indices.astype(np.int64)
        # rows with fewer than `keep` non-zero products (rare words, empty titles) are padded with
        # zero-similarity columns: the lowest indices not listed, as a dense search would give
        rows, cols = _pad_rows(rows, cols, counts, keep, n)
        sims = model.pair_similarity(rows, cols).astype(np.float32).reshape(n, keep)
        sims, idx = sort_neighbours(sims, cols.reshape(n, keep), self_search=True)
        model.sims, model.idx = np.ascontiguousarray(sims[:, :k]), np.ascontiguousarray(idx[:, :k])
        return model

    @property
    def n(self) -> int:
        return self.x.shape[0]

    def pair_similarity(self, rows, cols) -> np.ndarray:
        """Row-wise dot products of sparse rows, chunked."""
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        out = np.empty(len(rows), np.float64)
        step = 2**16
        for s in range(0, len(rows), step):
            a, b = self.x[rows[s : s + step]], self.x[cols[s : s + step]]
            out[s : s + step] = np.asarray(a.multiply(b).sum(1), dtype=np.float64).ravel()
        return out


@dataclass(eq=False)
class PhashModel:
    """64-bit perceptual hashes; similarity = 1 - Hamming / 64."""

    codes: np.ndarray
    idx: np.ndarray | None = None
    sims: np.ndarray | None = None

    def __post_init__(self):
        self.codes = np.asarray(self.codes, dtype=np.uint64)

    @classmethod
    def search(cls, codes, k: int, *, backend: str = "auto") -> "PhashModel":
        """Exact top-k by Hamming: cosine on +-1 bit vectors is 1 - 2*Hamming/64, same order."""
        model = cls(codes)
        bits = np.unpackbits(model.codes.view(np.uint8).reshape(-1, 8), axis=1).astype(np.float32)
        _, idx = knn((bits * 2 - 1) / 8.0, k, backend=backend)
        model.idx = idx
        model.sims = phash_similarity(model.codes[:, None], model.codes[idx]).astype(np.float32)
        return model

    @property
    def n(self) -> int:
        return len(self.codes)

    def pair_similarity(self, rows, cols) -> np.ndarray:
        return phash_similarity(self.codes[np.asarray(rows)], self.codes[np.asarray(cols)])


def _pad_rows(rows, cols, counts, keep: int, n: int):
    """Give every row exactly `keep` columns: short rows get the lowest column indices they lack."""
    short = np.flatnonzero(counts < keep)
    if len(short) == 0:
        return rows, cols
    need = keep - counts[short]
    # candidates 0..keep+max(counts)-1 contain at least `need` columns a short row lacks
    span = keep + int(counts[short].max())
    cand = np.tile(np.arange(min(span, n), dtype=np.int64), (len(short), 1))
    listed = np.zeros(cand.shape, bool)
    at = np.repeat(np.arange(len(short)), counts[short])
    short_mask = np.isin(rows, short)
    present = cols[short_mask]
    inside = present < cand.shape[1]
    listed[at[inside], present[inside]] = True
    cand_rank = np.cumsum(~listed, axis=1)
    take = ~listed & (cand_rank <= need[:, None])
    rows = np.concatenate([rows, np.repeat(short, take.sum(1))])
    cols = np.concatenate([cols, cand[take]])
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order]


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


def pair_scores(models: Sequence[Model], rows, cols, known=None) -> np.ndarray:
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
    per_model = pair_scores(models, rows, cols, known)
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
