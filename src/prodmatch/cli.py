"""The `prodmatch` command: one sub-command per pipeline stage, each a thin call into the API.

Sub-commands register themselves with `@command`, like timm's model registry, so adding a stage
is one decorated function; bad input (DataError) is printed as one line, exit code 2.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from .errors import DataError

_COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}


def command(name: str, help: str):
    """Register ``fn(args)`` as sub-command `name`; the decorated ``fn.arguments(parser)`` adds flags."""

    def deco(run):
        def attach(arguments):
            _COMMANDS[name] = (help, arguments, run)
            return run

        run.arguments = attach
        return run

    return deco


@command("synth", "write a synthetic data set in the competition's exact file format")
def synth(args):
    from .data.synth import generate

    report = generate(args.task, args.out, seed=args.seed, preset=args.preset, overwrite=args.overwrite)
    counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
    print(f"wrote {args.task} ({args.preset}, seed {args.seed}) to {report.out}: {counts}")


@synth.arguments
def _(p):
    p.add_argument("task", choices=["shopee", "ccks"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", choices=["test", "demo"], default="test", help="test: seconds; demo: ~3,000 postings")
    p.add_argument("--overwrite", action="store_true", help="replace files a previous run wrote there")


@command("check", "load and validate competition data; print a summary or the first offenders")
def check(args):
    if args.task == "shopee":
        from .data.shopee import read_shopee_csv

        frame = read_shopee_csv(args.path, image_dir=args.image_dir, image_policy=args.image_policy)
        groups = frame["label_group"].nunique() if "label_group" in frame else "n/a"
        bad = int((~frame["image_ok"]).sum()) if "image_ok" in frame else "not checked"
        print(f"{args.path}: {len(frame)} postings, {groups} groups, bad images: {bad}")
    else:
        from .data.ccks import check_ccks_images, read_ccks_items, read_ccks_pairs

        items = read_ccks_items(args.path)
        line = f"{args.path}: {len(items)} items"
        if args.pairs:
            pairs = read_ccks_pairs(args.pairs, items)
            line += f", {len(pairs)} pairs"
            if "item_label" in pairs:
                line += f" ({int(pairs['item_label'].sum())} positive)"
        if args.image_policy != "text-only":
            image_dir = args.image_dir or str(args.path).replace("_info.jsonl", "_images")
            bad = check_ccks_images(items, image_dir, policy=args.image_policy)
            line += f", bad images: {len(bad)}"
        print(line)


@check.arguments
def _(p):
    p.add_argument("task", choices=["shopee", "ccks"])
    p.add_argument("path", help="Shopee train/test.csv, or CCKS item_*_info.jsonl")
    p.add_argument("--pairs", help="CCKS item_*_pair.jsonl to check against the items")
    p.add_argument("--image-dir", help="image folder (default: train_images/ beside train.csv; item_train_images/ beside item_train_info.jsonl)")
    p.add_argument("--image-policy", choices=["error", "placeholder", "text-only"], default="error")


@command("folds", "write group-disjoint folds (Shopee: by label_group; CCKS: by item components)")
def folds(args):
    from .data import folds as F

    if args.task == "shopee":
        from .data.shopee import read_shopee_csv

        table = F.shopee_folds(read_shopee_csv(args.path, image_policy="text-only"), args.n_folds, args.seed)
    else:
        from .data.ccks import read_ccks_pairs

        table = F.ccks_folds(read_ccks_pairs(args.path), args.n_folds, args.seed)
    out = F.write_folds(table, args.out, overwrite=args.overwrite)
    sizes = table["fold"].value_counts().sort_index().tolist()
    print(f"wrote {out}: {args.n_folds} folds, rows per fold {sizes}")


@folds.arguments
def _(p):
    p.add_argument("task", choices=["shopee", "ccks"])
    p.add_argument("path", help="Shopee train.csv, or CCKS item_train_pair.jsonl")
    p.add_argument("--out", required=True, help="folds CSV to write")
    p.add_argument("--n-folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")


@command("baseline", "threshold baseline: tune on train.csv, predict test.csv, write a run folder")
def baseline(args):
    from .pipeline import format_scores, run_baseline

    result = run_baseline(args.data, method=args.method, out_root=args.out_root, image_policy="text-only")
    print(format_scores(f"train (threshold {result['threshold']} tuned here)", result["train"]))
    if "test" in result:
        print(format_scores("test", result["test"]))
    print(f"run folder: {result['run']}")


@baseline.arguments
def _(p):
    p.add_argument("--data", required=True, help="folder with train.csv and test.csv")
    p.add_argument("--method", choices=["tfidf", "tfidf-char", "phash"], default="tfidf")
    p.add_argument("--out-root", default="oof", help="run folders go here")


@command("score", "score a Shopee submission.csv against a CSV with posting_id,label_group")
def score(args):
    from .metrics import read_submission, score_submission
    from .pipeline import read_truth

    print(score_submission(read_truth(args.truth), read_submission(args.pred)))


@score.arguments
def _(p):
    p.add_argument("--truth", required=True, help="train.csv or test_truth.csv")
    p.add_argument("--pred", required=True, help="submission.csv (posting_id,matches)")


@command("demo", "the main job on embedded synthetic data: generate, match, score")
def demo(args):
    from .pipeline import demo as run_demo, format_scores

    result = run_demo(seed=args.seed, data_root=args.data_root, out_root=args.out_root)
    print(f"data: {result['data_dir']}")
    print(format_scores(f"train, TF-IDF threshold {result['threshold']}", result["train"]))
    print(format_scores("test (held-out groups)", result["test"]))
    print(f"submission: {result['run']}/submission.csv  ({result['seconds']} s)")


@demo.arguments
def _(p):
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default="input/synthetic")
    p.add_argument("--out-root", default="oof")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="prodmatch", description="Find the postings that sell the same product (Shopee, CCKS 2022 task 9.2).")
    parser.add_argument("--version", action="version", version=f"prodmatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, arguments, run) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        args.run(args)
    except (DataError, FileExistsError, FileNotFoundError) as err:
        print(f"prodmatch {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
