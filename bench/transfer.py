"""Does the local CV predict the test score? The documented path trained on one folder and scored on another.

``embed`` (each method) -> ``match`` -> ``stack`` -> ``bundle`` (default choice) -> ``predict``
-> ``score``, every stage the CLI in its own process. Prints, per bundle choice: the OOF F1 the
leaderboard shows, the F1 it predicts at the test's size, the actual test F1 with P / R, and
seconds per stage. The test folder's labels are read only by ``score``.

`--train` / `--test`: a labelled CSV (e.g. the real ``sample_a.csv``) or a Shopee folder (train:
its train.csv; test: its test.csv + test_truth.csv, as the synthetic presets write them).

    .venv/bin/python bench/transfer.py --train ../shared/data/shopee_titles/sample_a.csv \\
        --test ../shared/data/shopee_titles/sample_b.csv --work /tmp/transfer-ab
    .venv/bin/python bench/transfer.py --train input/synthetic/shopee-kaggle-seed0 \\
        --test input/synthetic/shopee-kaggle-seed0 --work /tmp/transfer-kaggle
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import CLI, timed  # noqa: E402  (bench/ is not a package)

METHODS = ("tfidf", "tfidf-char", "phash")


def prepare(train: Path, test: Path, folder: Path) -> Path:
    """A Shopee folder: train.csv (labelled), test.csv (no labels) and test_truth.csv (for `score` only)."""
    folder.mkdir(parents=True, exist_ok=True)
    train_csv = train if train.suffix == ".csv" else train / "train.csv"
    shutil.copyfile(train_csv, folder / "train.csv")
    if test.suffix == ".csv":
        frame = pd.read_csv(test, dtype=str, keep_default_na=False)
        frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed")])
        frame[["posting_id", "label_group"]].to_csv(folder / "test_truth.csv", index=False)
        frame.drop(columns=["label_group"]).to_csv(folder / "test.csv", index=False)
    else:
        shutil.copyfile(test / "test.csv", folder / "test.csv")
        shutil.copyfile(test / "test_truth.csv", folder / "test_truth.csv")
    return folder


def scores_of(line: str) -> dict:
    """f1 / precision / recall from a `score` line ('f1=0.8340 precision=0.8120 recall=0.9310')."""
    return {k: float(v) for k, v in re.findall(r"\b(f1|precision|recall)=([0-9.]+)", line)}


def pair_member_lines(stack: dict, logs: Path) -> list[str]:
    """The stacker's pair members: pairs scored and throughput in training (stack.json) and in predict (its log)."""
    facts = stack.get("pair_members") or {}
    if not facts:
        return []
    lines = ["", "| pair member | train pairs scored (OOF) | of candidates | training pairs/s | OOF s |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {f['pairs_scored']:,} | {f['pairs']:,} | {f['trained_pairs_per_s']} | {f['oof_seconds']} |"
              for name, f in facts.items()]
    for log_file in sorted(logs.glob("predict_*.log")):
        lines += [f"- {log_file.stem}: {m}" for m in re.findall(r"pair member \S+: \d+ of \d+ candidate pairs scored "
                                                                 r"in [0-9.]+ s \([0-9.]+ pairs/s\)",
                                                                 log_file.read_text(errors="replace"))]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--work", type=Path, required=True, help="scratch folder (data copy, run, bundles, submissions)")
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--uses", nargs="+", default=["auto"], choices=["auto", "stacker", "matcher"],
                   help="bundle choices to score (auto: the default `bundle`)")
    p.add_argument("--out", type=Path, default=None, help="table file (default: bench/results/transfer-<work name>.md)")
    p.add_argument("--stack-config", default=None, help="`prodmatch stack --config` (e.g. stack-pairs-cpu)")
    args = p.parse_args()
    data = prepare(args.train, args.test, args.work / "data")
    run = args.work / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    logs = args.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    n_train = len(pd.read_csv(data / "train.csv", usecols=["posting_id"]))
    n_test = len(pd.read_csv(data / "test.csv", usecols=["posting_id"]))
    seconds: dict[str, float] = {}

    def stage(name: str, cmd: list[str]) -> str:
        wall, gb, last = timed(cmd, logs / f"{name.replace(' ', '_')}.log")
        seconds[name] = wall
        print(f"{name:<20} {wall:8.1f} s {gb:6.2f} GB  {last[:100]}", flush=True)
        return last

    for method in args.methods:
        stage(f"embed {method}", [*CLI, "embed", method, "--data", str(data), "--out", str(run)])
    stage("match", [*CLI, "match", "--run", str(run), "--data", str(data)])
    stage("stack", [*CLI, "stack", "--run", str(run), "--data", str(data),
                    *(["--config", args.stack_config] if args.stack_config else [])])
    match = json.loads((run / "matcher.json").read_text())
    stack = json.loads((run / "stack" / "stack.json").read_text())
    rows = []
    for use in args.uses:
        models = run / f"bundle-{use}"
        stage(f"bundle {use}", [*CLI, "bundle", "--run", str(run), "--out", str(models), "--use", use])
        bundle = json.loads((models / "bundle.json").read_text())
        sub = args.work / f"submission-{use}.csv"
        sub.unlink(missing_ok=True)
        stage(f"predict {use}", [*CLI, "predict", "--data", str(data), "--models", str(models), "--out", str(sub),
                                 "--quiet"])
        line = stage(f"score {use}", [*CLI, "score", "--truth", str(data / "test_truth.csv"), "--pred", str(sub)])
        chosen = "stacker" if bundle.get("stacker") else "matcher"
        oof = stack["oof"]["f1"] if chosen == "stacker" else match["oof_f1"]
        predicted = (stack if chosen == "stacker" else match).get("predicted", {}).get("f1")
        actual = scores_of(line)
        rows.append({"bundle": f"{use} -> {chosen}", "oof_f1": oof, "predicted": predicted,
                     "test_f1": actual.get("f1"), "P": actual.get("precision"), "R": actual.get("recall")})
    fmt = lambda v: "-" if v is None else f"{v:.4f}"
    lines = [f"`{shlex.join(sys.argv)}`", "", f"train {n_train:,} rows -> test {n_test:,} rows", "",
             "| bundle | OOF F1 | predicted test F1 | test F1 | P | R | predicted - actual |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = None if r["predicted"] is None or r["test_f1"] is None else r["predicted"] - r["test_f1"]
        lines.append(f"| {r['bundle']} | {fmt(r['oof_f1'])} | {fmt(r['predicted'])} | {fmt(r['test_f1'])} | "
                     f"{fmt(r['P'])} | {fmt(r['R'])} | {fmt(gap)} |")
    lines += ["", "| stage | seconds |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in seconds.items()]
    lines += pair_member_lines(stack, logs)
    out = args.out or Path("bench/results") / f"transfer-{args.work.name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
