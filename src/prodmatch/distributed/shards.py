"""Contiguous row shards of a catalogue held on Dask workers: shard i is global rows
``offset .. offset + rows``, so a shard's local index + offset is the global row id."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class Shard:
    """One shard: a future of its (rows, dim) float32 unit rows on a worker, and where it starts."""

    data: Any  # distributed.Future
    offset: int
    rows: int


def shard_bounds(n: int, n_shards: int) -> np.ndarray:
    """Start offsets of `n_shards` near-equal contiguous shards of `n` rows, plus `n` at the end;
    more shards than rows gives one row per shard (no empty shard)."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    parts = max(1, min(int(n_shards), int(n)))
    return np.linspace(0, n, parts + 1).round().astype(np.int64)


def scatter_rows(client, x: np.ndarray, n_shards: int) -> list[Shard]:
    """Split `x` into shards and scatter them over the workers (round robin, one copy each)."""
    bounds = shard_bounds(len(x), n_shards)
    parts = [np.ascontiguousarray(x[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    futures = client.scatter(parts, hash=False)
    return [Shard(f, int(a), int(b - a)) for f, a, b in zip(futures, bounds[:-1], bounds[1:])]


def gather_rows(client, shards: Sequence[Shard]) -> np.ndarray:
    """The shards' rows, in global order, in this process (what the post-processing reads)."""
    return np.concatenate(client.gather([s.data for s in shards]), axis=0)


def check_shards(shards: Sequence[Shard]) -> int:
    """Total rows; raises when the shards do not tile 0..n in order (a merge would mislabel rows)."""
    start = 0
    for i, s in enumerate(shards):
        if s.offset != start or s.rows < 1:
            raise DataError(f"shard {i} starts at {s.offset} with {s.rows} rows; expected contiguous non-empty "
                             f"shards (this one should start at {start})")
        start += s.rows
    if not shards:
        raise DataError("no shards to search")
    return start
