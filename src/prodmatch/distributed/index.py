"""Per-shard indexes that stay in their workers' memory: built once (`ShardedIndex.build`), then
searched with any number of query batches, where `sharded_knn` builds every index for one call.
A catalogue served again and again pays the IVF training / HNSW construction once."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..neighbors import check_k, default_chunk, normalize_rows, sort_neighbours
from .merge import reduce_topk
from .search import SHARD_BACKENDS, ShardIndex
from .shards import Shard, check_shards


def _build(base, backend: str, offset: int) -> ShardIndex:
    return ShardIndex(base, backend, offset)


def _topk(shard: ShardIndex, query, k: int, chunk: int):
    return shard.topk(query, k, chunk)


@dataclass
class ShardedIndex:
    """Futures of built `ShardIndex` objects, one per shard, each pinned to the worker holding it
    (an index never travels: faiss objects are not shipped between processes)."""

    client: object
    parts: list  # distributed.Future of ShardIndex
    workers: list[str]
    rows: int
    backend: str

    @classmethod
    def build(cls, client, shards: Sequence[Shard], backend: str = "faiss") -> "ShardedIndex":
        """Build every shard's index on the worker its rows live on (exact ``faiss`` keeps the rows)."""
        if backend not in SHARD_BACKENDS:
            raise DataError(f"shard backend {backend!r}: choose from {', '.join(SHARD_BACKENDS)}")
        n = check_shards(shards)
        holders = client.who_has([s.data for s in shards])
        workers = [holders[s.data.key][0] for s in shards]
        parts = [client.submit(_build, s.data, backend, s.offset, workers=[w], allow_other_workers=False, pure=False)
                 for s, w in zip(shards, workers)]
        return cls(client, parts, workers, n, backend)  # builds run now; search (or wait) waits for them

    def wait(self) -> "ShardedIndex":
        """Block until every shard's index is built (a failed build raises here)."""
        from distributed import wait

        wait(self.parts)  # not a gather: a built index stays where it is
        for part in self.parts:
            if part.status == "error":
                part.result()
        return self

    def search(self, query: np.ndarray, k: int, *, chunk: int | None = None, fan_in: int = 8):
        """Top-k cosine neighbours of `query` rows among the catalogue: ``(sims, idx)`` as
        `sharded_knn` gives for the same shards and backend (global row ids, (n_query, min(k, n)))."""
        if not self.parts:
            raise DataError("this ShardedIndex is closed")
        k = check_k(k, self.rows)
        chunk = default_chunk(self.rows) if chunk is None else int(chunk)
        q = self.client.scatter(normalize_rows(np.asarray(query), "query"), broadcast=True, hash=False)
        lists = [self.client.submit(_topk, part, q, k, chunk, workers=[w], allow_other_workers=False, pure=False)
                 for part, w in zip(self.parts, self.workers)]
        sims, idx = reduce_topk(self.client, lists, k, fan_in).result()
        return sort_neighbours(sims, idx, self_search=False)

    def close(self) -> None:
        """Release the indexes (their workers free the memory)."""
        self.client.cancel(self.parts)
        self.parts = []

    def __enter__(self) -> "ShardedIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
