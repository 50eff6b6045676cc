"""What each modality adds to a finished CCKS run: the stage's selection (every member and ensemble
rule fitted on the held-out scores, the entry with the best cross-validated held-out F1 chosen) redone
on subsets of its members, from the run's scores.parquet — no member is retrained.

    .venv/bin/python bench/ccks_subsets.py --run oof/ccks-cpu [--out bench/results/ccks_subsets.md]

Subsets: all members; text-only (members whose kind reads no image); every member kind left out in
turn. Prints (and writes) one row per subset: the chosen entry, its cv F1, held-out F1 and valid F1.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.ccks.select import choose, entry_rules, fit_entries
from prodmatch.io import write_text
from prodmatch.metrics import pair_scores


def reads_images(kind: str) -> bool:
    """Whether a member kind reads the items' images (a pair model kind that does)."""
    from prodmatch.errors import DataError
    from prodmatch.pairs.base import pair_model_class

    try:
        return bool(pair_model_class(kind).reads_images)
    except DataError:  # an unsupervised member kind: no pair model of that name
        return False


def chosen_for(scores: pd.DataFrame, members: list[str], seed_folds: np.ndarray) -> dict:
    """The stage's choice among `members` (held-out rows fit, cv on the run's folds), scored on valid."""
    hold, valid = scores[scores["split"] == "holdout"], scores[scores["split"] == "valid"]
    y = hold["item_label"].to_numpy(np.int64)
    unseen_hold, unseen_valid = hold["unseen"].to_numpy(bool), valid["unseen"].to_numpy(bool)
    rules = entry_rules(members, unseen=bool(unseen_hold.any()))
    entries = fit_entries(rules, y, hold[members].reset_index(drop=True), unseen_hold,
                          valid[members].reset_index(drop=True), unseen_valid, seed_folds)
    best = choose(entries)
    valid_f1 = pair_scores(valid["item_label"].to_numpy(np.int64), best.valid_pred).f1
    return {"chosen": best.name, "cv F1": round(best.cv_f1, 4), "held-out F1": round(best.held_out_f1, 4),
            "valid F1": round(float(valid_f1), 4)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished `prodmatch ccks` run folder (with truth)")
    parser.add_argument("--out", type=Path, default=None, help="markdown table (default: <run>/subsets.md)")
    args = parser.parse_args(argv)
    record = json.loads((args.run / "run.json").read_text(encoding="utf-8"))
    kinds = {name: facts["kind"] for name, facts in record["members"].items()}
    scores = pd.read_parquet(args.run / "scores.parquet")
    if scores.loc[scores["split"] == "valid", "item_label"].isna().any():
        sys.exit("the run has no valid truth: nothing to score")
    folds = scores.loc[scores["split"] == "holdout", "cv_fold"].to_numpy(np.int64)
    names = list(kinds)
    image = {name for name, kind in kinds.items() if reads_images(kind)}
    subsets = {"all members": names, "text-only members (no image reader)": [n for n in names if n not in image]}
    for kind in dict.fromkeys(kinds.values()):
        subsets[f"without {kind}"] = [n for n in names if kinds[n] != kind]
    rows = [{"members": label, **chosen_for(scores, subset, folds)} for label, subset in subsets.items() if subset]
    table = pd.DataFrame(rows)
    text = table.to_markdown(index=False)
    print(text)
    write_text(args.out or args.run / "subsets.md", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
