"""The pair stage's commands: `ccks` (CCKS 2022 task 9.2 folders) and `pairs` (labelled-pair benchmarks)."""
from __future__ import annotations

from ..config import override_argument, with_overrides
from ..errors import DataError
from ._base import command, data_folder, in_run_folder, out_folder


@command("ccks", "CCKS 2022 task 9.2: train pair models, fit ensembles on held-out train pairs, write result.jsonl")
def ccks(args):
    from ..ccks import ccks_run

    r = in_run_folder(args, "ccks", lambda out: ccks_run(args.data, with_overrides(args.config, args.set), out,
                                                          overwrite=args.overwrite, progress=not args.quiet,
                                                          reuse=args.reuse))
    print(f"wrote {r['out']}/: result.jsonl ({r['valid_pairs']} valid pairs), scores.parquet, ensembles.json, run.json")
    print(f"chosen entry (best cross-validated held-out F1, {r['chosen_cv_f1']:.4f}; in-sample {r['chosen_held_out_f1']:.4f}): {r['chosen']}")
    if r["chosen_valid"] is not None:
        v = r["chosen_valid"]
        print(f"valid F1 {v['f1']:.4f} (P {v['precision']:.4f}, R {v['recall']:.4f}); every entry: {r['report']}")


def pair_stage_arguments(p, *, data_help: str, configs: tuple[str, ...], prefix: str) -> None:
    """The flags `ccks` and `pairs` share (one stage, two protocols)."""
    p.add_argument("--data", type=data_folder, required=True, help=data_help)
    p.add_argument("--config", default=configs[0], help=f"stage YAML (path or shipped name: {', '.join(configs)})")
    override_argument(p)
    p.add_argument("--out", type=out_folder, help=f"run folder (default: a fresh oof/{prefix}-<config>-<time>/)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--reuse", metavar="RUN", help="an earlier run on the same files and split (or a failed run's "
                                                  "RUN.failed): members whose spec is unchanged take its scores "
                                                  "instead of training again")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


@ccks.arguments
def _(p):
    pair_stage_arguments(p, data_help="CCKS folder: item_{train,valid}_info.jsonl, item_train_pair.jsonl, "
                                      "item_valid_pair.jsonl (+ item_valid_pair_truth.jsonl to score)",
                         configs=("ccks-cpu", "ccks-test", "ccks-gpu"), prefix="ccks")


@command("pairs", "labelled product pairs (Ditto lines / DeepMatcher CSVs): fit on train, choose on valid, "
                  "score test once; write predictions.csv")
def pairs(args):
    from ..ccks import ccks_run
    from ..ccks.formats import detect_format

    if detect_format(args.data) is None:
        raise DataError(f"{args.data}: not a benchmark folder (no test.txt, nor tableA.csv); a CCKS folder runs with "
                        "`prodmatch ccks`")
    r = in_run_folder(args, "pairs", lambda out: ccks_run(args.data, with_overrides(args.config, args.set), out,
                                                           overwrite=args.overwrite, progress=not args.quiet,
                                                           reuse=args.reuse, train_size=args.train_size))
    print(f"wrote {r['out']}/: predictions.csv ({r['valid_pairs']} test pairs), compare.csv, report.md, run.json")
    print(f"chosen entry (best cross-validated valid F1, {r['chosen_cv_f1']:.4f}; in-sample "
          f"{r['chosen_held_out_f1']:.4f}): {r['chosen']}")
    t = r["chosen_valid"]
    print(f"test F1 {t['f1']:.4f} (P {t['precision']:.4f}, R {t['recall']:.4f}); every entry: {r['report']}")


@pairs.arguments
def _(p):
    pair_stage_arguments(p, data_help="benchmark folder: Ditto's train/valid/test.txt (WDC: train.txt.<size>), or "
                                      "DeepMatcher's tableA/tableB + train/valid/test.csv",
                         configs=("em-cpu", "em-fast", "em-test"), prefix="pairs")
    p.add_argument("--train-size", help="WDC training size (small, medium, large: those the folder has)")

