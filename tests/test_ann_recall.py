"""Approximate backends tuned to `AnnRule.target_recall` at build time: on clustered vectors where
the rule's starting nprobe / efSearch miss the target, the tuned search reaches it (measured here
against exact search over every row), and the choice is recorded, logged and carried by the index."""
from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from prodmatch import ann
from prodmatch.ann import AnnRule, build_index, search_index
from prodmatch.neighbors import knn

APPROXIMATE = ["faiss_ivf", "faiss_ivfpq", "faiss_hnsw"]
K = 20
# HNSW with 4 links and efSearch 2 k misses the target on these vectors, as IVF's default nprobe does
RULE = AnnRule(hnsw_m=4, ef_search=8)


def clustered(n=6000, dim=32, clusters=600, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + noise * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall(idx, exact) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(exact, idx)]))


@pytest.fixture(scope="module")
def data():
    x = clustered()
    return x, knn(x, K, backend="faiss")[1]


@pytest.mark.parametrize("backend", APPROXIMATE)
def test_tuned_search_reaches_the_target_the_defaults_miss(data, backend, monkeypatch, caplog):
    x, exact = data
    monkeypatch.setattr(ann, "ANN_RULE", replace(RULE, target_recall=None))
    assert recall(knn(x, K, backend=backend)[1], exact) < RULE.target_recall  # untuned: the rule's parameters
    monkeypatch.setattr(ann, "ANN_RULE", RULE)
    with caplog.at_level(logging.INFO, logger="prodmatch.ann"):
        idx = knn(x, K, backend=backend)[1]
    got = recall(idx, exact)
    assert got >= RULE.target_recall
    tuning = ann.LAST_TUNING
    assert (tuning.backend, tuning.k, tuning.queries, tuning.target) == (backend, K, RULE.recall_sample, 0.99)
    assert tuning.reached and abs(tuning.recall - got) < 0.01  # the sample's estimate holds for every row
    start = {"efSearch": 2 * K} if backend == "faiss_hnsw" else {"nprobe": RULE.nprobe(RULE.nlist(len(x)))}
    assert all(tuning.params[p] > v for p, v in start.items())  # raised from the rule's starting point
    assert f"{backend}: " in caplog.text and f"reaches recall@{K} {tuning.recall:.3f} on 512 sampled queries (target 0.99)" in caplog.text


def test_an_index_built_ahead_carries_its_tuning_into_every_search(data, monkeypatch):
    """build_index without k (a resident / sharded index) tunes at AnnRule.recall_k; HNSW searches keep
    the tuned efSearch (2 k when larger); target_recall None builds the rule's parameters, untuned."""
    x, exact = data
    monkeypatch.setattr(ann, "ANN_RULE", RULE)
    index = build_index("faiss_hnsw", x)
    assert index.tuning.k == RULE.recall_k and index.tuning.reached and ann.LAST_TUNING is index.tuning
    idx = search_index(index, x, x, K, 4096)[1]
    assert index.hnsw.efSearch == max(index.tuning.params["efSearch"], 2 * K)
    assert recall(idx, exact) >= RULE.target_recall
    monkeypatch.setattr(ann, "ANN_RULE", replace(RULE, target_recall=None))
    index = build_index("faiss_ivf", x)
    assert not hasattr(index, "tuning") and index.nprobe == RULE.nprobe(RULE.nlist(len(x)))


def test_a_target_beyond_the_cap_is_warned_with_the_recall_reached(data, monkeypatch, caplog):
    x, exact = data
    monkeypatch.setattr(ann, "ANN_RULE", replace(RULE, max_ef_search=2 * K))
    with caplog.at_level(logging.INFO, logger="prodmatch.ann"):
        idx = knn(x, K, backend="faiss_hnsw")[1]
    tuning = ann.LAST_TUNING
    assert not tuning.reached and tuning.params == {"efSearch": 2 * K}
    assert abs(tuning.recall - recall(idx, exact)) < 0.01
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "prodmatch.ann"]
    assert warned == [f"faiss_hnsw: recall@{K} {tuning.recall:.3f} on 512 sampled queries at efSearch {2 * K} "
                      "(the cap) misses the target 0.99"]
