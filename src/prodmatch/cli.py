"""The `prodmatch` command: one sub-command per pipeline stage, each a thin call into the API.

Sub-commands register themselves with `@command`, like timm's model registry, so adding a stage
is one decorated function; bad input (DataError) is printed as one line, exit code 2. Over 400 lines
because it holds every sub-command's flags; each body is a few lines calling its stage's run.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import sys

from .config import setting
from .errors import DataError
from .registry import Registry

_COMMANDS = Registry("command")  # name -> (help, arguments(parser), run(args)), in the order --help lists them


def command(name: str, help: str):
    """Register ``fn(args)`` as sub-command `name`; the decorated ``fn.arguments(parser)`` adds flags."""

    def deco(run):
        def attach(arguments):
            _COMMANDS.register(name, (help, arguments, run))
            return run

        run.arguments = attach
        return run

    return deco


def unsupervised_methods() -> list[str]:
    """Embedding methods fitted on the data itself (`prodmatch.embedders`), for choices and errors."""
    from .embedders import embedder_names

    return embedder_names(trained=False)


@command("synth", "write a synthetic data set in the competition's exact file format")
def synth(args):
    from .data.synth import generate

    options = {}
    if args.no_images or args.rows:
        if args.task != "shopee":
            raise DataError("--no-images and --rows are Shopee options")
        options = {"images": not args.no_images, "rows": tuple(args.rows) if args.rows else None}
    try:
        report = generate(args.task, args.out, seed=args.seed, preset=args.preset, overwrite=args.overwrite, **options)
    except ValueError as err:  # a preset the task does not offer, a negative seed
        raise DataError(str(err)) from err
    counts = " ".join(f"{k}={v}" for k, v in report.counts.items())
    print(f"wrote {args.task} ({args.preset}, seed {args.seed}) to {report.out}: {counts}")


@synth.arguments
def _(p):
    from .data.synth import GENERATORS

    p.add_argument("task", choices=list(GENERATORS))
    p.add_argument("--out", type=out_folder, required=True, help="output folder")
    p.add_argument("--seed", type=setting("seed"), default=0)
    from .data.synth import PRESETS

    p.add_argument("--preset", choices=PRESETS, default="test",
                   help="test: seconds; demo: ~3,000 postings; kaggle (shopee only): 34,250 train / 70,000 test, 32 px")
    p.add_argument("--overwrite", action="store_true", help="replace files a previous run wrote there")
    p.add_argument("--no-images", action="store_true",
                   help="shopee: CSVs only, phashes drawn without pixels (use image policy text-only)")
    p.add_argument("--rows", type=setting("rows"), nargs=2, metavar=("TRAIN", "TEST"),
                   help="shopee: the preset's catalogue at these posting counts")


@command("check", "load and validate competition data; print a summary or the first offenders")
def check(args):
    from .cli_tasks import CHECKS

    CHECKS.get(args.task)(args)


@check.arguments
def _(p):
    from .cli_tasks import CHECKS

    p.add_argument("task", choices=list(CHECKS))
    p.add_argument("path", help="Shopee train/test.csv, CCKS item_*_info.jsonl, or a KDD train/valid/test .tsv")
    p.add_argument("--pairs", help="CCKS item_*_pair.jsonl to check against the items")
    p.add_argument("--image-dir", help="image folder (default: train_images/ beside train.csv; item_train_images/ beside item_train_info.jsonl)")
    p.add_argument("--image-policy", choices=["error", "placeholder", "text-only"], default="error")
    p.add_argument("--feature-dim", type=setting("feature_dim"), default=2048, help="KDD: values per box feature")


@command("folds", "write group-disjoint folds (Shopee: by label_group; CCKS: by item components)")
def folds(args):
    from .cli_tasks import FOLD_TABLES
    from .data import folds as F

    table = FOLD_TABLES.get(args.task)(args)
    out = F.write_folds(table, args.out, overwrite=args.overwrite)
    sizes = table["fold"].value_counts().sort_index().tolist()
    print(f"wrote {out}: {args.n_folds} folds, rows per fold {sizes}")


@folds.arguments
def _(p):
    from .cli_tasks import FOLD_TABLES

    p.add_argument("task", choices=list(FOLD_TABLES))
    p.add_argument("path", help="Shopee train.csv, or CCKS item_train_pair.jsonl")
    p.add_argument("--out", type=out_file, required=True, help="folds CSV to write")
    p.add_argument("--n-folds", type=setting("n_folds"), default=5)
    p.add_argument("--seed", type=setting("seed"), default=0)
    p.add_argument("--overwrite", action="store_true")


@command("baseline", "threshold baseline: tune on train.csv, predict test.csv, write a run folder")
def baseline(args):
    from .baseline import run_baseline
    from .pipeline import format_scores

    result = run_baseline(args.data, method=args.method, out_root=args.out_root, image_policy="text-only")
    print(format_scores(f"train (threshold {result['threshold']} tuned here)", result["train"]))
    if "test" in result:
        print(format_scores("test", result["test"]))
    print(f"run folder: {result['run']}")


@baseline.arguments
def _(p):
    p.add_argument("--data", type=data_folder, required=True, help="folder with train.csv and test.csv")
    p.add_argument("--method", choices=unsupervised_methods(), default="tfidf")
    p.add_argument("--out-root", type=out_folder, default="oof", help="run folders go here")


@command("score", "score a Shopee submission.csv against a CSV with posting_id,label_group")
def score(args):
    from .metrics import read_submission, read_truth, score_submission

    print(score_submission(read_truth(args.truth), read_submission(args.pred)))


@score.arguments
def _(p):
    p.add_argument("--truth", required=True, help="train.csv or test_truth.csv")
    p.add_argument("--pred", required=True, help="submission.csv (posting_id,matches)")


@command("demo", "the main job on synthetic data: encoders, matcher, stacker, predict, leaderboard (CPU)")
def demo(args):
    from .pipeline import demo as run_demo

    r = run_demo(seed=args.seed, data_root=args.data_root, out_root=args.out_root, preset=args.preset,
                 progress=not args.quiet, jobs=args.jobs)
    print(f"data:        {r['data_dir']}")
    print(f"run:         {r['run']}  (OOF embeddings, ablation.csv, stack/, demo.json)")
    print(f"models:      {r['models']}")
    print(f"submission:  {r['submission']}")
    print(f"leaderboard: {r['leaderboard']}")
    enc = ", ".join(f"{k} {v:.4f}" for k, v in r["encoders_oof_f1"].items() if v is not None)
    print(f"OOF F1: encoders {enc}; matcher best {r['matcher_best']['f1']:.4f} ({r['matcher_best']['stage']}); "
          f"stacker {r['stacker_oof']['f1']:.4f}")
    base = r["baseline_test"]["f1"] if r.get("baseline_test") else float("nan")
    print(f"held-out test F1 {r['test']['f1']:.4f} ({r['test_used']}); TF-IDF baseline {base:.4f}")
    print(r["timer"].summary())


@demo.arguments
def _(p):
    p.add_argument("--seed", type=setting("seed"), default=0)
    p.add_argument("--preset", choices=["demo", "test"], default="demo", help="test: a seconds-long smoke run")
    p.add_argument("--data-root", default="input/synthetic")
    p.add_argument("--out-root", type=out_folder, default="oof")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--jobs", type=setting("jobs"), help="encoder folds trained side by side (default: one per core)")


@command("match", "matcher ablation on OOF embeddings: F1/P/R after each stage, thresholds tuned on other folds")
def match(args):
    from .post.run import match_run

    from .post.matcher import MatcherConfig

    config = with_backend(args.config, args.backend, MatcherConfig)
    result = match_run(args.run, data_dir=args.data, config=config, overwrite=args.overwrite,
                       test_rows=args.test_rows)
    print(result["table"].to_string(index=False))
    info = result["info"]
    print(f"matcher OOF F1 {info['oof_f1']:.4f}; " + predicted_line(info.get("predicted"), info["params"]["t"],
                                                                  info["params"]["t_min2"]))
    print(f"wrote {result['ablation']} and {result['matcher']} ({result['seconds']} s)")


def with_backend(config, backend: str | None, config_class):
    """A stage config (a YAML path, a shipped name or None) of `config_class` with `backend` set when given."""
    if backend is None:
        return config
    from .config import load_config, to_dict

    return {**to_dict(load_config(config if config is not None else {}, config_class)), "backend": checked_backend(backend)}


def data_folder(text: str) -> str:
    """An argparse `type` for --data: an existing folder (a missing one, or a file, is refused at parse time)."""
    from pathlib import Path

    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder (--data names the folder holding the data files)")
    return text


def out_folder(text: str) -> str:
    """An argparse `type` for an output folder: refused at parse time when a file is there, or its
    parent is a file or not writable (`io.out_path_problem`)."""
    return _writable(text, folder=True)


def out_file(text: str) -> str:
    """An argparse `type` for an output file (see `out_folder`)."""
    return _writable(text, folder=False)


def _writable(text: str, *, folder: bool) -> str:
    from pathlib import Path

    from .io import out_path_problem

    problem = out_path_problem(Path(text), folder=folder)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def checked_backend(backend: str | None) -> str:
    """A `--backend` flag's value (None: auto), refused with the known names when unknown."""
    from .neighbors import backend_names

    if backend is None:
        return "auto"
    if backend != "auto" and backend not in backend_names():
        raise DataError(f"--backend {backend}: unknown; choose from auto, {', '.join(backend_names())}")
    if backend == "cuml" and importlib.util.find_spec("cuml") is None:
        raise DataError("--backend cuml needs cuML (RAPIDS), which is not installed here; use --backend auto")
    if backend == "cuml" and not _cuda_available():
        raise DataError("--backend cuml needs a CUDA GPU, and none is visible here; use --backend auto")
    return backend


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def predicted_line(predicted: dict | None, t, t_min2) -> str:
    if not predicted:
        return f"no test size known (pass --test-rows): thresholds {t} / Min2 {t_min2} are the CV pools' own"
    return (f"predicted at {predicted['test_rows']:,} test rows: F1 {predicted['f1']:.4f} (P {predicted['precision']:.3f}, "
            f"R {predicted['recall']:.3f}) with threshold {t}, Min2 {t_min2}")


