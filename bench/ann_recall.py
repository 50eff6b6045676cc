"""Recall@K of the approximate backends tuned to `AnnRule.target_recall` vs their untuned rule.

    .venv/bin/python bench/ann_recall.py [--n 50000 --dim 64 --clusters 5000 --noise 0.3 --k 50]

Vectors: `clusters` random centres + Gaussian noise (sigma `noise`), unit rows, seed 0 (as
bench/ann.py). Each backend runs ``knn(x, k, backend=b)``, a self-search of every row (index build,
tuning and search timed together), once per `--targets` value ("none": the rule's starting
parameters, untuned); recall@K is over every row (or `--queries` sampled ones) against exact faiss.
"Parameters" and "sample recall" are what the build chose and measured (`ann.LAST_TUNING`).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ann import vectors  # noqa: E402  (bench/ is not a package; the same data as ann.py)

BACKENDS = ("faiss_ivf", "faiss_ivfpq", "faiss_hnsw")


def recall(idx: np.ndarray, exact: np.ndarray) -> float:
    """Share of the exact lists' ids the approximate lists hold (rows offset apart: one isin)."""
    off = np.arange(len(idx))[:, None] * (int(max(idx.max(), exact.max())) + 1)
    return float(np.isin(idx + off, exact + off).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--clusters", type=int, default=5_000)
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--queries", type=int, default=0, help="rows whose recall is measured (0: every row)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--targets", nargs="+", default=["none", "0.99"], help="AnnRule.target_recall values ('none': untuned)")
    p.add_argument("--backends", nargs="+", default=list(BACKENDS))
    p.add_argument("--out", default="bench/results/ann_recall.md")
    args = p.parse_args()

    import faiss
    import pandas as pd

    from prodmatch import ann, neighbors
    from prodmatch.io import write_text
    from prodmatch.report import markdown_table

    faiss.omp_set_num_threads(args.threads)
    x = vectors(args.n, args.dim, args.clusters, args.noise, args.seed)
    rows = (np.sort(np.random.default_rng(1).choice(args.n, args.queries, replace=False))
            if 0 < args.queries < args.n else slice(None))
    started = time.perf_counter()
    exact = neighbors.knn(x, args.k, backend="faiss")[1]
    table = [{"backend": "faiss (exact)", "target": "", "parameters": "", "sample recall": "",
              f"recall@{args.k}": 1.0, "build+search s": round(time.perf_counter() - started, 1)}]
    print(table[-1], flush=True)
    rule = ann.ANN_RULE
    for target in args.targets:
        ann.ANN_RULE = replace(rule, target_recall=None if target == "none" else float(target))
        for b in args.backends:
            ann.LAST_TUNING = None
            started = time.perf_counter()
            idx = neighbors.knn(x, args.k, backend=b)[1]
            seconds = time.perf_counter() - started
            tuning = ann.LAST_TUNING
            if tuning is None:  # untuned: the rule's starting parameters
                nlist = rule.nlist(args.n)
                params = (f"efSearch {max(rule.ef_search, 2 * args.k)}" if b == "faiss_hnsw" else
                          f"nprobe {rule.nprobe(nlist)}" + (f", k_factor {rule.refine_factor}" if b == "faiss_ivfpq" else ""))
            else:
                params = ", ".join(f"{name} {value}" for name, value in tuning.params.items())
            table.append({"backend": b, "target": target, "parameters": params,
                          "sample recall": "" if tuning is None else f"{tuning.recall:.4f} ({tuning.queries})",
                          f"recall@{args.k}": round(recall(idx[rows], exact[rows]), 4),
                          "build+search s": round(seconds, 1)})
            print(table[-1], flush=True)
    ann.ANN_RULE = rule
    measured = f"{args.queries:,} sampled rows" if isinstance(rows, np.ndarray) else f"all {args.n:,} rows"
    head = (f"# Approximate KNN tuned to a target recall, {args.n:,} x {args.dim} clustered unit vectors "
            f"({args.clusters:,} centres, noise {args.noise}, seed {args.seed}), self-search top-{args.k}, "
            f"{args.threads} threads; recall@{args.k} vs exact faiss over {measured}; IVF nlist "
            f"{rule.nlist(args.n)}\n\n`{' '.join(sys.argv)}`\n\n")
    text = markdown_table(pd.DataFrame(table))
    print(text)
    write_text(args.out, head + text + "\n")


if __name__ == "__main__":
    main()
