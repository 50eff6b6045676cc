"""Which stacker set-up transfers to a bigger test set? Per-fold vs all-rows CV pools, pool-size-
dependent features on or off, thresholds for the CV pool vs for the test size.

Takes a run and data folder written by `bench/transfer.py` (TF-IDF / phash run of train.csv,
test.csv + test_truth.csv). For each variant: the nested F1 predicted at the test size, the test
F1 at the thresholds tuned for it, and the oracle (threshold chosen on the test labels: a
reference only, never a tuning step).

    .venv/bin/python bench/stacker_pools.py --run /tmp/tab/run-* --data /tmp/tab/data
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.data.shopee import read_shopee_csv
from prodmatch.stack.candidates import pair_features
from prodmatch.post.run import match_parts, run_titles
from prodmatch.stack.run import ScoredParts, stack_pairs
from prodmatch.post.matcher import MatcherConfig, Pool, Stage, tune
from prodmatch.post.tune import best_thresholds, curve, nested_sums, threshold_grid
from prodmatch.stack.lgbm import StackerConfig, fit_final, fit_oof, pair_matches
from prodmatch.store import load_runs

VARIANTS = {  # name: (cv_pool, test-size thresholds, dropped feature families)
    "per-fold pools, thresholds for the pool": ("fold", False, ()),
    "per-fold pools, thresholds for the test size": ("fold", True, ()),
    "per-fold pools, no rank features": ("fold", True, ("_rank_",)),
    "per-fold pools, no density features": ("fold", True, ("_dens",)),
    "all-rows pool, thresholds for the test size": ("all", True, ()),
    "all-rows pool, no rank / density features": ("all", True, ("_rank_", "_dens")),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("bench/results/stacker_pools.md"))
    args = p.parse_args()
    rows, models = load_runs([args.run])
    names = [m.name for m in models]
    titles = run_titles(rows, args.data)
    test = read_shopee_csv(args.data / "test.csv", image_policy="text-only")
    m_rows = len(test)
    truth = pd.read_csv(args.data / "test_truth.csv", dtype={"posting_id": str}).set_index("posting_id")
    truth = truth.loc[test["posting_id"].astype(str), "label_group"].to_numpy()
    config, grid = StackerConfig(), threshold_grid()
    test_pool = Pool({m.name: (m.kind, m.test) for m in models}, titles=test["title"].to_numpy(object), k=config.k)
    lines = [f"train {len(rows):,} rows -> test {m_rows:,} rows", "",
             "| variant | predicted | test F1 | oracle test F1 | seconds |", "|---|---|---|---|---|"]
    for name, (cv_pool, sized, dropped) in VARIANTS.items():
        started = time.time()
        parts = match_parts(rows, models, titles=titles, k=config.k, cv_pool=cv_pool)
        pairs = stack_pairs(parts, names, config, MatcherConfig(k=config.k))
        pairs = pairs.drop(columns=[c for c in pairs if any(d in c for d in dropped)])
        oof = fit_oof(pairs, config, progress=False)
        pairs["prob"] = oof.prob
        curves = ScoredParts.build(parts, pairs).curves(grid, m_rows if sized else None)
        sums, _ = nested_sums(curves, min2=config.min2)
        ti, t2i = best_thresholds(curves, min2=config.min2)
        booster = fit_final(pairs.drop(columns=["prob"]), config, int(np.mean(oof.best_iterations)))
        nb = {m: tune(parts, Stage("threshold", (m,)), MatcherConfig(k=config.k)).t for m in names} \
            if cv_pool == "fold" else None
        features = pair_features(test_pool, names, nb)
        prob = booster.predict(features[booster.feature_name()].to_numpy(np.float32))
        test_curve = curve(pair_matches(features["i"], features["j"], prob, m_rows), truth, grid)
        surface = test_curve.surface("f1") / m_rows
        n = sum(c.n_rows for c in curves)
        line = (f"| {name} | {sums['f1'] / n:.4f} | {test_curve.sums(ti, t2i)['f1'] / m_rows:.4f} | "
                f"{surface.max():.4f} | {time.time() - started:.0f} |")
        lines.append(line)
        print(line, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
