"""Out-of-fold embeddings: each fold's encoder embeds the rows whose groups it never saw, stored in a run,
so the matcher and stacker tune on honest scores; run layout and resume rules: encoders/README.md.
Near 500 lines: the experiment config, fold workers, resume checks and `embed_trained` share its helpers."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..config import from_dict, load_config, read_yaml, to_dict
from ..errors import DataError
from ..io import code_version, data_hashes, write_json, write_npy
from ..resources import available_cores
from .inference import embed_frame
from ..training.checkpoint import seed_everything
from .train import TrainConfig, fit, validation_f1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExperimentConfig:
    """One trainable model's OOF experiment: encoder settings, training settings, folds."""

    kind: str  # a registered encoder kind (`prodmatch.encoders.encoder_classes`): image, text, ...
    encoder: dict = field(default_factory=dict)  # validated by ENCODER_CONFIGS[kind]
    train: TrainConfig = field(default_factory=TrainConfig)
    n_folds: int = 5
    fold_seed: int = 0
    test: Literal["average", "fold"] = "average"
    test_fold: int = 0
    checkpoint: Literal["final", "best"] = "final"  # which fold model embeds: last epoch or best valid F1
    name: str | None = None  # store model name; default: the kind

    @property
    def model_name(self) -> str:
        return self.name or self.kind

    def encoder_config(self):
        """The typed encoder config (ENCODER_CONFIGS[kind]) of this experiment."""
        from . import encoder_class

        return load_config(dict(self.encoder), encoder_class(self.kind).config_class)


def load_experiment(source, **overrides) -> ExperimentConfig:
    """An ExperimentConfig from a YAML path, a shipped config name, a dict or an instance.

    The encoder section is validated against the kind's encoder config and stored completed with
    its defaults, so the recorded config is the full one. `overrides` replace top-level keys
    (``kind=...``) or, given as dicts, update the ``encoder`` / ``train`` sections.
    """
    if isinstance(source, ExperimentConfig):
        data = to_dict(source)
    else:
        data = dict(source) if isinstance(source, dict) else read_yaml(source)
    for key, value in overrides.items():
        if key in ("encoder", "train") and isinstance(value, dict):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    if "kind" not in data:
        raise DataError("experiment config: missing 'kind' (a registered encoder kind: image, text, ...)")
    config = from_dict(ExperimentConfig, data)
    enc = config.encoder_config()
    config = dataclasses.replace(config, encoder=to_dict(enc))
    if config.n_folds < 2:
        raise DataError(f"experiment config: n_folds must be >= 2, got {config.n_folds}")
    if not 0 <= config.test_fold < config.n_folds:
        raise DataError(f"experiment config: test_fold {config.test_fold} is not a fold of {config.n_folds}")
    return config


