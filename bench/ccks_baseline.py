"""Char TF-IDF title-cosine baseline on a CCKS-format folder (train pairs -> valid pairs).

    .venv/bin/python bench/ccks_baseline.py --data input/synthetic/ccks-demo-seed0

The threshold is chosen on item_train_pair.jsonl and applied to the valid pairs (labels from
item_valid_pair_truth.jsonl, the synthetic answer file); valid pairs whose categories never occur
in train are reported separately. Writes bench/results/ccks_baseline-<folder>.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.ccks.data import read_ccks_items, read_ccks_pairs
from prodmatch.encoders.tfidf import TfidfConfig, tfidf_embed
from prodmatch.io import write_text
from prodmatch.metrics import best_pair_threshold, pair_scores


def pair_cosine(items: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """Cosine of the two titles' char TF-IDF vectors (fitted on the given items)."""
    x = tfidf_embed(items["title"], TfidfConfig.char())
    index = pd.Index(items["item_id"])
    a, b = x[index.get_indexer(pairs["src_item_id"])], x[index.get_indexer(pairs["tgt_item_id"])]
    return np.asarray(a.multiply(b).sum(axis=1)).ravel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    items = pd.concat([read_ccks_items(args.data / f"item_{s}_info.jsonl") for s in ("train", "valid")], ignore_index=True)
    train = read_ccks_pairs(args.data / "item_train_pair.jsonl", items)
    valid = read_ccks_pairs(args.data / "item_valid_pair_truth.jsonl", items)
    t, train_scores = best_pair_threshold(train["item_label"], pair_cosine(items, train))
    valid_pred = pair_cosine(items, valid) >= t
    cate = items.set_index("item_id")["cate_id"]
    seen_cates = set(cate[pd.concat([train["src_item_id"], train["tgt_item_id"]])])
    unseen = ~(valid["src_item_id"].map(cate).isin(seen_cates) & valid["tgt_item_id"].map(cate).isin(seen_cates))
    rows = [
        ("train (threshold tuned here)", len(train), train_scores),
        ("valid", len(valid), pair_scores(valid["item_label"], valid_pred)),
        ("valid, categories seen in train", int((~unseen).sum()), pair_scores(valid["item_label"][~unseen], valid_pred[~unseen])),
        ("valid, categories unseen in train", int(unseen.sum()), pair_scores(valid["item_label"][unseen], valid_pred[unseen])),
    ]
    lines = [f"`{args.data}`: char TF-IDF title cosine >= {t:.4f}", "", "| pairs | n | F1 | P | R |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {n} | {s.f1:.4f} | {s.precision:.4f} | {s.recall:.4f} |" for name, n, s in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    write_text(Path("bench/results") / f"ccks_baseline-{args.data.resolve().name}.md", table)


if __name__ == "__main__":
    main()
