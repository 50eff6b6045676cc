"""Shopee's stage commands: baseline, score, demo, match, train, embed, stack, bundle, soup, predict."""
from __future__ import annotations

from ..config import override_argument, setting, with_overrides
from ..errors import DataError
from ._base import backend_argument, checked_backend, command, data_folder, out_file, out_folder, predicted_line, run_stage_arguments, unsupervised_methods, with_backend


@command("baseline", "threshold baseline: tune on train.csv, predict test.csv, write a run folder")
def baseline(args):
    from ..baseline import run_baseline
    from ..pipeline import format_scores

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
    from ..metrics import read_submission, read_truth, score_submission

    print(score_submission(read_truth(args.truth), read_submission(args.pred)))


@score.arguments
def _(p):
    p.add_argument("--truth", required=True, help="train.csv or test_truth.csv")
    p.add_argument("--pred", required=True, help="submission.csv (posting_id,matches)")


@command("demo", "the main job on synthetic data: encoders, matcher, stacker, predict, leaderboard (CPU)")
def demo(args):
    from ..pipeline import demo as run_demo

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
    from ..post.run import match_run

    from ..post.matcher import MatcherConfig

    config = with_backend(with_overrides(args.config, args.set), args.backend, MatcherConfig)
    result = match_run(args.run, data_dir=args.data, config=config, overwrite=args.overwrite,
                       test_rows=args.test_rows)
    print(result["table"].to_string(index=False))
    info = result["info"]
    print(f"matcher OOF F1 {info['oof_f1']:.4f}; " + predicted_line(info.get("predicted"), info["params"]["t"],
                                                                  info["params"]["t_min2"]))
    print(f"wrote {result['ablation']} and {result['matcher']} ({result['seconds']} s)")


@match.arguments
def _(p):
    run_stage_arguments(p, config_help="matcher YAML (path or shipped name); default: every model, full chain",
                        writes="ablation.csv / matcher.json")
    backend_argument(p, "replacing the config's")


@command("train", "train an image/text encoder with ArcFace per fold and store its OOF + test embeddings")
def train(args):
    from pathlib import Path

    from ..config import read_yaml
    from ..encoders.run import load_experiment, train_oof
    from ..io import new_run_dir

    source = args.config or f"tiny-{args.kind}"
    data = with_overrides(read_yaml(source), args.set)
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
    from ..encoders._registry import ENCODERS

    p.add_argument("kind", choices=list(ENCODERS))
    p.add_argument("--data", type=data_folder, required=True, help="folder with train.csv (+ train_images/) and test.csv")
    p.add_argument("--config", help="experiment YAML (path or shipped name); default tiny-<kind>")
    override_argument(p)
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

    from ..embedders.run import embed_unsupervised
    from ..encoders.run import embed_trained
    from ..io import new_run_dir

    unsupervised = args.method in unsupervised_methods()
    if not unsupervised and not args.models:
        from ..encoders import encoder_classes

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
    from ..stack.run import stack_run

    from ..stack.lgbm import StackerConfig

    config = with_backend(with_overrides(args.config, args.set), args.backend, StackerConfig)
    result = stack_run(args.run, data_dir=args.data, config=config, overwrite=args.overwrite, test_rows=args.test_rows)
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


@command("bundle", "collect a training run's encoders, matcher params and stacker into one models folder")
def bundle(args):
    from ..predict import make_bundle, read_bundle

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
    from ..encoders.soup import soup_encoders
    from ..io import check_out_path

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
    from ..predict import predict as run_predict

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