def run_stage_arguments(p, *, config_help: str, writes: str) -> None:
    """Flags shared by the stages that read embedding runs (match, stack)."""
    p.add_argument("--run", required=True, action="append", help="embedding run folder (repeat to combine runs)")
    p.add_argument("--data", type=data_folder, help="folder with the train.csv the run came from (titles for unit/text features)")
    p.add_argument("--config", help=config_help)
    p.add_argument("--overwrite", action="store_true", help=f"replace the run's {writes}")
    p.add_argument("--test-rows", type=setting("test_rows"), default=None,
                   help="test size the thresholds are tuned for (default: the run's test.csv rows; a Kaggle "
                        "kernel's bundle also adapts to the size predict meets)")


@match.arguments
def _(p):
    run_stage_arguments(p, config_help="matcher YAML (path or shipped name); default: every model, full chain",
                        writes="ablation.csv / matcher.json")
    backend_argument(p, "replacing the config's")


@command("train", "train an image/text encoder with ArcFace per fold and store its OOF + test embeddings")
def train(args):
    from pathlib import Path

    from .config import read_yaml
    from .encoders.run import load_experiment, train_oof
    from .io import new_run_dir

    source = args.config or f"tiny-{args.kind}"
    data = read_yaml(source)
    if data.get("kind", args.kind) != args.kind:
        raise DataError(f"config {source} is for kind {data['kind']!r}, not {args.kind!r}")
    overrides = {"kind": args.kind, **({"name": args.name} if args.name else {})}
    if args.epochs:
        overrides["train"] = {"epochs": args.epochs}
    config = load_experiment(data, **overrides)
    if args.fold != "all" and not args.fold.isdigit():
        raise DataError(f"--fold must be 'all' or a fold index, got {args.fold!r}")
    folds = "all" if args.fold == "all" else int(args.fold)
    out = Path(args.out) if args.out else new_run_dir("oof", f"{args.kind}-{Path(str(source)).stem}")
    result = train_oof(args.data, config, folds=folds, out=out, image_policy=args.image_policy,
                       progress=not args.quiet, jobs=args.jobs)
    fold_f1 = ", ".join(f"{k}: {f:.4f}" for k, f in result["fold_f1"].items())
    print(f"wrote {config.model_name} fold(s) {result['trained']} to {out}/folds/{config.model_name}; held-out F1 {fold_f1}")
    if result["complete"]:
        print(f"OOF F1 {result['oof_f1']:.4f} at threshold {result['oof_threshold']} (each fold searched alone; "
              f"all rows together: {result['oof_f1_all_rows']:.4f}); model: {result['model']}")
    else:
        print(f"partial: folds {result['missing']} still to train (same --out); the OOF model is written when all are done")


