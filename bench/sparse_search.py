"""Exact top-K cosine search of TF-IDF rows: which implementation is fastest at equal neighbour lists.

Candidates (each a function ``x -> (sims, idx)`` over unit CSR rows, self-search, K=50):
- ``scipy-dense-blocks``: the package's search before sparse-dot-topn (scipy sparse products of
  row chunks made dense per block, argpartition);
- ``sparse-dot-topn``: the package's `SparseModel.search`: `sparse_dot_topn.sp_matmul_topn`
  (multithreaded C++ sparse product with top-n selection) keeping k + 8, re-scored, ties by index;
- ``svd-faiss``: TF-IDF reduced to dense vectors by TruncatedSVD and searched with faiss
  (approximate: recall against the exact lists is reported).

Each runs in its own process (peak RSS per method). Neighbour lists are compared with the first
method's as the share of rows whose top-K *sets* agree and the recall@K of the exact list.

    .venv/bin/python bench/sparse_search.py --data input/synthetic/shopee-kaggle-seed0 --split train
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

METHODS = ("sparse-dot-topn", "scipy-dense-blocks", "svd-faiss")


def titles(data: Path, split: str, rows: int | None):
    import pandas as pd

    frame = pd.read_csv(data / f"{split}.csv", usecols=["title"], dtype=str, keep_default_na=False)
    return frame["title"].tolist()[:rows]


def embed(data, split, rows, analyzer):
    from prodmatch.encoders.tfidf import TfidfConfig, tfidf_embed

    cfg = TfidfConfig.char() if analyzer == "char" else TfidfConfig()
    return tfidf_embed(titles(data, split, rows), cfg)


def search(method: str, x, k: int, threads: int):
    from prodmatch.neighbors import sort_neighbours
    from prodmatch.similarity import SparseModel

    if method == "sparse-dot-topn":
        model = SparseModel.search(x, k, threads=threads)
        return model.sims, model.idx
    x = SparseModel(x).x  # unit rows, float32
    if method == "scipy-dense-blocks":
        n = x.shape[0]
        chunk = max(1, 2**25 // n)
        xt = x.T.tocsc()
        sims, idx = np.empty((n, k), np.float32), np.empty((n, k), np.int64)
        for s in range(0, n, chunk):
            block = (x[s : s + chunk] @ xt).toarray()
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
            sims[s : s + chunk], idx[s : s + chunk] = np.take_along_axis(block, part, 1), part
        return sort_neighbours(sims, idx, self_search=True)
    if method == "svd-faiss":
        from sklearn.decomposition import TruncatedSVD

        from prodmatch.neighbors import knn

        dense = TruncatedSVD(256, random_state=0).fit_transform(x).astype(np.float32)
        dense[np.linalg.norm(dense, axis=1) == 0, 0] = 1.0
        return knn(dense, k, backend="faiss")
    raise ValueError(method)


def child(args) -> None:
    x = embed(args.data, args.split, args.rows, args.analyzer)
    start = time.perf_counter()
    sims, idx = search(args.child, x, args.k, args.threads)
    seconds = time.perf_counter() - start
    np.save(args.save, idx)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": seconds, "peak_gb": peak, "vocab": x.shape[1], "nnz_per_row": x.nnz / x.shape[0]}))


def agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(share of rows with equal sets, recall@K of `a`'s lists in `b`'s)."""
    n, k = a.shape
    keys_a = np.sort(a, 1)
    keys_b = np.sort(b, 1)
    same = float((keys_a == keys_b).all(1).mean())
    flat_a = (np.arange(n)[:, None] * n + a).ravel()
    flat_b = (np.arange(n)[:, None] * n + b).ravel()
    recall = float(np.isin(flat_a, flat_b).mean())
    return same, recall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--rows", type=int, default=None, help="first N rows only")
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--analyzers", nargs="+", default=["word", "char"])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--out", type=Path, default=Path("bench/results/sparse_search.md"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--analyzer", help=argparse.SUPPRESS)
    p.add_argument("--save", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    lines = [f"`{' '.join(sys.argv)}`", "",
             "| analyzer | method | rows | vocab | nnz/row | seconds | peak RSS GB | rows with the same top-K set | recall@K |",
             "|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for analyzer in args.analyzers:
            reference = None
            for method in args.methods:
                save = Path(tmp) / f"{analyzer}-{method}.npy"
                cmd = [sys.executable, __file__, "--data", str(args.data), "--split", args.split, "--k", str(args.k),
                       "--threads", str(args.threads), "--child", method, "--analyzer", analyzer, "--save", str(save)]
                if args.rows:
                    cmd += ["--rows", str(args.rows)]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode:
                    lines.append(f"| {analyzer} | {method} | failed: {done.stderr.strip().splitlines()[-1]} |")
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                idx = np.load(save)
                reference = idx if reference is None else reference
                same, recall = agreement(reference, idx)
                lines.append(f"| {analyzer} | {method} | {len(idx):,} | {r['vocab']:,} | {r['nnz_per_row']:.1f} | "
                             f"{r['seconds']:.1f} | {r['peak_gb']:.2f} | {same:.4f} | {recall:.4f} |")
                print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
