"""The train and embed-trained stages: out-of-fold embeddings (each fold's encoder embeds the rows whose
groups it never saw) stored as a run model, so the matcher and stacker tune on honest scores; run
layout and resume rules: encoders/README.md."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from ..config import to_dict
from ..errors import DataError
from ..io import code_version, data_hashes, write_json
from ..data.folds import shopee_fold_ids
from ..data.shopee import load_shopee
from .experiment import ExperimentConfig, default_image_policy, load_experiment, parse_folds
from .fold import fold_encoder, run_features, train_fold, train_folds_in_processes, within_fold_f1
from .inference import embed_frame
from .train import validation_f1

log = logging.getLogger(__name__)


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _check_experiment(folder: Path, record: dict) -> None:
    """Create experiment.json, or check that the existing one has the same config and data."""
    path = folder / "experiment.json"
    if not path.is_file():
        write_json(path, record)
        return
    existing = json.loads(path.read_text(encoding="utf-8"))
    for key in ("config", "data", "folds_sha256"):
        if existing.get(key) != record.get(key):
            raise FileExistsError(f"{folder} was started with another {key.replace('_sha256', '')}; "
                                  "use a fresh run folder (or the same config and data)")


def _folds_digest(folds: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(folds, dtype=np.int64).tobytes()).hexdigest()


def train_oof(data_dir, config, *, folds="all", out, image_policy: str | None = None, progress: bool = True,
              device=None, jobs: int = 1) -> dict:
    """Train the fold models `folds` of `config` on `data_dir` into run folder `out`; see encoders/README.md.

    `jobs` > 1 trains that many folds at once in worker processes with one torch thread each: a
    tiny model gains little from a second intra-op thread on CPU, so folds side by side use the
    cores better (same seeds; equal to a sequential run at the same thread count). Returns a summary: run, name, folds trained now,
    folds done, complete (bool), per-fold F1, and when complete the store model folder and OOF F1
    (within folds and over all rows).
    """
    from ..store import rows_table

    config = load_experiment(config)
    started = time.time()
    data_dir, run = Path(data_dir), Path(out)
    name = config.model_name
    if (run / "models" / name / "model.json").is_file():
        raise FileExistsError(f"{run / 'models' / name} exists; choose another run folder or model name")
    chosen = parse_folds(folds, config.n_folds)
    train, test = load_shopee(data_dir, image_policy or default_image_policy(config.kind))
    fold_of = shopee_fold_ids(train, config.n_folds, config.fold_seed)
    folder = run / "folds" / name
    folder.mkdir(parents=True, exist_ok=True)
    record = {"config": to_dict(config), "data": data_hashes(data_dir), "data_dir": str(data_dir),
              "folds_sha256": _folds_digest(fold_of), "n_rows": len(train),
              "n_test": 0 if test is None else len(test)}
    _check_experiment(folder, record)
    done_before = [k for k in chosen if (folder / str(k) / "fold.json").is_file()]
    if done_before and folds in (None, "all"):  # the same command again: finish what is missing
        chosen = [k for k in chosen if k not in done_before]
        if progress:
            log.info("%s: fold(s) %s already trained; training %s", folder, done_before, chosen or "none")
    elif done_before:
        raise FileExistsError(f"{folder}: fold(s) {done_before} already trained; "
                              "train the missing folds or use a fresh run folder")

    if config.train.freeze_backbone:  # once, before the folds (workers would race for it)
        run_features(config, fold_encoder(config), train, test, folder, progress=progress)
    if jobs > 1 and len(chosen) > 1:
        trained = train_folds_in_processes(data_dir, config, chosen, run, image_policy, jobs, progress)
    else:
        for k in chosen:
            train_fold(config, train, test, fold_of, k, folder, progress=progress)
        trained = list(chosen)

    done = [k for k in range(config.n_folds) if (folder / str(k) / "fold.json").is_file()]
    per_fold = {k: json.loads((folder / str(k) / "fold.json").read_text(encoding="utf-8")) for k in done}
    summary = {"run": str(run), "name": name, "trained": trained, "done": done,
               "missing": [k for k in range(config.n_folds) if k not in done],
               "fold_f1": {k: per_fold[k]["valid"]["f1"] for k in done}, "complete": len(done) == config.n_folds,
               "seconds": round(time.time() - started, 3)}
    if not summary["complete"]:
        write_json(folder / "partial.json", {**summary, "partial": True})
        return summary
    (folder / "partial.json").unlink(missing_ok=True)

    oof, test_emb = _assemble(folder, config, fold_of, test)
    groups = train["label_group"].to_numpy()
    within = within_fold_f1(oof, groups, fold_of, config.train.k)
    across = validation_f1(oof, groups, config.train.k)
    meta = {
        "config": to_dict(config),
        "code_version": code_version(),
        "data": record["data"],
        "data_dir": str(data_dir),
        "folds": list(range(config.n_folds)),
        "folds_sha256": record["folds_sha256"],
        "fold_f1": {str(k): per_fold[k]["valid"]["f1"] for k in done},
        "fold_threshold": {str(k): per_fold[k]["valid"]["threshold"] for k in done},
        "oof_f1": within["f1"], "oof_threshold": within["threshold"],
        "oof_f1_all_rows": across["f1"], "oof_threshold_all_rows": across["threshold"],
        "test_mode": config.test if test is not None else None,
        "per_fold_models": True,  # rows of different folds live in different spaces (matcher cv_pool)
        "wall_seconds": round(sum(p["seconds"] for p in per_fold.values()), 3),
        "partial": False,
    }
    from ..store import save_embeddings

    model_dir = save_embeddings(run, name, "dense", oof, rows=rows_table(train, fold_of), test=test_emb, meta=meta)
    summary.update({"model": str(model_dir), "oof_f1": within["f1"], "oof_threshold": within["threshold"],
                    "oof_f1_all_rows": across["f1"], "dim": int(oof.shape[1])})
    return summary


def _assemble(folder: Path, config: ExperimentConfig, fold_of: np.ndarray, test) -> tuple[np.ndarray, np.ndarray | None]:
    parts = {k: np.load(folder / str(k) / "oof.npy", allow_pickle=False) for k in range(config.n_folds)}
    dim = next(iter(parts.values())).shape[1]
    oof = np.zeros((len(fold_of), dim), np.float32)
    for k, part in parts.items():
        members = np.flatnonzero(fold_of == k)
        if len(members) != len(part):
            raise DataError(f"{folder / str(k)}: {len(part)} OOF rows, the fold has {len(members)}")
        oof[members] = part
    if test is None:
        return oof, None
    if config.test == "fold":
        return oof, np.load(folder / str(config.test_fold) / "test.npy", allow_pickle=False)
    total = sum(_normalize(np.load(folder / str(k) / "test.npy", allow_pickle=False)) for k in range(config.n_folds))
    return oof, _normalize(total)


def _encoder_folders(models_dir: Path) -> dict[int, Path] | Path:
    """{fold: encoder folder} for a run's fold folder (``<k>/final`` or ``<k>/best`` or ``<k>/``),
    or the folder itself when it is one encoder (holds encoder.json)."""
    if (models_dir / "encoder.json").is_file():
        return models_dir
    found, unfinished = {}, []
    written_by_train_oof = (models_dir / "experiment.json").is_file()
    for sub in sorted(models_dir.iterdir()) if models_dir.is_dir() else []:
        if not sub.name.isdigit():
            continue
        if (written_by_train_oof or (sub / "checkpoint.json").is_file()) and not (sub / "fold.json").is_file():
            unfinished.append(int(sub.name))  # train_oof writes fold.json last: this fold stopped mid-way
            continue
        for candidate in (sub / "final", sub / "best", sub):
            if (candidate / "encoder.json").is_file():
                found[int(sub.name)] = candidate
                break
    if unfinished:
        raise DataError(f"{models_dir}: fold(s) {sorted(unfinished)} did not finish training (no fold.json); "
                        "finish them with `prodmatch train ... --fold all` first")
    if not found:
        raise DataError(f"{models_dir}: neither an encoder folder (encoder.json) nor fold folders <k>/final")
    return found


def embed_trained(data_dir, kind: str, models_dir, out, *, n_folds: int | None = None, fold_seed: int | None = None,
                  name: str | None = None, batch_size: int = 64, num_workers: int = 0,
                  image_policy: str | None = None, progress: bool = True) -> dict:
    """Embed train.csv / test.csv with encoder(s) trained before and store them in run `out`.

    `models_dir` is either a fold folder written by `train_oof` (``run/folds/<name>``, holding
    ``<k>/final``; n_folds / fold_seed then come from its experiment.json): every train row is
    embedded by its own fold's model (true OOF) and test by the mean of all; or one encoder folder
    (``encoder.json``): all rows are embedded by it, so the train matrix is NOT out-of-fold
    (meta ``oof: false``) - use it for test-time embedding.
    """
    from ..store import rows_table, save_embeddings
    from . import load_encoder

    from . import encoder_class

    encoder_class(kind)  # DataError naming the known kinds
    started = time.time()
    data_dir, models_dir = Path(data_dir), Path(models_dir)
    folders = _encoder_folders(models_dir)
    experiment = models_dir / "experiment.json"
    if experiment.is_file():
        cfg = json.loads(experiment.read_text(encoding="utf-8"))["config"]
        n_folds = n_folds or cfg["n_folds"]
        fold_seed = cfg["fold_seed"] if fold_seed is None else fold_seed
    n_folds, fold_seed = n_folds or 5, fold_seed or 0
    train, test = load_shopee(data_dir, image_policy or default_image_policy(kind))
    fold_of = shopee_fold_ids(train, n_folds, fold_seed)

    def run_model(folder: Path, frame, desc):
        encoder = load_encoder(folder)
        if getattr(encoder, "kind", kind) != kind:
            raise DataError(f"{folder} holds a {encoder.kind} encoder, not {kind}")
        return embed_frame(encoder, frame, batch_size=batch_size, num_workers=num_workers, progress=progress, desc=desc)

    if isinstance(folders, Path):
        oof = run_model(folders, train, "train")
        test_emb = None if test is None else run_model(folders, test, "test")
        is_oof, used = False, [str(folders)]
    else:
        missing = [k for k in range(n_folds) if k not in folders]
        if missing:
            raise DataError(f"{models_dir}: no model for fold(s) {missing} of {n_folds}")
        oof = np.zeros((len(train), 0), np.float32)
        tests = []
        for k in range(n_folds):
            members = np.flatnonzero(fold_of == k)
            part = run_model(folders[k], train.iloc[members].reset_index(drop=True), f"fold {k}")
            if oof.shape[1] == 0:
                oof = np.zeros((len(train), part.shape[1]), np.float32)
            oof[members] = part
            if test is not None:
                tests.append(run_model(folders[k], test, f"fold {k} test"))
        test_emb = _normalize(sum(tests)) if tests else None
        is_oof, used = True, [str(folders[k]) for k in range(n_folds)]
    groups = train["label_group"].to_numpy()
    scores = within_fold_f1(oof, groups, fold_of) if is_oof else validation_f1(oof, groups)
    meta = {"config": {"kind": kind, "models": used, "n_folds": n_folds, "fold_seed": fold_seed},
            "code_version": code_version(), "data": data_hashes(data_dir), "data_dir": str(data_dir),
            "folds": list(range(n_folds)), "oof": is_oof, "per_fold_models": is_oof, "oof_f1": scores["f1"], "oof_threshold": scores["threshold"],
            "wall_seconds": round(time.time() - started, 3), "partial": False}
    model_dir = save_embeddings(out, name or kind, "dense", oof, rows=rows_table(train, fold_of), test=test_emb, meta=meta)
    return {"run": str(out), "name": name or kind, "model": str(model_dir), "oof": is_oof, "oof_f1": scores["f1"],
            "oof_threshold": scores["threshold"], "seconds": meta["wall_seconds"]}


__all__ = ["ExperimentConfig", "load_experiment", "train_oof", "embed_trained"]
