"""The documented Shopee path at Kaggle's size: seconds and peak RSS per stage, growth with test rows.

Train side once on the folder's train.csv (the `kaggle` synthetic preset: 34,250 rows):
``embed tfidf|tfidf-char|phash`` -> ``match`` -> ``stack`` -> ``bundle --use stacker`` and
``--use matcher``; then ``predict`` + ``score`` of test subsets of whole groups (default 10k /
35k / 70k rows) with both bundles. Every stage is the CLI in its own process under
``/usr/bin/time`` (wall seconds, peak RSS); the growth column divides a stage's seconds by the
previous size's (linear growth: the ratio of the row counts).

    .venv/bin/python bench/scale.py --data input/synthetic/shopee-kaggle-seed0 --work /tmp/scale
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

METHODS = ("tfidf", "tfidf-char", "phash")
CLI = [sys.executable, "-m", "prodmatch.cli"]


def timed(cmd: list[str], log: Path) -> tuple[float, float, str]:
    """Run `cmd` under /usr/bin/time: (wall seconds, peak RSS GB, last stdout line); raise on failure."""
    stats = log.with_suffix(".time")
    with open(log, "w") as out:
        done = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(stats), *cmd], stdout=out,
                              stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    text = log.read_text(errors="replace").strip().splitlines()
    if done.returncode:
        raise RuntimeError(f"{shlex.join(cmd)} failed ({done.returncode}): {text[-1] if text else ''}")
    wall, kb = stats.read_text().split()[-2:]
    return float(wall), int(kb) / 2**20, text[-1] if text else ""


def timing_summary(log: Path) -> dict[str, float]:
    """The ``timing:`` block a command printed (stage -> seconds), or {}."""
    lines = log.read_text(errors="replace").splitlines()
    if "timing:" not in lines:
        return {}
    out = {}
    for line in lines[lines.index("timing:") + 1 :]:
        name, _, value = line.strip().rpartition(" ")
        if value != "s":
            break
        label, number = name.strip().rsplit(" ", 1)
        out[label.strip()] = float(number)
    return out


def test_subset(data: Path, rows: int, work: Path) -> Path:
    """A folder with the first whole test groups covering >= `rows` postings (test.csv, truth, images)."""
    truth = pd.read_csv(data / "test_truth.csv", dtype={"posting_id": str})
    test = pd.read_csv(data / "test.csv", dtype=str, keep_default_na=False)
    groups = truth["label_group"].drop_duplicates()
    sizes = truth["label_group"].value_counts().reindex(groups).to_numpy()
    chosen = set(groups[: int(np.searchsorted(np.cumsum(sizes), rows) + 1)])
    keep = truth["label_group"].isin(chosen).to_numpy()
    folder = work / f"test-{keep.sum()}"
    folder.mkdir(parents=True, exist_ok=True)
    test[keep].to_csv(folder / "test.csv", index=False)
    truth[keep].to_csv(folder / "test_truth.csv", index=False)
    link = folder / "test_images"
    if not link.exists():
        link.symlink_to((data / "test_images").resolve())
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="Shopee-format folder (train.csv, test.csv, test_truth.csv)")
    p.add_argument("--work", type=Path, required=True, help="scratch folder for runs, bundles, submissions")
    p.add_argument("--test-rows", type=int, nargs="+", default=[10_000, 35_000, 70_000])
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--bundles", nargs="+", default=["stacker", "matcher"], choices=["stacker", "matcher"])
    p.add_argument("--out", type=Path, default=Path("bench/results/scale.md"))
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    run = args.work / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    logs = args.work / "logs"
    logs.mkdir(exist_ok=True)
    n_train = len(pd.read_csv(args.data / "train.csv", usecols=["posting_id"]))
    rows: list[dict] = []

    def stage(name: str, cmd: list[str], n: int) -> str:
        log = logs / f"{name.replace(' ', '_')}-{n}.log"
        wall, gb, last = timed(cmd, log)
        rows.append({"stage": name, "rows": n, "seconds": wall, "peak_gb": gb, "note": ""})
        for part, seconds in timing_summary(log).items():  # predict's own per-stage timing
            if part != "total":
                rows.append({"stage": f"  {name}: {part}", "rows": n, "seconds": seconds, "peak_gb": float("nan"), "note": ""})
        print(f"{name:<28} {n:>7,} rows {wall:8.1f} s {gb:6.2f} GB  {last[:90]}", flush=True)
        return last

    data = str(args.data)
    for method in args.methods:
        stage(f"embed {method}", [*CLI, "embed", method, "--data", data, "--out", str(run)], n_train)
    stage("match", [*CLI, "match", "--run", str(run), "--data", data], n_train)
    stage("stack", [*CLI, "stack", "--run", str(run), "--data", data], n_train)
    bundles = {}
    for use in args.bundles:
        bundles[use] = run / f"bundle-{use}"
        stage(f"bundle {use}", [*CLI, "bundle", "--run", str(run), "--out", str(bundles[use]), "--use", use], n_train)
    train_side = sum(r["seconds"] for r in rows)
    train_peak = max(r["peak_gb"] for r in rows)
    for n in args.test_rows:
        folder = test_subset(args.data, n, args.work)
        n_rows = len(pd.read_csv(folder / "test.csv", usecols=["posting_id"]))
        for use, models in bundles.items():
            sub = folder / f"submission-{use}.csv"
            if sub.exists():
                sub.unlink()
            stage(f"predict ({use})", [*CLI, "predict", "--data", str(folder), "--models", str(models), "--out", str(sub),
                                       "--quiet"], n_rows)
            score = subprocess.run([*CLI, "score", "--truth", str(folder / "test_truth.csv"), "--pred", str(sub)],
                                   capture_output=True, text=True).stdout.strip()
            next(r for r in reversed(rows) if r["stage"] == f"predict ({use})")["note"] = score
    table = pd.DataFrame(rows)
    growth = []
    for _, r in table.iterrows():
        same = table[(table["stage"] == r["stage"]) & (table["rows"] < r["rows"])]
        growth.append("" if same.empty else f"x{r['seconds'] / same.iloc[-1]['seconds']:.2f} for x{r['rows'] / same.iloc[-1]['rows']:.2f} rows")
    table["growth"] = growth
    lines = [f"`{shlex.join(sys.argv)}`", "", f"train side (embed + match + stack + bundle) on {n_train:,} rows: "
             f"{train_side:.0f} s, peak RSS {train_peak:.2f} GB", "",
             "| stage | rows | seconds | peak RSS GB | growth | test score |", "|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        peak = "" if np.isnan(r["peak_gb"]) else f"{r['peak_gb']:.2f}"
        lines.append(f"| {r['stage']} | {r['rows']:,} | {r['seconds']:.1f} | {peak} | {r['growth']} | {r['note']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