def load_data(data_dir, image_policy: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """train.csv (required, labelled) and test.csv (optional) of a Shopee folder."""
    from ..data.shopee import read_shopee_csv

    data_dir = Path(data_dir)
    train = read_shopee_csv(data_dir / "train.csv", image_policy=image_policy)
    if "label_group" not in train.columns:
        raise DataError(f"{data_dir / 'train.csv'}: no label_group column")
    test_path = data_dir / "test.csv"
    test = read_shopee_csv(test_path, image_policy=image_policy) if test_path.is_file() else None
    return train, test


def fold_assignment(train: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    from ..data.folds import shopee_folds

    return shopee_folds(train, n_folds, seed)["fold"].to_numpy().astype(np.int64)


def _npy(path: Path, array) -> None:
    write_npy(path, np.asarray(array, dtype=np.float32))


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _parse_folds(folds, n_folds: int) -> list[int]:
    if folds in (None, "all"):
        return list(range(n_folds))
    if isinstance(folds, (int, np.integer)):
        folds = [int(folds)]
    chosen = sorted({int(k) for k in folds})
    bad = [k for k in chosen if not 0 <= k < n_folds]
    if bad:
        raise DataError(f"fold(s) {bad} out of range 0..{n_folds - 1}")
    return chosen


def _default_image_policy(kind: str) -> str:
    from . import encoder_class

    return "placeholder" if encoder_class(kind).reads_images else "text-only"


def within_fold_f1(emb: np.ndarray, groups, folds, k: int = 50) -> dict:
    """OOF F1 where each row searches only its own fold (one fold model's space), one threshold.

    Groups never cross folds, so this loses no true match; it avoids comparing vectors of two
    different fold models.
    """
    from ..post.tune import best_row_threshold
    from ..neighbors import knn

    groups, folds = np.asarray(groups), np.asarray(folds)
    rows, cols, sims = [], [], []
    for f in np.unique(folds):
        members = np.flatnonzero(folds == f)
        s, i = knn(emb[members], min(k, len(members)))
        rows.append(np.repeat(members, i.shape[1]))
        cols.append(members[i.ravel()])
        sims.append(s.ravel())
    t, scores = best_row_threshold(np.concatenate(rows), np.concatenate(cols), np.concatenate(sims), groups)
    return {"f1": float(scores.f1), "threshold": t, "precision": float(scores.precision),
            "recall": float(scores.recall)}


def _fold_encoder(config: ExperimentConfig):
    """A fold's starting encoder: every fold starts from the same seed, hence the same weights."""
    from . import create_encoder

    seed_everything(config.train.seed)
    return create_encoder(config.kind, config.encoder_config())


def _run_features(config: ExperimentConfig, encoder, train, test, folder: Path, *, progress: bool) -> dict:
    """The run's frozen-backbone features of train.csv / test.csv (computed by the first caller)."""
    from .frozen import cached_features

    return cached_features(folder / "features", encoder, {"train": train, "test": test},
                           batch_size=config.train.eval_batch_size or 2 * config.train.batch_size,
                           num_workers=config.train.num_workers, amp=config.train.amp, progress=progress)


def _train_fold(config, train, test, fold_of, k: int, folder: Path, *, progress: bool) -> dict:
    """Fit fold k's model, write its OOF / test embeddings and fold.json (last: the fold is done)."""
    from . import load_encoder
    from .frozen import FrozenFeatures, neck_embed

    fold_dir = folder / str(k)
    fold_started = time.time()
    encoder = _fold_encoder(config)
    frozen = config.train.freeze_backbone
    cache = _run_features(config, encoder, train, test, folder, progress=progress) if frozen else None
    features = FrozenFeatures(cache["train"][fold_of != k], cache["train"][fold_of == k]) if frozen else None
    train_part = train[fold_of != k].reset_index(drop=True)
    valid_part = train[fold_of == k].reset_index(drop=True)
    resume = (fold_dir / "checkpoint.json").is_file()
    if progress:
        log.info("fold %d/%d: %d training rows, %d held-out rows%s", k, config.n_folds, len(train_part),
                 len(valid_part), " (resuming)" if resume else "")
    result = fit(encoder, train_part, valid_part, config.train, fold_dir, progress=progress, resume=resume,
                 features=features)
    model = result.encoder if config.checkpoint == "final" else load_encoder(fold_dir / "best")
    batch = config.train.eval_batch_size or 2 * config.train.batch_size

    def embed(frame, part, desc):
        if frozen:  # the saved encoder gives the same vectors; the cache skips its backbone pass
            return neck_embed(model, cache[part] if part == "test" else features.valid)
        return embed_frame(model, frame, batch_size=batch, num_workers=config.train.num_workers,
                           amp=config.train.amp, progress=progress, desc=desc)

    oof_k = embed(valid_part, "valid", f"fold {k} OOF")
    _npy(fold_dir / "oof.npy", oof_k)
    if test is not None:
        _npy(fold_dir / "test.npy", embed(test, "test", f"fold {k} test"))
    scores = validation_f1(oof_k, valid_part["label_group"].to_numpy(), config.train.k)
    summary = {"fold": k, "rows": int(len(valid_part)), "train_rows": int(len(train_part)),
               "n_classes": result.n_classes, "skipped": result.skipped, "checkpoint": config.checkpoint,
               "valid": scores, "best_epoch": result.best_epoch, "best_f1": result.best_f1,
               "history": result.history, "fit_seconds": result.seconds,
               "seconds": round(time.time() - fold_started, 3)}
    write_json(fold_dir / "fold.json", summary)  # written last: the fold is done
    if progress:
        log.info("fold %d: held-out F1 %.4f at threshold %s", k, scores["f1"], scores["threshold"])
    return summary


def fold_threads(n_folds: int, jobs: int, cores: int) -> list[int]:
    """Torch threads per fold, in submission order: the cores split among `jobs` workers, and the
    folds of a last, partial round (5 folds on 2 workers: the fifth) share all the cores instead
    of leaving some idle."""
    full = (n_folds // jobs) * jobs
    last = n_folds - full
    return [max(1, cores // jobs)] * full + [max(1, cores // last)] * last if last else [max(1, cores // jobs)] * n_folds


def _die_with_parent() -> None:
    """Worker initializer: a killed parent takes its fold workers with it (Linux PR_SET_PDEATHSIG);
    else they would train on, unseen, for minutes."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux / no glibc
        pass


def _fold_worker(data_dir, config_dict: dict, k: int, run, image_policy, threads: int) -> int:
    """One fold in a worker process (spawned: a clean torch), `threads` intra-op threads."""
    import multiprocessing

    import torch

    torch.set_num_threads(threads)
    multiprocessing.set_start_method("fork", force=True)  # its DataLoader workers: fork, as in the parent
    config = from_dict(ExperimentConfig, config_dict)
    train, test = load_data(Path(data_dir), image_policy or _default_image_policy(config.kind))
    fold_of = fold_assignment(train, config.n_folds, config.fold_seed)
    _train_fold(config, train, test, fold_of, k, Path(run) / "folds" / config.model_name, progress=False)
    return k


def _train_folds_in_processes(data_dir, config, chosen, run, image_policy, jobs: int, progress: bool):
    """Train `chosen` folds `jobs` at a time in spawned processes; a failed fold raises after the others end."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    jobs = min(int(jobs), len(chosen))
    threads = fold_threads(len(chosen), jobs, available_cores())
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_die_with_parent) as pool:
        futures = [pool.submit(_fold_worker, str(data_dir), to_dict(config), k, str(run), image_policy, t)
                   for k, t in zip(chosen, threads)]
        done = [f.result() for f in tqdm(as_completed(futures), total=len(futures), desc=f"{config.model_name} folds",
                                         unit="fold", disable=not progress)]
    return sorted(done)


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
    chosen = _parse_folds(folds, config.n_folds)
    train, test = load_data(data_dir, image_policy or _default_image_policy(config.kind))
    fold_of = fold_assignment(train, config.n_folds, config.fold_seed)
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
        _run_features(config, _fold_encoder(config), train, test, folder, progress=progress)
    if jobs > 1 and len(chosen) > 1:
        trained = _train_folds_in_processes(data_dir, config, chosen, run, image_policy, jobs, progress)
    else:
        for k in chosen:
            _train_fold(config, train, test, fold_of, k, folder, progress=progress)
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
    from ..store import save_model

    model_dir = save_model(run, name, "dense", oof, rows=rows_table(train, fold_of), test=test_emb, meta=meta)
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
    from ..store import rows_table, save_model
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
    train, test = load_data(data_dir, image_policy or _default_image_policy(kind))
    fold_of = fold_assignment(train, n_folds, fold_seed)

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
    model_dir = save_model(out, name or kind, "dense", oof, rows=rows_table(train, fold_of), test=test_emb, meta=meta)
    return {"run": str(out), "name": name or kind, "model": str(model_dir), "oof": is_oof, "oof_f1": scores["f1"],
            "oof_threshold": scores["threshold"], "seconds": meta["wall_seconds"]}


__all__ = ["ExperimentConfig", "load_experiment", "train_oof", "embed_trained",
           "within_fold_f1"]
