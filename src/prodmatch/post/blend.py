"""Neighbourhood blending (NB) and its iterated form (INB): query expansion on the match graph.

Each embedding is replaced by the similarity-weighted sum of its matches' embeddings (itself
included, weight 1) and re-normalised: one sparse (n x n) @ (n x d) product per stage, so groups
pull together before the next search.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ..neighbors import knn, normalize_rows
from .threshold import Matches, min2


def blend(emb, matches: Matches):
    """``normalise(W @ emb)`` with W the match matrix (data = score); sparse emb gives sparse output."""
    if emb.shape[0] != matches.n:
        raise ValueError(f"emb has {emb.shape[0]} rows but the matches cover {matches.n}")
    w = sp.csr_matrix(
        (matches.scores.astype(np.float32), matches.cols, matches.indptr), shape=(matches.n, matches.n)
    )
    if sp.issparse(emb):
        out = (w @ sp.csr_matrix(emb, dtype=np.float32)).tocsr()
        norms = np.sqrt(np.asarray(out.multiply(out).sum(1)).ravel())
        return sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ out
    emb = np.asarray(emb, dtype=np.float32)
    out = np.asarray(w @ emb, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1)
    zero = norms == 0  # weights cancelled (only possible with negative scores): keep the row
    out[zero] = emb[zero]
    norms[zero] = np.linalg.norm(emb[zero], axis=1)
    return out / norms[:, None]


def neighbourhood_blend(emb, sims, idx, t: float, t_min2: float | None = None):
    """One NB stage on a self-search result: matches by threshold t (and Min2), then `blend`."""
    return blend(emb, min2(sims, idx, t, t_min2))


def iterative_blend(
    emb, k: int, thresholds: Sequence[float], backend: str = "auto", *, t_min2: float | None = None, chunk=None
):
    """INB: search + blend once per threshold, then a final search.

    Returns ``(emb, sims, idx)``: the blended unit embeddings and their top-k neighbour lists.
    """
    emb = normalize_rows(emb)
    for t in thresholds:
        sims, idx = knn(emb, k, backend=backend, chunk=chunk)
        emb = neighbourhood_blend(emb, sims, idx, t, t_min2)
    sims, idx = knn(emb, k, backend=backend, chunk=chunk)
    return emb, sims, idx
