"""Approximate KNN backends (faiss IVF-Flat, IVF-PQ, HNSW): same output contract as the exact ones,
high recall on clustered vectors, and no missing neighbours when a probe finds fewer than k."""
from __future__ import annotations

import numpy as np
import pytest

from prodmatch import ann
from prodmatch.ann import AnnRule
from prodmatch.neighbors import knn

APPROXIMATE = ["faiss_ivf", "faiss_ivfpq", "faiss_hnsw"]


def clustered(n=4000, dim=32, clusters=100, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("backend", APPROXIMATE)
def test_approximate_backends_keep_the_contract_and_find_the_exact_neighbours(backend):
    x = clustered()
    exact_sims, exact_idx = knn(x, 20, backend="faiss")
    sims, idx = knn(x, 20, backend=backend)
    assert sims.shape == idx.shape == (len(x), 20) and sims.dtype == np.float32 and idx.dtype == np.int64
    assert (idx[:, 0] == np.arange(len(x))).all() and (sims[:, 0] == 1.0).all()
    assert (np.diff(sims, axis=1) <= 0).all() and idx.min() >= 0
    recall = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(exact_idx, idx)])
    assert recall >= 0.9
    # a found neighbour's similarity is the true one (IVF-Flat, HNSW, and PQ after its exact re-rank)
    np.testing.assert_allclose(sims[:, 1:], np.einsum("ij,ikj->ik", x, x[idx[:, 1:]]), atol=1e-5)


def test_rows_an_ivf_probe_leaves_short_are_searched_exactly(monkeypatch):
    """One probed cell of ~40 rows cannot hold k = 60 neighbours: those rows fall back to the exact
    search, so none is left with faiss' -1 padding."""
    monkeypatch.setattr(ann, "ANN_RULE", AnnRule(probe_share=0.0, min_probe=1, target_recall=None))
    calls = []
    exact_search = ann._search_faiss
    monkeypatch.setattr(ann, "_search_faiss", lambda *a: calls.append(len(a[1])) or exact_search(*a))
    x = clustered(n=2000, clusters=400, seed=1)
    idx = knn(x, 60, backend="faiss_ivf")[1]
    assert calls and calls[0] > 0
    assert idx.min() >= 0 and (idx[:, 0] == np.arange(len(x))).all()
    assert all(len(set(row)) == 60 for row in idx)


@pytest.mark.parametrize("backend", APPROXIMATE)
@pytest.mark.parametrize("n", [1, 3, 300])
def test_tiny_inputs_are_searched_exactly(backend, n):
    """Below AnnRule.min_rows no index is built (IVF-PQ could not train on 300 rows): the exact lists."""
    x = clustered(n=n, clusters=min(n, 10), seed=2)
    exact = knn(x, 5, backend="faiss")
    got = knn(x, 5, backend=backend)
    np.testing.assert_array_equal(got[1], exact[1])
    np.testing.assert_array_equal(got[0], exact[0])


def test_ann_rule_scales_with_n():
    rule = AnnRule()
    assert rule.nlist(1_000_000) == 4000 and rule.nprobe(4000) == 250
    assert rule.nlist(100) == 2 and rule.nprobe(2) == 2  # at least 39 training rows per cell
    assert rule.pq_codes(64) == 16 and rule.pq_codes(30) == 6  # a divisor of the dimension
