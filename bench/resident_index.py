"""A catalogue searched batch after batch on a Dask LocalCluster: `sharded_knn` (every index built
for each call) against `ShardedIndex` (built once, kept on the workers); seconds per batch and in all.

    .venv/bin/python bench/resident_index.py --rows 400000 --shards 2 --batches 5 --queries 2000

Vectors: bench/ann.py's clustered unit rows (`clusters` centres + Gaussian noise, seeded); the query
batches are further rows of the same draw, not in the catalogue. Writes the table to bench/results/resident_index.md.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ann import vectors  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=400_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--clusters", type=int, default=5000)
    p.add_argument("--noise", type=float, default=0.35)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=5)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--backend", default="faiss_ivf", choices=["faiss", "faiss_ivf", "faiss_ivfpq", "faiss_hnsw"])
    p.add_argument("--out", default="bench/results/resident_index.md")
    args = p.parse_args(argv)

    from prodmatch.distributed import ClusterOptions, ShardedIndex, local_cluster, scatter_rows, sharded_knn
    from prodmatch.io import write_text

    rows_and_queries = vectors(args.rows + args.batches * args.queries, args.dim, args.clusters, args.noise, seed=1)
    x = rows_and_queries[:args.rows]  # the catalogue; the rows after it are the query batches (not in it)
    batches = np.split(rows_and_queries[args.rows:], args.batches)
    rows = []
    with local_cluster(ClusterOptions(n_workers=args.workers)) as client:
        shards = scatter_rows(client, x, args.shards)
        per_call, lists = [], []
        for q in batches:
            t = time.perf_counter()
            lists.append(sharded_knn(client, shards, args.k, query=q, backend=args.backend)[1])
            per_call.append(time.perf_counter() - t)
        t = time.perf_counter()
        index = ShardedIndex.build(client, shards, args.backend).wait()
        build = time.perf_counter() - t
        resident, same = [], True
        for q, want in zip(batches, lists):
            t = time.perf_counter()
            same &= bool(np.array_equal(index.search(q, args.k)[1], want))
            resident.append(time.perf_counter() - t)
        index.close()
    rows.append(("sharded_knn (index per call)", "", *[f"{s:.2f}" for s in per_call], f"{sum(per_call):.2f}"))
    rows.append(("ShardedIndex (built once)", f"{build:.2f}", *[f"{s:.2f}" for s in resident],
                 f"{build + sum(resident):.2f}"))
    head = ["path", "build s", *[f"batch {b + 1} s" for b in range(args.batches)], "total s"]
    lines = [f"`{' '.join(shlex.quote(a) for a in ['bench/resident_index.py', *(argv or sys.argv[1:])])}`: "
             f"{args.rows:,} x {args.dim} rows in {args.shards} shards on {args.workers} worker processes, "
             f"{args.backend}, {args.batches} batches of {args.queries:,} queries, top-{args.k}; "
             f"identical lists: {same}", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
