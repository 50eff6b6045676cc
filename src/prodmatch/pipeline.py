"""The demo: the Shopee chain (`prodmatch.shopee.run_chain`) on synthetic data, then the baseline
and the leaderboard; this module only wires them and times them."""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from . import __version__
from .baseline import run_baseline
from .data.synth import generate
from .embedders import embedder_names
from .io import data_hashes, new_run_dir, write_json
from .metrics import Scores

log = logging.getLogger(__name__)


def demo_data(root="input/synthetic", *, seed: int = 0, preset: str = "demo") -> Path:
    """The demo Shopee data set: generated once per seed, reused afterwards (it is deterministic)."""
    folder = Path(root) / f"shopee-{preset}-seed{seed}"
    if not (folder / "test_truth.csv").is_file():
        log.info("generating synthetic Shopee %s data into %s", preset, folder)
        generate("shopee", folder, seed=seed, preset=preset, overwrite=True)
    return folder


DEMO_ENCODERS = ("tiny-image", "tiny-text")


# Folds side by side at one thread each beat one fold at a time on both threads for both encoders
# (demo preset, per fold: tiny-image 135 s two at a time; MiniLM 183 s two at a time vs 113 s alone).
DEMO_JOBS = {"tiny-image": None, "tiny-text": None}  # None: one worker per core


DEMO_UNSUPERVISED = tuple(embedder_names(trained=False))  # the demo embeds every unsupervised method


def expected_demo_seconds(preset: str, out_root="oof") -> dict:
    """Stage -> seconds the demo should take: the last finished demo of `preset` under `out_root`
    (this machine's own speed), else DEMO_SECONDS (measured on an idle 2-core machine)."""
    import json

    for done in sorted(Path(out_root).glob(f"demo-{preset}-*/demo.json"), reverse=True):
        try:
            timing = json.loads(done.read_text(encoding="utf-8"))["timing"]
        except (OSError, ValueError, KeyError):
            continue
        return {**DEMO_SECONDS.get(preset, {}), **timing}
    return dict(DEMO_SECONDS.get(preset, {}))


# Seconds per demo stage, measured on an idle 2-core machine (`/usr/bin/time -v prodmatch demo`, README)
DEMO_SECONDS = {
    "demo": {"data": 60, "train tiny-image": 93, "train tiny-text": 120, "embed tfidf": 1, "embed tfidf-char": 2,
             "embed phash": 1, "match": 74, "stack": 28, "bundle": 1, "predict": 15, "baseline": 1, "leaderboard": 2},
    "test": {"data": 1, "train tiny-image": 46, "train tiny-text": 40, "embed tfidf": 1, "embed tfidf-char": 1,
             "embed phash": 1, "match": 2, "stack": 3, "bundle": 1, "predict": 1, "baseline": 1, "leaderboard": 1},
}


def demo(*, seed: int = 0, data_root="input/synthetic", out_root="oof", preset: str = "demo",
         encoders=DEMO_ENCODERS, progress: bool = True, jobs: int | None = None) -> dict:
    """The README's main job, every stage on CPU: synthetic data -> ArcFace encoders (OOF) + TF-IDF
    + phash -> matcher ablation -> candidate pairs + LightGBM stacker -> models folder -> predict
    the held-out test.csv -> submission.csv, scored -> leaderboard.

    `jobs`: encoder folds trained side by side (default: DEMO_JOBS per encoder on the demo preset,
    None there meaning one per core; 1 on the test preset, whose folds train in less time than a
    worker takes to start).
    """
    from .leaderboard import write_leaderboard
    from .predict import Timer
    from .resources import available_cores
    from .shopee import ShopeeRunConfig, run_chain

    def jobs_for(name: str) -> int:
        if jobs is not None:
            return int(jobs)
        if preset == "test":
            return 1
        return DEMO_JOBS.get(name) or available_cores()

    timer = Timer(expected=expected_demo_seconds(preset, out_root), report=log.info)  # also with --quiet (no bars)
    with timer.stage("data"):
        folder = demo_data(data_root, seed=seed, preset=preset)
    run = new_run_dir(out_root, f"demo-{preset}")
    chain = run_chain(folder, run, ShopeeRunConfig(encoders=tuple(encoders), unsupervised=DEMO_UNSUPERVISED),
                      progress=progress, jobs_for=jobs_for, stage=timer.stage)
    encoder_f1, matched, stacked = chain["encoder_f1"], chain["matched"], chain["stacked"]
    models, predicted, test = chain["models"], chain["predicted"], chain["test"]
    with timer.stage("baseline"):
        baseline = run_baseline(folder, method="tfidf", out_root=out_root, image_policy="text-only")
    with timer.stage("leaderboard"):
        board = write_leaderboard(out_root)
    summary = {
        "stage": "demo", "data_dir": str(folder), "run": str(run), "version": __version__,
        "encoders_oof_f1": encoder_f1,
        "matcher_oof": matched["table"].iloc[-1][["stage", "f1", "precision", "recall"]].to_dict(),
        "matcher_best": matched["table"].loc[matched["table"]["f1"].idxmax(), ["stage", "models", "f1"]].to_dict(),
        "stacker_oof": asdict(stacked["scores"]), "test": asdict(test), "test_used": predicted["used"],
        "baseline_test": baseline.get("test"), "timing": timer.seconds,
        "data": data_hashes(folder),
    }
    write_json(run / "demo.json", summary)
    return {**summary, "models": str(models), "submission": str(run / "submission.csv"),
            "leaderboard": str(board["markdown"]), "timer": timer}


def format_scores(label: str, scores: dict | Scores) -> str:
    scores = Scores(**scores) if isinstance(scores, dict) else scores
    return f"{label}: {scores}"
