"""KDD Cup 2020 recall's command: `kdd` (a run, or a re-score of a run's saved models)."""
from __future__ import annotations

from ..config import override_argument, with_overrides
from ..errors import DataError
from ._base import command, data_folder, in_run_folder, out_folder


@command("kdd", "KDD Cup 2020 recall: score ranking methods on valid (NDCG@5), write compare.csv + submission.csv")
def kdd(args):
    from ..kdd import kdd_rescore, kdd_run

    if args.rescore:
        if args.overwrite:
            raise DataError("--rescore writes a new folder; it never replaces one (no --overwrite)")
        r = in_run_folder(args, "kdd-rescore", lambda out: kdd_rescore(args.rescore, args.data, out))
        print(r["table"].to_string(index=False) if len(r["table"]) else "no test split with answers")
        print(f"wrote {r['out']}/: scores.parquet, compare.csv, run.json, "
              f"{', '.join(f'{s}/submission.csv' for s in r['submissions'])} (method {r['chosen']}, saved in {args.rescore})")
        return
    r = in_run_folder(args, "kdd", lambda out: kdd_run(args.data, with_overrides(args.config, args.set), out,
                                                       overwrite=args.overwrite))
    print(r["table"].to_string(index=False))
    subs = ", ".join(f"{split}/submission.csv" for split in r["submissions"]) or "no test split"
    print(f"wrote {r['out']}/: compare.csv, scores.parquet, run.json, {subs} (method {r['chosen']}, "
          f"valid NDCG@5 {r['valid'][r['chosen']]:.4f})")


@kdd.arguments
def _(p):
    p.add_argument("--data", type=data_folder, required=True, help="KDD folder: multimodal_labels.txt, valid.tsv, valid_answer.json "
                                                 "(+ testA.tsv / testB.tsv; files may sit in valid/, testA/, ...)")
    p.add_argument("--config", default="kdd", help="stage YAML (path or shipped name: kdd, kdd-demo, kdd-test)")
    override_argument(p)
    p.add_argument("--out", type=out_folder, help="run folder (default: a fresh oof/kdd-<config>-<time>/)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--rescore", metavar="RUN", help="score --data's test splits with the models saved in the KDD run "
                                                    "folder RUN, without training, into a new --out")