@train.arguments
def _(p):
    from .encoders._registry import ENCODERS

    p.add_argument("kind", choices=list(ENCODERS))
    p.add_argument("--data", type=data_folder, required=True, help="folder with train.csv (+ train_images/) and test.csv")
    p.add_argument("--config", help="experiment YAML (path or shipped name); default tiny-<kind>")
    p.add_argument("--fold", default="all", help="'all' or one fold index (the OOF model appears when every fold is done)")
    p.add_argument("--out", type=out_folder, help="run folder (default: a fresh oof/<kind>-<config>-<time>/); reused only for the same config")
    p.add_argument("--name", help="model name in the run (default: the config's name, else the kind)")
    p.add_argument("--epochs", type=setting("epochs"), help="override train.epochs")
    p.add_argument("--jobs", type=setting("jobs"), default=1,
                   help="folds trained at once in worker processes (CPU: the cores split between them)")
    p.add_argument("--image-policy", choices=["error", "placeholder"], default=None,
                   help="unreadable images (image kind): error, or skip in training / grey placeholder at inference (default)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


@command("embed", "store embeddings of train.csv/test.csv in a run: TF-IDF, phash, or trained encoders (--models)")
def embed(args):
    from pathlib import Path

    from .embedders.run import embed_unsupervised
    from .encoders.run import embed_trained
    from .io import new_run_dir

    unsupervised = args.method in unsupervised_methods()
    if not unsupervised and not args.models:
        from .encoders import encoder_classes

        kinds = ", ".join(sorted(encoder_classes()))
        raise DataError(f"embed {args.method}: not an unsupervised method ({', '.join(unsupervised_methods())}); "
                        f"a trained encoder kind ({kinds}) needs --models (a run's folds/<name> folder or one encoder folder)")
    out = Path(args.out) if args.out else new_run_dir("oof", f"embed-{args.method}")
    if not unsupervised:
        result = embed_trained(args.data, args.method, args.models, out, n_folds=args.n_folds, fold_seed=args.fold_seed,
                               name=args.name, batch_size=args.batch_size, num_workers=args.num_workers,
                               image_policy=args.image_policy, progress=not args.quiet)
        note = "" if result["oof"] else " (one model for all rows: NOT out-of-fold)"
    else:
        if args.models:
            raise DataError(f"--models is for trained encoder kinds; {args.method} is fitted on the data itself")
        result = embed_unsupervised(args.data, args.method, out, n_folds=args.n_folds or 5,
                                    fold_seed=args.fold_seed or 0, name=args.name)
        note = " (threshold tuned on all train rows)"
    print(f"wrote {result['model']}: OOF F1 {result['oof_f1']:.4f} at threshold {result['oof_threshold']}{note}")


@embed.arguments
def _(p):
    p.add_argument("method", help=f"an unsupervised method ({', '.join(unsupervised_methods())}) or, with --models, "
                                  "a trained encoder kind (image, text, ...)")
    p.add_argument("--data", type=data_folder, required=True, help="folder with train.csv and test.csv")
    p.add_argument("--out", type=out_folder, help="run folder (default: a fresh oof/embed-<method>-<time>/)")
    p.add_argument("--models", help="image/text: a run's folds/<name> folder (true OOF) or one encoder folder")
    p.add_argument("--name", help="model name in the run (default: the method)")
    p.add_argument("--n-folds", type=setting("n_folds"), default=None, help="folds of rows.csv (default: the trained run's, else 5)")
    p.add_argument("--fold-seed", type=setting("fold_seed"), default=None, help="fold seed of rows.csv (default: the trained run's, else 0)")
    p.add_argument("--batch-size", type=setting("batch_size"), default=64)
    p.add_argument("--num-workers", type=setting("num_workers"), default=0)
    p.add_argument("--image-policy", choices=["error", "placeholder"], default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bars")


@command("stack", "candidate pairs + LightGBM stacker on OOF embeddings; OOF F1 with thresholds tuned on other folds")
def stack(args):
    from .stack.run import stack_run

    from .stack.lgbm import StackerConfig

    result = stack_run(args.run, data_dir=args.data, config=with_backend(args.config, args.backend, StackerConfig),
                       overwrite=args.overwrite,
                       test_rows=args.test_rows)
    info = result["info"]
    print(f"{info['pairs']} candidate pairs ({info['positives']} true), candidate recall per fold {info['candidate_recall']}")
    print(f"stacker OOF ({info['config']['cv_pool']} pool): {result['scores']}")
    print(predicted_line(info.get("predicted"), info["threshold"], info["t_min2"]))
    print("top features: " + ", ".join(result["importance"]["feature"].head(5)))
    print("members vs ensembles vs stacker (thresholds from other folds):")
    print(result["compare"].to_string(index=False))
    print(f"wrote {result['out']}/ ({info['seconds']} s)")


@stack.arguments
def _(p):
    run_stage_arguments(p, config_help="stacker YAML (path or shipped name)", writes="stack/ folder")
    backend_argument(p, "replacing the config's")


def in_run_folder(args, prefix: str, run):
    """`run(out)` in ``--out``, or in a fresh ``oof/<prefix>-<config>-<time>/`` that is removed again
    when the run fails before writing anything."""
    from pathlib import Path

    from .io import new_run_dir

    out = Path(args.out) if args.out else new_run_dir("oof", f"{prefix}-{Path(str(args.config)).stem}")
    try:
        return run(out)
    except BaseException:
        if not args.out and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the fresh default folder stays only for a finished run
        raise


@command("ccks", "CCKS 2022 task 9.2: train pair models, fit ensembles on held-out train pairs, write result.jsonl")
def ccks(args):
    from .ccks import ccks_run

    r = in_run_folder(args, "ccks", lambda out: ccks_run(args.data, args.config, out, overwrite=args.overwrite,
                                                          progress=not args.quiet, reuse=args.reuse))
    print(f"wrote {r['out']}/: result.jsonl ({r['valid_pairs']} valid pairs), scores.parquet, ensembles.json, run.json")
    print(f"chosen entry (best cross-validated held-out F1, {r['chosen_cv_f1']:.4f}; in-sample {r['chosen_held_out_f1']:.4f}): {r['chosen']}")
    if r["chosen_valid"] is not None:
        v = r["chosen_valid"]
        print(f"valid F1 {v['f1']:.4f} (P {v['precision']:.4f}, R {v['recall']:.4f}); every entry: {r['report']}")


def pair_stage_arguments(p, *, data_help: str, configs: tuple[str, ...], prefix: str) -> None:
    """The flags `ccks` and `pairs` share (one stage, two protocols)."""
    p.add_argument("--data", type=data_folder, required=True, help=data_help)
    p.add_argument("--config", default=configs[0], help=f"stage YAML (path or shipped name: {', '.join(configs)})")
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
    from .ccks import ccks_run
    from .ccks.formats import detect_format
    from .errors import DataError

    if detect_format(args.data) is None:
        raise DataError(f"{args.data}: not a benchmark folder (no test.txt, nor tableA.csv); a CCKS folder runs with "
                        "`prodmatch ccks`")
    r = in_run_folder(args, "pairs", lambda out: ccks_run(args.data, args.config, out, overwrite=args.overwrite,
                                                           progress=not args.quiet, reuse=args.reuse,
                                                           train_size=args.train_size))
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


@command("kdd", "KDD Cup 2020 recall: score ranking methods on valid (NDCG@5), write compare.csv + submission.csv")
def kdd(args):
    from .kdd import kdd_rescore, kdd_run

    if args.rescore:
        if args.overwrite:
            raise DataError("--rescore writes a new folder; it never replaces one (no --overwrite)")
        r = in_run_folder(args, "kdd-rescore", lambda out: kdd_rescore(args.rescore, args.data, out))
        print(r["table"].to_string(index=False) if len(r["table"]) else "no test split with answers")
        print(f"wrote {r['out']}/: scores.parquet, compare.csv, run.json, "
              f"{', '.join(f'{s}/submission.csv' for s in r['submissions'])} (method {r['chosen']}, saved in {args.rescore})")
        return
    r = in_run_folder(args, "kdd", lambda out: kdd_run(args.data, args.config, out, overwrite=args.overwrite))
    print(r["table"].to_string(index=False))
    subs = ", ".join(f"{split}/submission.csv" for split in r["submissions"]) or "no test split"
    print(f"wrote {r['out']}/: compare.csv, scores.parquet, run.json, {subs} (method {r['chosen']}, "
          f"valid NDCG@5 {r['valid'][r['chosen']]:.4f})")


@kdd.arguments
def _(p):
    p.add_argument("--data", type=data_folder, required=True, help="KDD folder: multimodal_labels.txt, valid.tsv, valid_answer.json "
                                                 "(+ testA.tsv / testB.tsv; files may sit in valid/, testA/, ...)")
    p.add_argument("--config", default="kdd", help="stage YAML (path or shipped name: kdd, kdd-demo, kdd-test)")
    p.add_argument("--out", type=out_folder, help="run folder (default: a fresh oof/kdd-<config>-<time>/)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--rescore", metavar="RUN", help="score --data's test splits with the models saved in the KDD run "
                                                    "folder RUN, without training, into a new --out")


@command("leaderboard", "every run under oof/ in leaderboard.md / .csv (best OOF F1 first) with PNG plots")
def leaderboard(args):
    from .leaderboard import write_leaderboard

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


@command("bundle", "collect a training run's encoders, matcher params and stacker into one models folder")
def bundle(args):
    from .predict import make_bundle, read_bundle

    out = make_bundle(args.run, args.out, overwrite=args.overwrite, use=args.use)
    info = read_bundle(out)
    used = "stacker" if info.get("stacker") else "matcher"
    print(f"wrote {out}: models {', '.join(info['models'])}; predict will use the {used}")


@bundle.arguments
def _(p):
    p.add_argument("--run", required=True, action="append", help="training run folder(s) (matched with `prodmatch match`)")
    p.add_argument("--out", type=out_folder, required=True, help="models folder to write (e.g. a Kaggle dataset folder)")
    p.add_argument("--use", choices=["auto", "stacker", "matcher"], default="auto",
                   help="auto: the stacker when its predicted test F1 beats the matcher's")
    p.add_argument("--overwrite", action="store_true")


@command("soup", "average the weights of saved encoders of one architecture into one encoder (model soup)")
def soup(args):
    from .encoders.soup import soup_encoders
    from .io import check_out_path

    out = check_out_path(args.out, folder=True, overwrite=args.overwrite)
    folder, chosen = soup_encoders(args.folders, out, replace=args.overwrite)
    print(f"wrote {folder}: uniform soup of {len(chosen)} encoders")


@soup.arguments
def _(p):
    p.add_argument("folders", nargs="+", help="encoder folders (encoder.json + model.safetensors), e.g. "
                                              "folds/<name>/<k>/final of one run, or runs with other seeds")
    p.add_argument("--out", type=out_folder, required=True, help="encoder folder to write")
    p.add_argument("--overwrite", action="store_true")


@command("predict", "offline inference: test.csv (+ images) and a models folder -> submission.csv")
def predict(args):
    from .predict import predict as run_predict

    result = run_predict(args.data, args.models, args.out, batch_size=args.batch_size, num_workers=args.workers,
                         progress=not args.quiet, overwrite=args.overwrite, backend=checked_backend(args.backend))
    print(f"wrote {result['submission']} ({result['rows']} rows, {result['used']})")
    print(result["timing"].summary())


@predict.arguments
def _(p):
    p.add_argument("--data", type=data_folder, required=True, help="folder with test.csv (+ test_images/)")
    p.add_argument("--models", required=True, help="models folder written by `prodmatch bundle`")
    p.add_argument("--out", type=out_file, default="submission.csv")
    p.add_argument("--batch-size", type=setting("batch_size"), default=64)
    p.add_argument("--workers", type=setting("workers"), default=0, help="DataLoader workers for image decoding")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    backend_argument(p, "default auto: cuml on a GPU, else faiss")


def backend_argument(p, default: str) -> None:
    p.add_argument("--backend", help=f"KNN backend ({default}): faiss, torch, cuml, faiss_ivf, faiss_ivfpq, faiss_hnsw, "
                                     "or dask / dask_ivf / dask_ivfpq / dask_hnsw (with --dask)")


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors as every other error: one line, `prodmatch <cmd>: error: ...`,
    exit 2 (`--help` still shows the usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineParser(prog="prodmatch", description="Find the postings that sell the same product (Shopee, CCKS 2022 task 9.2, KDD Cup 2020 recall).")
    parser.add_argument("--version", action="version", version=f"prodmatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--dask", metavar="CLUSTER", help="run the dask* KNN backends on a Dask cluster: local (2 worker "
                        "processes here), local:N, or a scheduler address such as tcp://host:8786")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, arguments, run) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(handler=run)
    return parser


def cluster_for(spec: str | None):
    """The Dask client a `--dask` flag asks for, open while the command runs (none: a no-op)."""
    if spec is None:
        return contextlib.nullcontext()
    from .distributed import open_cluster
    from .extras import check

    check("distributed", f"--dask {spec}")

    return open_cluster(spec)


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or argparse's own one-line usage error (exit 2)
        return done.code if isinstance(done.code, int) else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its CPU-feature probing is noise
    try:
        if str(getattr(args, "backend", None)).startswith("dask") and args.dask is None:
            raise DataError(f"--backend {args.backend} runs on a Dask cluster: add --dask local (or --dask tcp://host:8786)")
        with cluster_for(args.dask):
            args.handler(args)
    except (DataError, FileExistsError, FileNotFoundError) as err:
        print(f"prodmatch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's exit status for SIGINT
        print(f"prodmatch {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
