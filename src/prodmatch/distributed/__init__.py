"""Past one machine on Dask: sharded embedding (each worker loads the encoder once), per-shard
exact or approximate indexes, a global top-K merge exact with respect to the shard lists, and the
matcher's post-processing on the merged lists (README.md here). Names load lazily (dask on use).

    >>> from prodmatch.distributed import local_cluster, scatter_rows, sharded_knn   # doctest: +SKIP
    >>> with local_cluster() as client:                  # 2 worker processes on this machine
    ...     shards = scatter_rows(client, emb, 8)        # or embed_shards(client, frame, folder, 8)
    ...     sims, idx = sharded_knn(client, shards, 50)  # == neighbors.knn(emb, 50) (exact shards)
"""
from __future__ import annotations

from ..registry import lazy_attributes

_LAZY = {
    "ClusterOptions": "cluster", "local_cluster": "cluster", "connect": "cluster", "open_cluster": "cluster",
    "current_client": "cluster",
    "worker_count": "cluster",
    "Shard": "shards", "shard_bounds": "shards", "scatter_rows": "shards", "gather_rows": "shards",
    "merge_topk": "merge", "reduce_topk": "merge",
    "sharded_knn": "search", "shard_topk": "search", "SHARD_BACKENDS": "search",
    "EncoderPlugin": "embed", "embed_shards": "embed", "encoder_loads": "embed",
    "sharded_matches": "match",
    "ShardedIndex": "index", "ShardIndex": "search",
}

__getattr__ = lazy_attributes(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
