"""Behaviour fingerprint: every F1 the small runs produce, in one JSON, to diff across a refactor.

    .venv/bin/python bench/fingerprint.py --out /tmp/before.json
    ... refactor ...
    .venv/bin/python bench/fingerprint.py --out /tmp/after.json --compare /tmp/before.json

Runs `prodmatch demo --preset test` (Shopee: ablation.csv, stack.json, stack/compare.csv, the
predicted test's score) and `prodmatch ccks --config ccks-test` on `synth ccks --preset test`
(its compare.csv and chosen F1s) and `prodmatch kdd --config kdd-test` on `synth kdd --preset test`
(its compare.csv NDCG@5 figures and run.json), each in a fresh temporary folder; `--titles DIR` adds the
matcher ablation on real rows (the shared Shopee titles: TF-IDF word/char + phash, all-rows pool).
Prints the differing entries with --compare and exits 1 when any differs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

PRODMATCH = [sys.executable, "-m", "prodmatch"]


def _f1_columns(frame: pd.DataFrame, key: list[str], prefix: str) -> dict[str, float]:
    """{prefix/key/column: value} for every numeric column but timings (F1, P, R, thresholds...)."""
    out = {}
    scores = [c for c in frame.select_dtypes("number").columns if c not in key and "second" not in c]
    for _, row in frame.iterrows():
        name = "/".join(str(row[k]) for k in key if k in frame.columns)
        for c in scores:
            if pd.notna(row[c]):
                out[f"{prefix}/{name}/{c}"] = round(float(row[c]), 6)
    return out


def _numbers(data, prefix: str, skip=("timing", "seconds", "version")) -> dict[str, float]:
    """Every number in a JSON report, flattened to {prefix/path: value} (timings left out)."""
    out = {}
    if isinstance(data, dict):
        for k, v in data.items():
            if k not in skip and "seconds" not in k:
                out.update(_numbers(v, f"{prefix}/{k}", skip))
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        out[prefix] = round(float(data), 6)
    return out


def shopee(tmp: Path) -> dict[str, float]:
    subprocess.run([*PRODMATCH, "demo", "--preset", "test", "--data-root", str(tmp / "in"),
                    "--out-root", str(tmp / "oof"), "--quiet", "--jobs", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    (run,) = sorted((tmp / "oof").glob("demo-*"))
    out = _numbers(json.loads((run / "demo.json").read_text()), "shopee/demo")
    out.update(_f1_columns(pd.read_csv(run / "ablation.csv"), ["stage", "models"], "shopee/ablation"))
    stack = json.loads((run / "stack" / "stack.json").read_text())
    out.update(_numbers({k: stack[k] for k in ("oof", "predicted", "threshold", "t_min2") if k in stack},
                        "shopee/stack"))
    out.update(_f1_columns(pd.read_csv(run / "stack" / "compare.csv"), ["entry"], "shopee/compare"))
    return out


def ccks(tmp: Path) -> dict[str, float]:
    data, run = tmp / "ccks-in", tmp / "ccks-run"
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([*PRODMATCH, "synth", "ccks", "--out", str(data), "--preset", "test"], **quiet)
    subprocess.run([*PRODMATCH, "ccks", "--data", str(data), "--config", "ccks-test", "--out", str(run), "--quiet"],
                   **quiet)
    out = _f1_columns(pd.read_csv(run / "compare.csv"), ["entry"], "ccks/compare")
    out.update(_numbers(json.loads((run / "run.json").read_text()), "ccks/run"))
    return out


def kdd(tmp: Path) -> dict[str, float]:
    data, run = tmp / "kdd-in", tmp / "kdd-run"
    quiet = {"check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([*PRODMATCH, "synth", "kdd", "--out", str(data), "--preset", "test"], **quiet)
    subprocess.run([*PRODMATCH, "kdd", "--data", str(data), "--config", "kdd-test", "--out", str(run)],
                   **quiet)
    out = _f1_columns(pd.read_csv(run / "compare.csv"), ["split", "method"], "kdd/compare")
    out.update(_numbers(json.loads((run / "run.json").read_text()), "kdd/run"))
    return out


def titles(tmp: Path, folder: Path) -> dict[str, float]:
    bench = Path(__file__).resolve().parent / "ablation.py"
    subprocess.run([sys.executable, str(bench), "--data", str(folder), "--models", "tfidf,tfidf-char,phash",
                    "--cv-pool", "all"], check=True, stdout=subprocess.DEVNULL)
    newest = max((Path(__file__).resolve().parent / "results" / "runs").glob(f"ablation-{folder.name}-*"),
                 key=lambda p: p.stat().st_mtime)
    return _f1_columns(pd.read_csv(newest / "ablation.csv"), ["stage", "models"], "titles/ablation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--compare", type=Path, help="an earlier fingerprint to diff against")
    parser.add_argument("--titles", type=Path, help="a folder of real Shopee rows (adds their matcher ablation)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        found = {**shopee(tmp), **ccks(tmp), **kdd(tmp)}
        if args.titles:
            found.update(titles(tmp, args.titles))
    args.out.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    print(f"{len(found)} figures -> {args.out}")
    if args.compare:
        old = json.loads(args.compare.read_text())
        keys = sorted(set(old) | set(found))
        diff = [(k, old.get(k), found.get(k)) for k in keys if old.get(k) != found.get(k)]
        for k, a, b in diff:
            print(f"  {k}: {a} -> {b}")
        print(f"{len(keys) - len(diff)} of {len(keys)} identical")
        sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
