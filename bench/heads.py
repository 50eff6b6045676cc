"""Training heads and gradient clipping against ArcFace + global-norm clipping (issue 14).

    .venv/bin/python bench/heads.py --data input/synthetic/shopee-demo-seed0

Trains each shipped tiny config (5 folds, the demo's settings) once per variant into a fresh run
under bench/results/runs/ and prints the OOF F1 (every row embedded by the fold model that did
not see it, thresholds tuned on all rows: `train_oof`'s figure). Variants: the config as shipped
(ArcFace, global-norm clipping), ``head: softmax``, ``head: triplet`` (batch-hard, class-chunk
batches), ``clip_mode: agc`` at clip factors 0.01 (the NFNet paper's) and 0.1, the ArcFace head unclipped. Writes the table to
bench/results/heads-<folder>.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from prodmatch.encoders.run import load_experiment, train_oof
from prodmatch.io import new_run_dir, write_text
from prodmatch.report import markdown_table
from prodmatch.resources import available_cores

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {
    "arcface + norm clip (shipped)": {},
    "softmax head": {"head": "softmax"},
    "triplet head (batch-hard)": {"head": "triplet"},
    "arcface + AGC 0.01": {"clip_mode": "agc", "grad_clip": 0.01},
    "arcface + AGC 0.1": {"clip_mode": "agc", "grad_clip": 0.1},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--configs", nargs="+", default=["tiny-text", "tiny-image"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=available_cores())
    args = parser.parse_args()
    rows = []
    for name in args.configs:
        for variant in args.variants:
            run = new_run_dir(RESULTS / "runs", f"heads-{name}")
            started = time.perf_counter()
            result = train_oof(args.data, load_experiment(name, train=VARIANTS[variant]), out=run, progress=False,
                               jobs=args.jobs)
            rows.append({"config": name, "variant": variant, "oof_f1": round(result["oof_f1"], 4),
                         "seconds": round(time.perf_counter() - started, 1)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    text = "\n".join([f"# Training heads and clipping: {args.data}", "",
                      f"`.venv/bin/python bench/heads.py --data {args.data}` (5 folds, --jobs {args.jobs})", "",
                      markdown_table(table), ""])
    print(text)
    write_text(RESULTS / f"heads-{args.data.name}.md", text)


if __name__ == "__main__":
    main()
