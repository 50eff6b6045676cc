"""Threshold baselines (word / char TF-IDF, phash) on a labelled Shopee-format folder.

    .venv/bin/python bench/baselines.py --data ../shared/data/shopee_titles          # real rows
    .venv/bin/python bench/baselines.py --data input/synthetic/shopee-demo-seed0     # synthetic

Uses train.csv when the folder has one, else every *.csv in it (the real sample's two files).
Prints a markdown table and writes it to bench/results/baselines-<folder>.md. "tuned on all"
picks the threshold on the rows it scores (optimistic, comparable to the data README); "5-fold
CV" scores each fold's rows at the threshold tuned on the other folds' groups (honest). The last
lines count the true pairs that only titles or only images find.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.embedders.tune import neighbour_pairs, tune_baseline
from prodmatch.embedders import get_embedder
from prodmatch.data.folds import group_folds
from prodmatch.data.shopee import read_shopee_csv
from prodmatch.io import write_text
from prodmatch.metrics import per_row_scores, row_scores
from prodmatch.post.tune import best_row_threshold


def load(folder: Path) -> pd.DataFrame:
    files = [folder / "train.csv"] if (folder / "train.csv").is_file() else sorted(folder.glob("*.csv"))
    return pd.concat([read_shopee_csv(f, image_policy="text-only") for f in files], ignore_index=True)


def cv_f1(frame: pd.DataFrame, method: str, n_folds: int = 5, seed: int = 0) -> float:
    """Mean row-F1 where each fold's rows are scored at the threshold tuned on the other folds.

    Held-out rows still search all rows, so the number of distractors matches the tuned-on-all
    column; only the threshold choice is kept away from the rows it scores.
    """
    groups = frame["label_group"].to_numpy()
    folds = group_folds(groups, n_folds, seed)
    grid = get_embedder(method).grid
    rows, cols, sims = neighbour_pairs(frame, method)
    f1 = np.zeros(len(frame))
    for k in range(n_folds):
        inside = (folds[rows] != k) & (folds[cols] != k)
        train_idx = np.flatnonzero(folds != k)
        remap = np.full(len(frame), -1)
        remap[train_idx] = np.arange(len(train_idx))
        t, _ = best_row_threshold(remap[rows[inside]], remap[cols[inside]], sims[inside], groups[train_idx], grid)
        keep = sims >= t
        f1[folds == k] = per_row_scores(rows[keep], cols[keep], groups)[0][folds == k]
    return float(f1.mean())


def true_pair_keys(frame: pd.DataFrame, method: str, threshold: float) -> np.ndarray:
    """Keys i*n+j (i < j) of the true pairs `method` finds at `threshold`."""
    rows, cols, sims = neighbour_pairs(frame, method)
    groups = frame["label_group"].to_numpy()
    keep = (sims >= threshold) & (rows < cols) & (groups[rows] == groups[cols])
    return rows[keep] * len(frame) + cols[keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="labelled Shopee-format folder")
    parser.add_argument("--out", type=Path, help="markdown file (default bench/results/baselines-<folder>.md)")
    args = parser.parse_args()
    out = args.out or Path("bench/results") / f"baselines-{args.data.resolve().name}.md"
    frame = load(args.data)
    groups = frame["label_group"].to_numpy()
    sizes = pd.Series(groups).value_counts()
    n_true = int((sizes * (sizes - 1) // 2).sum())
    lines = [
        f"`{args.data}`: {len(frame)} rows, {len(sizes)} groups, {n_true} true pairs",
        "",
        "| method | threshold (all rows) | F1 tuned on all | P | R | F1 5-fold group CV | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    self_only = row_scores(np.arange(len(frame)), np.arange(len(frame)), groups)
    lines.append(f"| self only | - | {self_only.f1:.4f} | {self_only.precision:.4f} | {self_only.recall:.4f} | - | - |")
    tuned = {}
    for method in ("tfidf", "tfidf-char", "phash"):
        start = time.time()
        tuned[method] = tune_baseline(frame, method)
        s = tuned[method].scores
        lines.append(f"| {method} | {tuned[method].threshold} | {s.f1:.4f} | {s.precision:.4f} | {s.recall:.4f} "
                     f"| {cv_f1(frame, method):.4f} | {time.time() - start:.1f} |")
    title = true_pair_keys(frame, "tfidf", tuned["tfidf"].threshold)
    image = true_pair_keys(frame, "phash", tuned["phash"].threshold)
    only_title, only_image = np.setdiff1d(title, image).size, np.setdiff1d(image, title).size
    lines += [
        "",
        f"True pairs found by word TF-IDF but not phash (each at its best threshold): {only_title} ({only_title / n_true:.1%}); "
        f"by phash but not TF-IDF: {only_image} ({only_image / n_true:.1%}).",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    write_text(out, table)


if __name__ == "__main__":
    main()
