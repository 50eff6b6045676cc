"""The matcher on sharded dense models: each model's catalogue searched shard by shard on the
cluster and merged, then the single-machine post-processing (`post.pool.Pool.matches`) on the
merged lists; searches the chain runs later (NB's blended vectors) go to the cluster as well."""
from __future__ import annotations

from typing import Mapping, Sequence

from ..errors import DataError
from ..post.pool import Pool
from ..post.stage import MatcherParams
from ..post.threshold import Matches
from ..similarity import DenseModel
from .search import DISTRIBUTED, sharded_knn
from .shards import Shard, gather_rows

CLUSTER_BACKEND = {shard: name for name, shard in DISTRIBUTED.items()}  # "faiss" -> "dask", ...


def sharded_matches(client, models: Mapping[str, Sequence[Shard]], params: MatcherParams, *, titles=None,
                    k: int = 50, backend: str = "faiss") -> Matches:
    """Per-row matches of `params` (a fitted matcher) over dense models given as shards (e.g. from
    `embed.embed_shards`); `backend` is what each shard runs. The rows are gathered once (the
    post-processing reads pair similarities); with "faiss" the result equals one machine's.

        >>> with local_cluster() as client:                                # doctest: +SKIP
        ...     shards = embed_shards(client, frame, "run/folds/text/0/final", 8)
        ...     matches = sharded_matches(client, {"text": shards}, params, titles=frame["title"])
    """
    if backend not in CLUSTER_BACKEND:
        raise DataError(f"shard backend {backend!r}: choose from {', '.join(CLUSTER_BACKEND)}")
    pool = Pool({name: ("dense", gather_rows(client, shards)) for name, shards in models.items()}, titles=titles,
                k=k, backend=CLUSTER_BACKEND[backend])
    for name, shards in models.items():
        sims, idx = sharded_knn(client, shards, k, backend=backend)
        pool.use_searched(name, DenseModel(pool.data[name][1], idx, sims))
    return pool.matches(params)
