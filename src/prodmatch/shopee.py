"""The Shopee task's seam (`prodmatch.task`): its run, every training stage chained on one data
folder: ArcFace encoders (OOF) + unsupervised methods -> matcher ablation -> candidate pairs +
LightGBM stacker -> models folder -> the test.csv predicted (and scored where test_truth.csv is).
The data check and folds live with the loader (`data.shopee.check_file`, `data.folds`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import load_config


@dataclass(frozen=True)
class ShopeeRunConfig:
    """Which encoders (experiment configs) and unsupervised methods go into the run; the matcher and
    stacker configs (None: their defaults); encoder folds trained side by side (None: one at a time)."""

    encoders: tuple[str, ...] = ("tiny-image", "tiny-text")
    unsupervised: tuple[str, ...] = ("phash", "tfidf", "tfidf-char")
    match: str | None = None
    stack: str | None = None
    jobs: int | None = None


def run_chain(folder: Path, run: Path, config: ShopeeRunConfig, *, progress: bool = True,
              jobs_for: Callable[[str], int | None] | None = None, stage=None) -> dict:
    """The chain into run folder `run`; `stage(name)` is a context manager timing each stage (the
    demo's `Timer.stage`), `jobs_for(encoder)` its folds side by side. Returns each stage's result."""
    import contextlib

    from .embedders.run import embed_unsupervised
    from .encoders.run import load_experiment, train_oof
    from .metrics import read_submission, read_truth, score_submission
    from .post.run import match_run
    from .predict import make_bundle, predict
    from .stack.run import stack_run

    stage = stage or (lambda name: contextlib.nullcontext())
    jobs_for = jobs_for or (lambda name: config.jobs or 1)
    out = {"encoder_f1": {}}
    for name in config.encoders:
        with stage(f"train {name}"):
            result = train_oof(folder, load_experiment(name), out=run, progress=progress, jobs=jobs_for(name))
            out["encoder_f1"][name] = result.get("oof_f1")
    for method in config.unsupervised:
        with stage(f"embed {method}"):
            embed_unsupervised(folder, method, run)
    with stage("match"):
        out["matched"] = match_run(run, data_dir=folder, config=config.match, progress=progress)
    with stage("stack"):
        out["stacked"] = stack_run(run, data_dir=folder, config=config.stack, progress=progress)
    if not (folder / "test.csv").is_file():
        return out
    with stage("bundle"):
        out["models"] = make_bundle(run, run / "bundle")
    with stage("predict"):
        out["predicted"] = predict(folder, out["models"], run / "submission.csv", progress=progress)
    if (folder / "test_truth.csv").is_file():
        out["test"] = score_submission(read_truth(folder / "test_truth.csv"), read_submission(run / "submission.csv"))
    return out


def run(data, config, out, *, overwrite: bool = False, progress: bool = True) -> dict:
    """The chain of `config` (a `ShopeeRunConfig` YAML, path or shipped name) on Shopee folder `data`
    into the new folder `out` (refused when it holds anything, `overwrite` or not: its stages never
    replace each other's files)."""
    from .errors import DataError

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: not empty; a Shopee run writes a fresh folder (choose another --out)")
    result = run_chain(Path(data), out, load_config(config, ShopeeRunConfig), progress=progress)
    return {**result, "out": out}
