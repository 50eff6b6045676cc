"""Simulated catalogue of shards x rows clustered float32 vectors on a Dask LocalCluster: per-shard
generation (from seeds, inside the workers: never all rows in one process), index build, top-K of a
query set, and the global merge; seconds and peak RSS per shard and for the merge.

    .venv/bin/python bench/sim_10m.py --shards 10 --rows 1000000 --workers 2 [--backend faiss_ivf]

Vectors: `clusters` random centres (one seed for every shard) + Gaussian noise, unit rows, drawn in
blocks of 65,536 rows with seed (seed, shard, block). Queries: the first queries / shards rows of
every shard (a self-search sample, as bench/ann.py). Peak RSS is sampled every 50 ms in the worker
process during each task (above the worker's RSS before it). Recall@K: the merged approximate
lists vs the merged exact (faiss flat) lists of the first `recall_queries` queries.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

BLOCK = 65_536


def centres(args) -> np.ndarray:
    return np.random.default_rng(args.seed).normal(size=(args.clusters, args.dim)).astype(np.float32)


def shard_rows(args, shard: int, stop: int) -> np.ndarray:
    """Rows 0..stop of `shard` (float32, unit), block by block from their own seeds."""
    c = centres(args)
    out = np.empty((stop, args.dim), np.float32)
    for b, start in enumerate(range(0, stop, BLOCK)):
        rng = np.random.default_rng((args.seed, shard, b))
        m = min(BLOCK, stop - start)
        block = c[rng.integers(0, len(c), m)]
        block += args.noise * rng.normal(size=(m, args.dim)).astype(np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


@contextmanager
def peak_rss():
    """{'before_gb', 'peak_gb'}: this process's RSS before and its sampled maximum during the block."""
    import psutil

    proc, facts, done = psutil.Process(), {}, threading.Event()
    facts["before_gb"] = facts["peak_gb"] = proc.memory_info().rss / 2**30

    def sample():
        while not done.wait(0.05):
            facts["peak_gb"] = max(facts["peak_gb"], proc.memory_info().rss / 2**30)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield facts
    finally:
        done.set()
        thread.join()
        facts["peak_gb"] = max(facts["peak_gb"], proc.memory_info().rss / 2**30)


def queries(args) -> np.ndarray:
    per = args.queries // args.shards
    return np.concatenate([shard_rows(args, s, per) for s in range(args.shards)])


def run_shard(args, shard: int, query: np.ndarray) -> dict:
    """One shard's whole job on a worker: generate, build, search; its lists with global ids."""
    from prodmatch import ann, neighbors

    offset = shard * args.rows
    with peak_rss() as rss:
        t0 = time.perf_counter()
        base = shard_rows(args, shard, args.rows)
        t1 = time.perf_counter()
        index = ann.ANN_INDEXES[args.backend](base) if args.backend != "faiss" else None
        t2 = time.perf_counter()
        sims, idx = ann.search_index(index, base, query, args.k, 4096)
        t3 = time.perf_counter()
        exact = neighbors._search_faiss(base, query[: args.recall_queries], args.k, 4096)
        t4 = time.perf_counter()
        del index, base
    ordered = neighbors.order_ties(sims, idx + offset)
    return {"shard": shard, "gen_s": t1 - t0, "build_s": t2 - t1, "search_s": t3 - t2, "exact_sub_s": t4 - t3,
            **rss, "lists": ordered, "exact": neighbors.order_ties(exact[0], exact[1] + offset)}


def merge(args, *results) -> dict:
    """The global merge of every shard's lists (one task, timed), and recall of the sample."""
    from prodmatch.distributed import merge_topk

    with peak_rss() as rss:
        t0 = time.perf_counter()
        sims, ids = merge_topk([r["lists"] for r in results], args.k)
        t1 = time.perf_counter()
    _, exact = merge_topk([r["exact"] for r in results], args.k)
    got = ids[: args.recall_queries]
    recall = (np.sort(got, 1)[:, :, None] == np.sort(exact, 1)[:, None, :]).any(2).mean()
    stats = [{k: v for k, v in r.items() if k not in ("lists", "exact")} for r in results]
    return {"merge_s": t1 - t0, **rss, "recall": float(recall), "shards": stats, "shape": ids.shape}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", type=int, default=10)
    p.add_argument("--rows", type=int, default=1_000_000, help="rows per shard")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--recall-queries", type=int, default=500)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--clusters", type=int, default=20_000)
    p.add_argument("--noise", type=float, default=0.35)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--backend", default="faiss_ivf", choices=["faiss", "faiss_ivf", "faiss_ivfpq", "faiss_hnsw"])
    p.add_argument("--out", default="bench/results/sim_10m.md")
    args = p.parse_args()
    from prodmatch.distributed import ClusterOptions, local_cluster
    from prodmatch.io import write_text

    started = time.perf_counter()
    with local_cluster(ClusterOptions(n_workers=args.workers, threads_per_worker=1)) as client:
        query = client.submit(queries, args, pure=False)
        shards = [client.submit(run_shard, args, s, query, pure=False) for s in range(args.shards)]
        out = client.submit(merge, args, *shards, pure=False).result()
    wall = time.perf_counter() - started
    n = args.shards * args.rows
    lines = [f"# Simulated catalogue: {n:,} x {args.dim} float32 ({args.shards} shards x {args.rows:,} rows), "
             f"{args.queries:,} queries, top-{args.k}, shard index {args.backend}",
             "", f"`{shlex.join([Path(sys.executable).name, *sys.argv])}`", "",
             f"{args.workers} worker processes x 1 thread (LocalCluster); wall {wall:.0f} s for everything "
             f"(cluster start, queries, every shard, merge); recall@{args.k} of the merged lists vs merged exact "
             f"lists on {args.recall_queries} queries: **{out['recall']:.4f}**", "",
             "| shard | generate s | build s | search s | exact sample s | RSS before GB | peak RSS GB |",
             "|---|---|---|---|---|---|---|"]
    for r in sorted(out["shards"], key=lambda r: r["shard"]):
        lines.append(f"| {r['shard']} | {r['gen_s']:.1f} | {r['build_s']:.1f} | {r['search_s']:.1f} | "
                     f"{r['exact_sub_s']:.1f} | {r['before_gb']:.2f} | {r['peak_gb']:.2f} |")
    col = lambda key: np.array([r[key] for r in out["shards"]])
    lines += [f"| **mean** | {col('gen_s').mean():.1f} | {col('build_s').mean():.1f} | {col('search_s').mean():.1f} | "
              f"{col('exact_sub_s').mean():.1f} | {col('before_gb').mean():.2f} | {col('peak_gb').max():.2f} (max) |",
              "", f"merge of {args.shards} x ({args.queries:,} x {args.k}) lists in one task: {out['merge_s']:.2f} s, "
              f"RSS {out['before_gb']:.2f} -> peak {out['peak_gb']:.2f} GB; merged shape {out['shape']}"]
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(args.out, text)


if __name__ == "__main__":
    main()
