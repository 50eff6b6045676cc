"""Similarity models, the bottom floor every stage shares: dense embeddings (cosine), sparse rows
such as TF-IDF (cosine) and 64-bit perceptual hashes (1 - Hamming / 64).

A model is anything with ``n``, neighbour lists ``idx`` (and optionally their ``sims``) and
``pair_similarity(rows, cols)``: the exact similarity of any pair, so a pair another model proposed
is scored, never assumed 0 (`prodmatch.post.union`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from .errors import DataError
from .neighbors import TIE_MARGIN, knn, normalize_rows, sort_neighbours
from .resources import available_cores

PAIR_CHUNK_VALUES = 2**19  # gathered embedding values per pair-similarity chunk (2 MB per side)


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


def phash_codes(hex_hashes) -> np.ndarray:
    """16-hex-digit strings -> uint64 codes."""
    return np.array([int(h, 16) for h in hex_hashes], dtype=np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of uint64 codes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def phash_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - Hamming / 64, in [0, 1]; identical hashes give 1."""
    return 1.0 - hamming(a, b) / 64.0
