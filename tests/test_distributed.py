"""The Dask path on a LocalCluster of 2 worker processes this file starts (loopback only): sharded
search and embedding equal one machine's exact results, the merge is exact, shutdown is clean."""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from prodmatch.distributed import (ClusterOptions, embed_shards, encoder_loads, gather_rows,  # noqa: E402
                                   local_cluster, merge_topk, reduce_topk, scatter_rows, shard_bounds,
                                   sharded_knn, sharded_matches)
from prodmatch.errors import DataError  # noqa: E402
from prodmatch.neighbors import knn  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*not L2-normalised:RuntimeWarning")
OPTIONS = ClusterOptions(n_workers=2, threads_per_worker=1)


@pytest.fixture(scope="module")
def client():
    with local_cluster(OPTIONS) as client:
        yield client


def catalogue(n=1200, dim=16, clusters=40, seed=0) -> np.ndarray:
    """Clustered rows (not unit: the search normalises) with a run of 30 identical rows spread over
    several shards, so ties at the k-th place decide which ids are listed."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(clusters, dim))[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    if n >= 300:
        x[np.arange(5, n, n // 30)[:30]] = x[5]
    return x.astype(np.float32)


def test_merge_of_hand_made_shard_lists_is_exact():
    a = (np.array([[0.9, 0.5], [0.7, 0.7]], np.float32), np.array([[13, 11], [10, 12]]))
    b = (np.array([[0.9, 0.6, 0.1], [0.7, 0.2, 0.1]], np.float32), np.array([[5, 6, 7], [4, 8, 9]]))
    sims, ids = merge_topk([a, b], 3)
    np.testing.assert_array_equal(ids, [[5, 13, 6], [4, 10, 12]])  # ties: the lower global id first
    np.testing.assert_array_equal(sims, np.array([[0.9, 0.9, 0.6], [0.7, 0.7, 0.7]], np.float32))
    sims, ids = merge_topk([b, a], 10)  # shard order does not matter; k past the width keeps all 5
    np.testing.assert_array_equal(ids, [[5, 13, 6, 11, 7], [4, 10, 12, 8, 9]])
    np.testing.assert_array_equal(sims[1], np.array([0.7, 0.7, 0.7, 0.2, 0.1], np.float32))
    with pytest.raises(ValueError, match="different query counts"):
        merge_topk([a, (b[0][:1], b[1][:1])], 3)


def test_tree_merge_on_the_workers_equals_the_flat_merge(client):
    rng = np.random.default_rng(3)
    parts = []
    for s in range(5):  # 5 shards of 4 candidates; values on a coarse grid: many ties across shards
        sims = np.round(rng.random((6, 4)), 1).astype(np.float32)
        parts.append(tuple(a for a in _ordered(sims, rng.choice(1000, (6, 4), replace=False) + 1000 * s)))
    futures = client.scatter(parts, hash=False)
    tree = reduce_topk(client, futures, 7, fan_in=2).result()
    flat = merge_topk(parts, 7)
    np.testing.assert_array_equal(tree[0], flat[0])
    np.testing.assert_array_equal(tree[1], flat[1])


def _ordered(sims, ids):
    from prodmatch.neighbors import order_ties

    return order_ties(sims, ids.astype(np.int64))


@pytest.mark.parametrize("n_shards", [2, 7])
def test_sharded_exact_search_equals_one_machine(client, n_shards):
    x = catalogue()
    shards = scatter_rows(client, x, n_shards)
    assert [s.rows for s in shards] == list(np.diff(shard_bounds(len(x), n_shards)))
    for query in (None, x[::37]):
        sims, idx = sharded_knn(client, shards, 40, query=query)
        want_sims, want_idx = knn(x, 40, query=query, backend="faiss")
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(sims, want_sims)
    # the tie run: row 5's 29 copies all listed, lowest ids first after itself
    copies = np.arange(5, len(x), len(x) // 30)[:30]
    self_sims, self_idx = sharded_knn(client, shards, 20)
    np.testing.assert_array_equal(self_idx[5], copies[:20])
    np.testing.assert_array_equal(self_idx[copies[-1]][1:], copies[:19])


def test_more_shards_than_rows(client):
    x = catalogue(n=7, dim=4, clusters=2)
    assert len(shard_bounds(7, 10)) == 8  # one row per shard, no empty shard
    shards = scatter_rows(client, x, 10)
    sims, idx = sharded_knn(client, shards, 50)
    want_sims, want_idx = knn(x, 50, backend="faiss")
    assert idx.shape == (7, 7)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(sims, want_sims)
    with pytest.raises(DataError, match="shard backend"):
        sharded_knn(client, shards, 5, backend="cuml")


def test_cluster_backend_runs_the_matcher_post_processing_unchanged(client):
    from prodmatch.post.matcher import MatcherConfig, fit
    from prodmatch.post.pool import Pool

    x = catalogue(n=600)
    groups = np.argmax(x @ np.random.default_rng(1).normal(size=(16, 60)), axis=1)  # any labels will do
    config = MatcherConfig(k=15, union=False, units=False, chisel=False)
    local = Pool({"emb": ("dense", x)}, groups=groups, k=15, backend="faiss")
    params = fit([(local, None)], config, {"emb": "dense"}, ["emb"])
    assert params.stage.has("nb") and params.stage.has("min2")
    want = local.matches(params)
    on_cluster = Pool({"emb": ("dense", x)}, groups=groups, k=15, backend="dask").matches(params)
    from_shards = sharded_matches(client, {"emb": scatter_rows(client, x, 3)}, params, k=15)
    for got in (on_cluster, from_shards):
        np.testing.assert_array_equal(got.rows, want.rows)
        np.testing.assert_array_equal(got.cols, want.cols)
        np.testing.assert_array_equal(got.scores, want.scores)


def test_sharded_embedding_loads_the_encoder_once_per_worker(client, tmp_path):
    from prodmatch.encoders import create_encoder, load_encoder, save_encoder
    from prodmatch.encoders.inference import embed_frame
    from prodmatch.backbones import tiny_text_model

    bert = tiny_text_model(tmp_path / "bert")
    folder = save_encoder(create_encoder("text", {"model": str(bert), "max_length": 16, "dim": 16}), tmp_path / "enc")
    frame = pd.DataFrame({"title": [f"item {i % 13} size {i % 5} ml" for i in range(90)]})
    shards = embed_shards(client, frame, folder, 6, batch_size=8)
    emb = gather_rows(client, shards)
    assert sorted(encoder_loads(client, folder).values()) == [1, 1]  # 6 shards, one load per worker
    np.testing.assert_allclose(emb, embed_frame(load_encoder(folder), frame, batch_size=8), atol=1e-5)
    sims, idx = sharded_knn(client, shards, 10)
    want_sims, want_idx = knn(emb, 10, backend="faiss")
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(sims, want_sims)


def test_approximate_shards_keep_the_contract(client):
    x = catalogue(n=2400, dim=16)
    shards = scatter_rows(client, x, 2)  # 1,200 rows each: above AnnRule.min_rows, a real HNSW index
    sims, idx = sharded_knn(client, shards, 10, backend="faiss_hnsw")
    _, exact = knn(x, 10, backend="faiss")
    assert idx.shape == (2400, 10) and (idx[:, 0] == np.arange(2400)).all()
    assert (np.diff(sims, axis=1) <= 0).all()
    recall = (np.sort(idx, 1)[:, :, None] == np.sort(exact, 1)[:, None, :]).any(2).mean()
    assert recall > 0.95


@pytest.mark.parametrize("backend", ["faiss", "faiss_ivf", "faiss_hnsw"])
def test_resident_index_is_built_once_and_answers_as_sharded_knn(client, backend):
    from prodmatch.distributed import ShardedIndex

    x = catalogue(n=2400, dim=16)
    shards = scatter_rows(client, x, 2)  # 1,200 rows each: real IVF / HNSW indexes
    batches = [catalogue(n=150, dim=16, seed=s) for s in (1, 2)]
    with ShardedIndex.build(client, shards, backend).wait() as index:
        for q in batches:  # each batch: the lists sharded_knn builds its indexes afresh for
            sims, idx = index.search(q, 20)
            want_sims, want_idx = sharded_knn(client, shards, 20, query=q, backend=backend)
            np.testing.assert_array_equal(idx, want_idx)
            np.testing.assert_array_equal(sims, want_sims)
        served = client.gather([client.submit(lambda part: part.searches, part, workers=[w], pure=False)
                                for part, w in zip(index.parts, index.workers)])
        assert served == [2, 2]  # one ShardIndex object per shard answered both batches: built once
        holders = client.who_has(index.parts)
        assert [holders[p.key][0] for p in index.parts] == [client.who_has([s.data])[s.data.key][0] for s in shards]
    with pytest.raises(DataError, match="closed"):
        index.search(batches[0], 5)


def test_resident_index_on_a_tiny_catalogue_and_bad_queries(client):
    from prodmatch.distributed import ShardedIndex

    x = catalogue(n=3, dim=4)
    shards = scatter_rows(client, x, 2)  # 2 + 1 rows: below AnnRule.min_rows, exact in each shard
    with ShardedIndex.build(client, shards, "faiss_hnsw").wait() as index:
        sims, idx = index.search(x, 5)  # k past the catalogue: all 3 rows
        want_sims, want_idx = knn(x, 5, query=x, backend="faiss")
        np.testing.assert_array_equal(idx, want_idx)
        np.testing.assert_array_equal(sims, want_sims)
        sims, idx = index.search(np.zeros((0, 4), np.float32), 2)
        assert sims.shape == idx.shape == (0, 2)
        with pytest.raises(DataError, match="query has 3 columns but the shard rows have 4"):
            index.search(np.ones((2, 3), np.float32), 2)
    with pytest.raises(DataError, match="query has 3 columns"):  # the per-call path: the same check
        sharded_knn(client, shards, 2, query=np.ones((2, 3), np.float32))
    with pytest.raises(DataError, match="shard backend"):
        ShardedIndex.build(client, shards, "cuml")


def test_local_cluster_shuts_down_its_processes():
    psutil = pytest.importorskip("psutil")
    with local_cluster(OPTIONS) as client:
        pids = list(client.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        sims, idx = sharded_knn(client, scatter_rows(client, catalogue(n=50, dim=4), 2), 3)
        assert idx.shape == (50, 3)
    assert client.status == "closed"
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
        assert time.monotonic() < deadline, f"worker processes {pids} still running"
        time.sleep(0.1)
