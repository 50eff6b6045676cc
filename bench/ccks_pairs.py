"""CCKS pair models on a CCKS-format folder: cross-encoder vs two-tower (cosine, matrix projection).

    .venv/bin/python bench/ccks_pairs.py --data input/synthetic/ccks-demo-seed0

Honest protocol: item_train_pair.jsonl is split item-disjointly (a random 30% of its items are
held out; held-out pairs join two held-out items, training pairs none; the pair graph is one or
a few connected components, so component folds are impossible). Models train on (a subsample
of) the training pairs; the held-out part picks the checkpoint and the decision threshold; the valid pairs
(labels from item_valid_pair_truth.jsonl) are scored once at that threshold, overall and split
into pairs whose categories occur / do not occur in train. The char TF-IDF title cosine with its
threshold tuned on the same held-out part is the reference row. The last column ("oracle") is the
valid F1 at the best threshold on valid itself: an upper bound, not a result.

Backbone: the shipped all-MiniLM-L6-v2 (``--model`` for another local folder); English
WordPiece vocabulary, so many Chinese characters are [UNK] (the share is reported). CPU only:
subsample / max_length / epochs are flags and are written into the result table.
Writes bench/results/ccks_pairs.md (``--out``).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prodmatch.ccks.data import read_ccks_items, read_ccks_pairs
from prodmatch.backbones import resolve_model_folder
from prodmatch.encoders.tfidf import TfidfConfig, tfidf_embed
from prodmatch.io import write_text
from prodmatch.metrics import best_pair_threshold, pair_scores
from prodmatch.pairs.base import PairModelConfig, build_pair_model
from prodmatch.pairs.pair_train import PairTrainConfig, fit_pair_model, predict_pairs
from prodmatch.pairs.pvs import pair_frame
from prodmatch.ccks.data import item_disjoint_split

MODELS = {  # name -> (PairModelConfig options (max_length filled from the flags), training loss)
    "cross": (dict(kind="cross"), "ce"),
    "two-tower cosine": (dict(kind="two_tower", head="similarity", similarity="cosine"), "bce"),
    "two-tower projection": (dict(kind="two_tower", head="projection"), "ce"),
    "two-tower adaptive": (dict(kind="two_tower", head="adaptive", similarity="cosine"), "bce"),
}


def tfidf_cosine(items: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    x = tfidf_embed(items["title"], TfidfConfig.char())
    index = pd.Index(items["item_id"])
    a, b = x[index.get_indexer(pairs["src_item_id"])], x[index.get_indexer(pairs["tgt_item_id"])]
    return np.asarray(a.multiply(b).sum(axis=1)).ravel()


def unk_share(tokenizer, texts) -> float:
    ids = [i for t in texts for i in tokenizer(t, add_special_tokens=False)["input_ids"]]
    return float(np.mean([i == tokenizer.unk_token_id for i in ids])) if ids else 0.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("input/synthetic/ccks-demo-seed0"))
    parser.add_argument("--model", default=None, help="local model folder (default: shipped all-MiniLM-L6-v2)")
    parser.add_argument("--models", default="cross,two-tower cosine,two-tower projection",
                        help=f"comma-separated, from: {', '.join(MODELS)}")
    parser.add_argument("--train-pairs", type=int, default=1200, help="subsample of the training part (0: all)")
    parser.add_argument("--holdout-items", type=float, default=0.3, help="share of train items held out")
    parser.add_argument("--holdout-pairs", type=int, default=400, help="subsample of the held-out part (0: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cross-max-length", type=int, default=128)
    parser.add_argument("--item-max-length", type=int, default=64)
    parser.add_argument("--cross-pooling", choices=("cls", "mean"), default="cls")
    parser.add_argument("--extend-vocab", action="store_true",
                        help="add the characters the tokenizer maps to [UNK] as new tokens before training")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--lr-head", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1, help="1 is ~2x faster than 2 on a shared 2-core machine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=Path("bench/results/runs/ccks_pairs"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/ccks_pairs.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")

    if not (args.data / "item_train_pair.jsonl").is_file():
        from prodmatch.data.synth import generate

        print(f"generating the synthetic CCKS demo preset into {args.data}", file=sys.stderr)
        generate("ccks", args.data, seed=0, preset="demo")
    items = pd.concat([read_ccks_items(args.data / f"item_{s}_info.jsonl") for s in ("train", "valid")],
                      ignore_index=True)
    train_all = read_ccks_pairs(args.data / "item_train_pair.jsonl", items)
    valid = read_ccks_pairs(args.data / "item_valid_pair_truth.jsonl", items)

    # item-disjoint held-out part (the pair graph is too connected for component folds), the same
    # split as `prodmatch ccks`: held-out pairs join two held-out items, like valid, whose items never
    # occur in train
    train, holdout = item_disjoint_split(train_all, args.holdout_items, args.seed, args.train_pairs,
                                         args.holdout_pairs)
    train_f, holdout_f, valid_f = (pair_frame(p, items) for p in (train, holdout, valid))

    cate = items.set_index("item_id")["cate_id"]
    seen_cates = set(cate[pd.concat([train_all["src_item_id"], train_all["tgt_item_id"]])])
    unseen = ~(valid["src_item_id"].map(cate).isin(seen_cates) & valid["tgt_item_id"].map(cate).isin(seen_cates))
    unseen = unseen.to_numpy()
    y_valid, y_hold = valid["item_label"].to_numpy(), holdout["item_label"].to_numpy()

    rows = []

    def add_row(name: str, hold_scores, valid_scores, seconds: str, threshold=None, hold_f1=None):
        if threshold is None:
            threshold, hs = best_pair_threshold(y_hold, hold_scores)
            hold_f1 = hs.f1
        pred = valid_scores >= threshold
        overall = pair_scores(y_valid, pred)
        seen = pair_scores(y_valid[~unseen], pred[~unseen])
        new = pair_scores(y_valid[unseen], pred[unseen])
        oracle = best_pair_threshold(y_valid, valid_scores)[1].f1
        rows.append((name, threshold, hold_f1, overall, seen, new, oracle, seconds))
        print(f"{name}: valid {overall} (seen f1={seen.f1:.4f}, unseen f1={new.f1:.4f}) t={threshold:.4f}", flush=True)

    all_pairs = pd.concat([holdout, valid], ignore_index=True)
    cos = tfidf_cosine(items, all_pairs)
    add_row("char TF-IDF title cosine", cos[:len(holdout)], cos[len(holdout):], "-")

    model_folder = resolve_model_folder(args.model)
    unk = None
    for name in names:
        options, loss = MODELS[name]
        max_length = args.cross_max_length if options["kind"] == "cross" else args.item_max_length
        options = dict(options, pooling=args.cross_pooling) if options["kind"] == "cross" else options
        config = PairModelConfig(model=args.model, max_length=max_length, seed=args.seed,
                                 extend_vocab=args.extend_vocab, **options)
        model = build_pair_model(config)
        if unk is None:
            unk = unk_share(model.tokenizer, train_f["title_a"].tolist()[:300] + train_f["pvs_a"].tolist()[:300])
        train_config = PairTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr_backbone=args.lr,
                                       lr_head=args.lr_head, seed=args.seed, eval_batch_size=64, loss=loss)
        started = time.time()
        result = fit_pair_model(model, train_f, holdout_f, train_config, args.runs / name.replace(" ", "-"))
        fit_s = time.time() - started
        started = time.time()
        scores = predict_pairs(model, valid_f, 64)
        predict_s = time.time() - started
        add_row(name, None, scores, f"{fit_s:.0f} / {predict_s:.0f}", result.best_threshold, result.best_f1)
        del model

    lines = [
        f"`{args.data}`, backbone `{model_folder}` ({unk if unk is not None else float('nan'):.0%} of title/pvs "
        f"tokens are [UNK]), CPU {args.threads} threads.",
        "",
        f"Command: `.venv/bin/python bench/ccks_pairs.py {shlex.join(sys.argv[1:] if argv is None else argv)}`",
        "",
        f"Train: {len(train)} pairs of item_train_pair without held-out items (subsampled), {args.epochs} epoch(s), "
        f"batch {args.batch_size}, AdamW lr {args.lr:g} backbone / {args.lr_head:g} head, 10% warm-up + linear decay, "
        f"max_length {args.cross_max_length} (cross pair, {args.cross_pooling} pooling) / {args.item_max_length} "
        f"(two-tower item, mean pooling)"
        f"{'; [UNK] characters added as tokens (--extend-vocab)' if args.extend_vocab else ''}. "
        f"Held-out: {len(holdout)} pairs between the {args.holdout_items:.0%} held-out train items "
        f"(checkpoint + threshold). Valid: {len(valid)} pairs "
        f"({int((~unseen).sum())} seen / {int(unseen.sum())} unseen categories).",
        "",
        "| model | threshold (held-out) | held-out F1 | valid F1 | valid P | valid R | seen F1 | unseen F1 "
        "| valid F1, oracle t | fit / predict s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, t, hold_f1, overall, seen, new, oracle, seconds in rows:
        lines.append(f"| {name} | {t:.4f} | {hold_f1:.4f} | {overall.f1:.4f} | {overall.precision:.4f} | "
                     f"{overall.recall:.4f} | {seen.f1:.4f} | {new.f1:.4f} | {oracle:.4f} | {seconds} |")
    table = "\n".join(lines) + "\n"
    print(table)
    write_text(args.out, table)


if __name__ == "__main__":
    main()
