"""The task seam's commands: synth, check, folds and run dispatch to the task registry
(`prodmatch.task`); the leaderboard lists every task's runs from their summary.json files."""
from __future__ import annotations

from ..config import override_argument, setting, with_overrides
from ..errors import DataError
from ._base import command, data_folder, in_run_folder, out_file, out_folder


def task_of(name: str):
    """A task flag's value: the registered task (argparse's one-line error naming the close and known ones)."""
    import argparse

    from ..task import TASKS

    try:
        return name, TASKS.get(name)
    except DataError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def task_argument(p) -> None:
    from ..task import TASKS

    p.add_argument("task", type=task_of, metavar="TASK", help=f"one of {', '.join(TASKS.names())}")


@command("synth", "write a synthetic data set in the task's exact file format")
def synth(args):
    import inspect

    name, task = args.task
    generate = task.function("generate")
    options = {k: v for k, v in {"images": False if args.no_images else None,
                                 "rows": tuple(args.rows) if args.rows else None,
                                 "workers": args.workers if args.workers != 1 else None}.items() if v is not None}
    accepted = inspect.signature(generate).parameters
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    foreign = [] if open_ended else sorted(set(options) - set(accepted))
    if foreign:
        flags = {"images": "--no-images", "rows": "--rows", "workers": "--workers"}
        raise DataError(f"{', '.join(flags[k] for k in foreign)}: not an option of task {name}'s generator")
    try:
        report = generate(args.out, seed=args.seed, preset=args.preset, overwrite=args.overwrite, **options)
    except ValueError as err:  # a preset the task does not offer, a negative seed
        raise DataError(str(err)) from err
    counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
    print(f"wrote {name} ({args.preset}, seed {args.seed}) to {report.out}: {counts}")


@synth.arguments
def _(p):
    from ..data.synth import PRESETS

    task_argument(p)
    p.add_argument("--out", type=out_folder, required=True, help="output folder")
    p.add_argument("--seed", type=setting("seed"), default=0)
    p.add_argument("--preset", choices=PRESETS, default="test",
                   help="test: seconds; demo: ~3,000 postings; kaggle (shopee only): 34,250 train / 70,000 test, 32 px")
    p.add_argument("--overwrite", action="store_true", help="replace files a previous run wrote there")
    p.add_argument("--no-images", action="store_true",
                   help="shopee: CSVs only, phashes drawn without pixels (use image policy text-only)")
    p.add_argument("--rows", type=setting("rows"), nargs=2, metavar=("TRAIN", "TEST"),
                   help="shopee: the preset's catalogue at these posting counts")
    p.add_argument("--workers", type=setting("workers"), default=1,
                   help="shopee: processes rendering the JPEGs (the same files as one)")


CHECK_FLAGS = {"pairs": None, "image_dir": None, "image_policy": "error", "feature_dim": 2048}  # flag -> default


@command("check", "load and validate a task's data; print a summary or the first offenders")
def check(args):
    name, task = args.task
    for flag, default in CHECK_FLAGS.items():
        if getattr(args, flag) != default and flag not in task.check_options:
            reads = ", ".join("--" + f.replace("_", "-") for f in task.check_options) or "none"
            raise DataError(f"--{flag.replace('_', '-')} is not an option of task {name}'s check (it reads {reads})")
    print(task.function("check")(args.path, **{flag: getattr(args, flag) for flag in task.check_options}))


@check.arguments
def _(p):
    task_argument(p)
    p.add_argument("path", help="Shopee train/test.csv, CCKS item_*_info.jsonl, or a KDD train/valid/test .tsv")
    p.add_argument("--pairs", help="CCKS item_*_pair.jsonl to check against the items")
    p.add_argument("--image-dir", help="image folder (default: train_images/ beside train.csv; item_train_images/ beside item_train_info.jsonl)")
    p.add_argument("--image-policy", choices=["error", "placeholder", "text-only"], default="error")
    p.add_argument("--feature-dim", type=setting("feature_dim"), default=2048, help="KDD: values per box feature")


@command("folds", "write group-disjoint folds (Shopee: by label_group; CCKS: by item components)")
def folds(args):
    from ..data.folds import write_folds

    name, task = args.task
    if task.folds is None:
        raise DataError(f"task {name} has no folds of its own files (its run makes them)")
    table = task.function("folds")(args.path, args.n_folds, args.seed)
    out = write_folds(table, args.out, overwrite=args.overwrite)
    sizes = table["fold"].value_counts().sort_index().tolist()
    print(f"wrote {out}: {args.n_folds} folds, rows per fold {sizes}")


@folds.arguments
def _(p):
    task_argument(p)
    p.add_argument("path", help="Shopee train.csv, or CCKS item_train_pair.jsonl")
    p.add_argument("--out", type=out_file, required=True, help="folds CSV to write")
    p.add_argument("--n-folds", type=setting("n_folds"), default=5)
    p.add_argument("--seed", type=setting("seed"), default=0)
    p.add_argument("--overwrite", action="store_true")


@command("run", "a task's run on a data folder (Shopee: the whole chain; CCKS: the pair stage; KDD: its methods), "
                "with its summary.json")
def run(args):
    from ..summary import read_summary, run_summaries

    name, task = args.task
    args.config = args.config or task.default_config
    config = with_overrides(args.config, args.set)
    result = in_run_folder(args, name, lambda out: task.function("run")(args.data, config, out,
                                                                         overwrite=args.overwrite,
                                                                         progress=not args.quiet))
    out = result["out"]
    print(f"wrote {out}/")
    for path in run_summaries(out):
        for e in read_summary(path)["entries"]:
            score = e["f1"] if e["metric"] == "F1" else e["ndcg5"]
            print(f"{e['entry']}: {e['what']} {e['metric']} " + ("-" if score is None else f"{score:.4f}"))


@run.arguments
def _(p):
    task_argument(p)
    p.add_argument("--data", type=data_folder, required=True, help="the task's data folder")
    p.add_argument("--config", help="the run's YAML (path or shipped name; default: the task's)")
    override_argument(p)
    p.add_argument("--out", type=out_folder, help="run folder (default: a fresh oof/<task>-<config>-<time>/)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out (where the task allows)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


@command("leaderboard", "every run under oof/ in leaderboard.md / .csv (best OOF F1 first) with PNG plots")
def leaderboard(args):
    from ..leaderboard import write_leaderboard

    result = write_leaderboard(args.root, plots=not args.no_plots)
    table = result["table"]
    shown = table[["run", "entry", "what", "metric", "f1", "ndcg5"]].head(args.top)
    print(shown.to_string(index=False) if len(table) else "no scored runs")
    print(f"wrote {result['markdown']}, {result['csv']} and {len(result['plots'])} plots")


@leaderboard.arguments
def _(p):
    p.add_argument("--root", default="oof", help="folder whose sub-folders are runs")
    p.add_argument("--top", type=setting("top"), default=15, help="rows to print")
    p.add_argument("--no-plots", action="store_true")

