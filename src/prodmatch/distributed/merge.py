"""The global top-K of per-shard top-K lists: exact with respect to them, ties by global row id.

Every row of the whole catalogue that belongs to a query's global top-K (ordered by similarity
desc, then row id asc) is in its own shard's top-K by the same order, so concatenating the shard
lists and keeping the first K by that order gives exactly the single-machine lists.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..neighbors import order_ties


def merge_topk(parts: Sequence[tuple[np.ndarray, np.ndarray]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(sims, global ids) of shape (n_query, min(k, total width)) from shard lists ``[(sims, ids), ...]``
    (each (n_query, k_s), any k_s): concatenated, ordered by (sim desc, id asc) per row, cut at k."""
    if not parts:
        raise ValueError("nothing to merge")
    rows = {len(s) for s, _ in parts} | {len(i) for _, i in parts}
    if len(rows) != 1:
        raise ValueError(f"shard lists cover different query counts: {sorted(rows)}")
    sims = np.concatenate([np.asarray(s, np.float32) for s, _ in parts], axis=1)
    ids = np.concatenate([np.asarray(i, np.int64) for _, i in parts], axis=1)
    sims, ids = order_ties(sims, ids)
    return np.ascontiguousarray(sims[:, :k]), np.ascontiguousarray(ids[:, :k])


def _merge_task(k: int, *parts):
    return merge_topk(parts, k)


def reduce_topk(client, futures: Sequence, k: int, fan_in: int = 8):
    """Merge per-shard list futures on the workers as a tree of `fan_in`-way merges (no process
    holds more than `fan_in` x k candidates per query); returns the future of the final lists."""
    if fan_in < 2:
        raise ValueError(f"fan_in must be >= 2, got {fan_in}")
    level = list(futures)
    while len(level) > 1:
        level = [client.submit(_merge_task, k, *level[i : i + fan_in], pure=False)
                 for i in range(0, len(level), fan_in)]
    return level[0]
