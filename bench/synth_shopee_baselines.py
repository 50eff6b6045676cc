"""Baselines on a Shopee-format train.csv: title TF-IDF and image phash thresholds, row-F1 as Kaggle.

Used to calibrate the synthetic generator against the real data (TF-IDF ~0.79 there): run
``python bench/synth_shopee_baselines.py --data DIR``; the table also goes to
bench/results/synth_shopee_baselines.md.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

RESULTS = Path(__file__).resolve().parent / "results" / "synth_shopee_baselines.md"
_ESCAPES = re.compile(r"(?:\\x[0-9a-fA-F]{2})+")


def quick_decode(title: str) -> str:
    """Undo the two byte artefacts of the real train.csv well enough for a baseline."""
    if title.startswith('b"') and title.endswith('"') or title.startswith("b'") and title.endswith("'"):
        title = title[2:-1]
    return _ESCAPES.sub(lambda m: bytes.fromhex(m.group(0).replace("\\x", "")).decode("utf-8", "replace"), title)


def truth_matrix(labels: np.ndarray) -> sp.csr_matrix:
    """N x N boolean: same label_group (self included)."""
    _, codes = np.unique(labels, return_inverse=True)
    onehot = sp.csr_matrix((np.ones(len(codes)), (np.arange(len(codes)), codes)))
    return (onehot @ onehot.T).astype(bool).tocsr()


def row_scores(pred: sp.csr_matrix, truth: sp.csr_matrix) -> tuple[float, float, float]:
    """Mean row F1, precision and recall of predicted sets (self forced in)."""
    pred = (pred + sp.identity(pred.shape[0], format="csr")).astype(bool)
    inter = np.asarray(pred.multiply(truth).sum(axis=1)).ravel()
    n_pred = np.asarray(pred.sum(axis=1)).ravel()
    n_true = np.asarray(truth.sum(axis=1)).ravel()
    return float(np.mean(2 * inter / (n_pred + n_true))), float(np.mean(inter / n_pred)), float(np.mean(inter / n_true))


def tfidf_similarity(titles: list[str]) -> sp.csr_matrix:
    vec = TfidfVectorizer(binary=True, stop_words="english")
    x = vec.fit_transform(titles)
    return (x @ x.T).tocsr()


def phash_distance(hashes: list[str]) -> np.ndarray:
    """N x N Hamming distances between 64-bit phash hex strings."""
    ints = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    bits = ((ints[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.float32)
    return (bits @ (1 - bits).T + (1 - bits) @ bits.T).astype(np.int32)


def best_threshold(preds, truth):
    """(threshold, (f1, precision, recall), prediction) with the best F1 over `preds` (threshold -> matrix)."""
    best = None
    for t, pred in preds:
        scores = row_scores(pred, truth)
        if best is None or scores[0] > best[1][0]:
            best = (t, scores, pred)
    return best


def pairs_only_in(a: sp.csr_matrix, b: sp.csr_matrix, truth: sp.csr_matrix) -> int:
    """True pairs (i < j) predicted by `a` but not by `b`."""
    found_a = sp.triu(truth.multiply(a).astype(bool), k=1).tocsr()
    found_both = found_a.multiply(b.astype(bool))
    return int(found_a.nnz - found_both.count_nonzero())


def run(data: Path) -> str:
    t0 = time.time()
    df = pd.read_csv(data / "train.csv", dtype={"title": str, "image_phash": str}, keep_default_na=False)
    truth = truth_matrix(df["label_group"].to_numpy())
    n_true_pairs = int(sp.triu(truth, k=1).nnz)

    sim = tfidf_similarity([quick_decode(t) for t in df["title"]])
    grid = [round(t, 2) for t in np.arange(0.05, 0.951, 0.05)]
    tf = best_threshold(((t, sim >= t) for t in grid), truth)

    dist = phash_distance(list(df["image_phash"]))
    ph = best_threshold(((d, sp.csr_matrix(dist <= d)) for d in range(0, 33)), truth)

    union = tf[2] + ph[2]
    rows = [
        ("self only", "-", row_scores(sp.csr_matrix(truth.shape, dtype=bool), truth)),
        ("title TF-IDF cosine >= t", f"{tf[0]:.2f}", tf[1]),
        ("image phash Hamming <= d", str(ph[0]), ph[1]),
        ("TF-IDF or phash (both best)", "-", row_scores(union, truth)),
    ]
    only_tf = pairs_only_in(tf[2], ph[2], truth)
    only_ph = pairs_only_in(ph[2], tf[2], truth)
    lines = [
        f"# Shopee-format baselines on `{data}/train.csv`",
        "",
        f"{len(df)} postings, {df['label_group'].nunique()} groups, {n_true_pairs} true pairs (i < j).",
        "",
        "| method | threshold | F1 | precision | recall |",
        "|---|---|---|---|---|",
        *[f"| {m} | {t} | {s[0]:.4f} | {s[1]:.4f} | {s[2]:.4f} |" for m, t, s in rows],
        "",
        "| true pairs found only by | count | share of true pairs |",
        "|---|---|---|",
        f"| TF-IDF (not phash) | {only_tf} | {only_tf / max(1, n_true_pairs):.1%} |",
        f"| phash (not TF-IDF) | {only_ph} | {only_ph / max(1, n_true_pairs):.1%} |",
        "",
        f"_{time.time() - t0:.1f} s_",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with a Shopee-format train.csv")
    ap.add_argument("--out", type=Path, default=RESULTS, help="markdown file to write")
    args = ap.parse_args(argv)
    if not (args.data / "train.csv").is_file():
        print(f"error: no train.csv in {args.data}", file=sys.stderr)
        return 2
    table = run(args.data)
    print(table, end="")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
