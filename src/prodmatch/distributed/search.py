"""Sharded top-K search: every shard searched where it lives (exact faiss or an approximate
backend of `prodmatch.neighbors`), the lists merged by `merge.reduce_topk`, then the same finish
as one machine's `knn` (clip, ties by id, self first), so exact search gives identical lists."""
from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..ann import build_index, search_index
from ..neighbors import check_k, default_chunk, normalize_rows, order_ties, sort_neighbours
from .cluster import current_client, worker_count
from .merge import reduce_topk
from .shards import Shard, check_shards, scatter_rows

SHARD_BACKENDS = ("faiss", "faiss_ivf", "faiss_ivfpq", "faiss_hnsw")  # what a shard may run (CPU, in-process)
DISTRIBUTED = {"dask": "faiss", "dask_ivf": "faiss_ivf", "dask_ivfpq": "faiss_ivfpq", "dask_hnsw": "faiss_hnsw"}
"""Cluster backend -> the backend each shard runs: the base rows are split into one shard per
worker of the current Dask client, every shard searched where it lives, the lists merged."""


class ShardIndex:
    """One shard's unit rows and their index (None: exact search), on the worker that built it.
    Rows are normalised here as `knn` normalises its input (row by row: one machine's floats)."""

    def __init__(self, base: np.ndarray, backend: str, offset: int) -> None:
        self.base = normalize_rows(base, "shard")
        self.index = None if backend == "faiss" else build_index(backend, self.base)
        self.offset = offset
        self.searches = 0  # query batches served (a resident index is built once for all of them)

    def topk(self, query: np.ndarray, k: int, chunk: int):
        """The top-min(k, rows) of `query` among this shard, as (raw sims, global ids) ordered by
        (sim desc, id asc); raw: clipping waits for the merged lists."""
        if query.shape[1] != self.base.shape[1]:
            raise DataError(f"query has {query.shape[1]} columns but the shard rows have {self.base.shape[1]}")
        self.searches += 1
        sims, idx = search_index(self.index, self.base, query, min(k, len(self.base)), chunk)
        return order_ties(np.asarray(sims, np.float32), np.asarray(idx, np.int64) + self.offset)


def shard_topk(base: np.ndarray, query: np.ndarray, k: int, chunk: int, backend: str, offset: int):
    """On a worker: one shard's top-K of `query`, its index built for this call (`ShardIndex`)."""
    return ShardIndex(base, backend, offset).topk(query, k, chunk)


def _stack(*parts):
    """Every shard's rows as one normalised query matrix (a self-search)."""
    return normalize_rows(np.concatenate(parts, axis=0), "query")


def sharded_knn(client, shards: Sequence[Shard], k: int, *, query=None, backend: str = "faiss",
                chunk: int | None = None, fan_in: int = 8):
    """Top-k cosine neighbours among the rows of `shards` (unit rows on the workers), like
    ``neighbors.knn``: ``(sims float32, idx int64)`` of shape (n_query, min(k, n)), global row ids.

    `query`: None searches every catalogue row (self-search: row i first), else an array or a
    future of unit rows. `backend`: what each shard runs (exact "faiss" gives knn's exact lists).

        >>> with local_cluster() as client:                         # doctest: +SKIP
        ...     shards = scatter_rows(client, normalize_rows(emb), 4)
        ...     sims, idx = sharded_knn(client, shards, 50)          # == knn(emb, 50)
    """
    if backend not in SHARD_BACKENDS:
        raise DataError(f"shard backend {backend!r}: choose from {', '.join(SHARD_BACKENDS)}")
    n = check_shards(shards)
    k = check_k(k, n)
    chunk = default_chunk(n) if chunk is None else int(chunk)  # the chunk one machine would use: same BLAS path
    self_search = query is None
    if self_search:  # every row a query: the catalogue stacked once, sent once to each worker
        query = client.submit(_stack, *[s.data for s in shards], pure=False)
    elif not hasattr(query, "key"):  # an array in this process: one copy per worker, not per task
        query = client.scatter(normalize_rows(query, "query"), broadcast=True, hash=False)
    sims, idx = search_shards(client, shards, query, k, chunk, backend, fan_in).result()
    return sort_neighbours(sims, idx, self_search=self_search)


def search_shards(client, shards: Sequence[Shard], query, k: int, chunk: int, backend: str, fan_in: int = 8):
    """The future of the merged (raw sims, global ids) of `query` (a future) over every shard:
    one `shard_topk` task per shard (run where its shard lives), then `reduce_topk`."""
    parts = [client.submit(shard_topk, s.data, query, k, chunk, backend, s.offset, pure=False) for s in shards]
    return reduce_topk(client, parts, k, fan_in)


def cluster_search(base: np.ndarray, query: np.ndarray, k: int, chunk: int, shard_backend: str):
    """The `dask*` backends (`search_dask*` below, declared in `neighbors.BACKENDS`): `base` scattered
    in one shard per worker of the current client, `query` broadcast, lists merged (raw sims: knn
    applies its own finish)."""
    client = current_client()
    shards = scatter_rows(client, base, worker_count(client))
    if query is base:  # a self-search: the workers stack their shards instead of receiving base again
        q = client.submit(_stack, *[s.data for s in shards], pure=False)
    else:
        q = client.scatter(query, broadcast=True, hash=False)
    return search_shards(client, shards, q, k, chunk, shard_backend).result()



# the `dask*` KNN backends (`neighbors.BACKENDS` declares them by these names)
search_dask = partial(cluster_search, shard_backend=DISTRIBUTED["dask"])
search_dask_ivf = partial(cluster_search, shard_backend=DISTRIBUTED["dask_ivf"])
search_dask_ivfpq = partial(cluster_search, shard_backend=DISTRIBUTED["dask_ivfpq"])
search_dask_hnsw = partial(cluster_search, shard_backend=DISTRIBUTED["dask_hnsw"])
