"""Approximate vs exact KNN on clustered unit vectors: build time, search time, recall@K, peak RSS.

    .venv/bin/python bench/ann.py --n 1000000 --dim 64 --queries 10000 --k 50 [--out bench/results/ann.md]

Vectors: `clusters` random centres + Gaussian noise (sigma `noise`), unit rows, seeded; the queries are
the first `queries` base rows (a self-search sample, as the matcher searches). Each backend runs in
its own process (its peak RSS); recall@K is against the exact faiss lists of the same queries.
"Self-search est." extrapolates a search of every base row: build + n / queries x search.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BACKENDS = ("faiss", "faiss_ivf", "faiss_ivfpq", "faiss_hnsw")


def vectors(n: int, dim: int, clusters: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)]
    x += noise * rng.normal(size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def run_one(args) -> None:
    """One backend in this process: writes {build_s, search_s, rss_gb} and the neighbour ids."""
    import faiss

    from prodmatch import ann, neighbors

    faiss.omp_set_num_threads(args.threads)
    x = vectors(args.n, args.dim, args.clusters, args.noise, args.seed)
    query = x[:args.queries]
    started = time.perf_counter()
    if args.backend == "faiss":
        index = faiss.IndexFlatIP(args.dim)
        index.add(x)
    else:
        index = ann.ANN_INDEXES[args.backend](x)
    built = time.perf_counter()
    _, idx = ann.search_index(index, x, query, args.k, 4096)
    searched = time.perf_counter()
    np.save(Path(args.work) / f"{args.backend}.npy", idx)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    Path(args.work, f"{args.backend}.json").write_text(json.dumps(
        {"build_s": built - started, "search_s": searched - built, "rss_gb": rss}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--clusters", type=int, default=20_000)
    p.add_argument("--noise", type=float, default=0.35)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", nargs="+", default=list(BACKENDS))
    p.add_argument("--out", default="bench/results/ann.md")
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.backend:
        return run_one(args)
    from prodmatch.io import write_text
    from prodmatch.report import markdown_table

    import pandas as pd

    backends = ["faiss"] + [b for b in args.backends if b != "faiss"]
    with tempfile.TemporaryDirectory() as work:
        for b in backends:
            cmd = [sys.executable, __file__, "--backend", b, "--work", work] + [
                f"--{k}={getattr(args, k)}" for k in ("n", "dim", "queries", "k", "clusters", "noise", "seed", "threads")]
            subprocess.run(cmd, check=True)
            print(f"{b}: done", flush=True)
        exact = np.load(Path(work) / "faiss.npy")
        rows = []
        for b in backends:
            facts = json.loads(Path(work, f"{b}.json").read_text())
            idx = np.load(Path(work) / f"{b}.npy")
            hits = (np.sort(idx, 1)[:, :, None] == np.sort(exact, 1)[:, None, :]).any(2).sum(1)
            base = json.loads(Path(work, "faiss.json").read_text())
            full = facts["build_s"] + args.n / args.queries * facts["search_s"]
            base_full = base["build_s"] + args.n / args.queries * base["search_s"]
            rows.append({"backend": b, f"recall@{args.k}": round(float(hits.mean() / args.k), 4),
                         "build s": round(facts["build_s"], 1), f"search s ({args.queries:,} queries)":
                         round(facts["search_s"], 2), "search speed-up": round(base["search_s"] / facts["search_s"], 1),
                         "self-search est. s": round(full, 0), "self-search speed-up": round(base_full / full, 1),
                         "peak RSS GB": round(facts["rss_gb"], 2)})
    table = markdown_table(pd.DataFrame(rows))
    head = (f"# Approximate KNN, {args.n:,} x {args.dim} clustered unit vectors ({args.clusters:,} centres, "
            f"noise {args.noise}), top-{args.k}, {args.threads} threads\n\n"
            f"`{' '.join(sys.argv)}`\n\n")
    print(table)
    write_text(args.out, head + table + "\n")


if __name__ == "__main__":
    main()
