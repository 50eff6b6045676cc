"""The pair stage on the entity-matching field's product benchmarks: one `prodmatch pairs` run per
benchmark (and WDC training size), each under /usr/bin/time (wall seconds, peak RSS), then one table
of every member and ensemble entry (valid cv F1, test F1 / P / R) beside the published figures.

    .venv/bin/python bench/pair_benchmarks.py --data ../shared/data/em_products --config em-cpu \
        --work /tmp/pairs [--sets abt_buy walmart_amazon wdc_computers:small ...]

A run folder that already holds run.json is read, not rerun (delete it to rerun). Writes
bench/results/pair_benchmarks-<config>.md and prints it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

SETS = ("abt_buy", "walmart_amazon", "wdc_computers:small", "wdc_computers:medium", "wdc_cameras:small",
        "wdc_cameras:medium")
# test F1 (%) of the data README (Ditto, PVLDB 2021; HierGAT, SIGMOD 2022; R-SupCon, WWW 2022), and its
# LightGBM over a dozen generic comparisons (no neural model)
PUBLISHED = {"abt_buy": "Ditto 89.33, HierGAT 89.8, R-SupCon 94.29; generic LightGBM 0.797",
             "walmart_amazon": "Ditto 86.76 (unchecked); generic LightGBM 0.788",
             "wdc_computers:small": "Ditto 80.76, HierGAT 88.50; generic LightGBM 0.813",
             "wdc_computers:medium": "generic LightGBM 0.803",
             "wdc_cameras:small": "",
             "wdc_cameras:medium": "generic LightGBM 0.787"}


def run_one(data: Path, spec: str, config: str, work: Path) -> dict:
    """Run (or read) one benchmark; its run.json plus wall seconds and peak RSS."""
    name, _, size = spec.partition(":")
    out = work / f"{name}{'-' + size if size else ''}-{Path(config).stem}"
    timing = out.parent / f"{out.name}.time"
    if not (out / "run.json").is_file():
        work.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "prodmatch", "pairs", "--data", str(data / name), "--config", config,
                   "--out", str(out), "--quiet", *(["--train-size", size] if size else [])]
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", str(timing), *command], check=True)
    seconds, rss_kb = timing.read_text().split()[-2:] if timing.is_file() else ("nan", "nan")
    record = json.loads((out / "run.json").read_text())
    return {"record": record, "seconds": float(seconds), "peak_gb": float(rss_kb) / 1024 ** 2, "out": out,
            "command": " ".join(["prodmatch pairs --data", str(data / name), *(["--train-size", size] if size else []),
                                 "--config", config, "--out", str(out)])}


def rows(spec: str, result: dict) -> list[dict]:
    record = result["record"]
    members = record["members"]
    out = []
    order = pd.read_csv(result["out"] / "compare.csv")["entry"]  # members in config order, then the entries
    for entry in order:
        scores = record["entries"][entry]
        member = entry.removeprefix("member ")
        fit = members.get(member, {}).get("seconds") if entry.startswith("member ") else None
        out.append({"benchmark": spec, "entry": entry + (" **(chosen)**" if entry == record["chosen"] else ""),
                    "valid cv F1": round(scores["valid_cv_f1"], 4), "test F1": round(scores["test"]["f1"], 4),
                    "P": round(scores["test"]["precision"], 4), "R": round(scores["test"]["recall"], 4),
                    "member s": "" if fit is None else round(fit, 1)})
    return out


def main(argv=None) -> int:
    from prodmatch.report import markdown_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding abt_buy/, walmart_amazon/, wdc_*/")
    p.add_argument("--config", default="em-cpu")
    p.add_argument("--work", type=Path, default=Path("/tmp/pairs"))
    p.add_argument("--sets", nargs="+", default=list(SETS), help="benchmark[:train size] ...")
    args = p.parse_args(argv)
    summary, detail = [], []
    for spec in args.sets:
        result = run_one(args.data, spec, args.config, args.work)
        record = result["record"]
        chosen = record["entries"][record["chosen"]]
        best_member = max((e for e in record["entries"] if e.startswith("member ")),
                          key=lambda e: record["entries"][e]["valid_cv_f1"])
        summary.append({"benchmark": spec, "chosen entry": record["chosen"],
                        "valid cv F1": round(chosen["valid_cv_f1"], 4), "test F1": round(chosen["test"]["f1"], 4),
                        "P": round(chosen["test"]["precision"], 4), "R": round(chosen["test"]["recall"], 4),
                        "best member on test": round(max(v["test"]["f1"] for k, v in record["entries"].items()
                                                         if k.startswith("member ")), 4),
                        "best member on valid (its test F1)": f"{best_member.removeprefix('member ')} "
                                                              f"({record['entries'][best_member]['test']['f1']:.4f})",
                        "fit + predict s": round(result["seconds"]), "peak RSS GB": round(result["peak_gb"], 2),
                        "published": PUBLISHED.get(spec, "")})
        detail += rows(spec, result)
        print(f"{spec}: {result['command']}", flush=True)
    text = "\n".join([f"# Pair benchmarks, config {args.config}", "", markdown_table(pd.DataFrame(summary)), "",
                      "## Every entry", "", markdown_table(pd.DataFrame(detail)), ""])
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"pair_benchmarks-{Path(args.config).stem}.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
