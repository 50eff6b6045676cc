"""One fold of an OOF run: train its encoder, write its held-out and test embeddings, and the worker
processes that train folds side by side."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from ..config import from_dict, to_dict
from ..io import write_json, write_npy
from ..resources import available_cores
from ..training.checkpoint import seed_everything
from ..data.folds import shopee_fold_ids
from ..data.shopee import load_shopee
from .experiment import ExperimentConfig, default_image_policy
from .inference import embed_frame
from .train import fit, validation_f1

log = logging.getLogger(__name__)


def _npy(path: Path, array) -> None:
    write_npy(path, np.asarray(array, dtype=np.float32))


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


def fold_encoder(config: ExperimentConfig):
    """A fold's starting encoder: every fold starts from the same seed, hence the same weights."""
    from . import create_encoder

    seed_everything(config.train.seed)
    return create_encoder(config.kind, config.encoder_config())


def run_features(config: ExperimentConfig, encoder, train, test, folder: Path, *, progress: bool) -> dict:
    """The run's frozen-backbone features of train.csv / test.csv (computed by the first caller)."""
    from .frozen import cached_features

    return cached_features(folder / "features", encoder, {"train": train, "test": test},
                           batch_size=config.train.eval_batch_size or 2 * config.train.batch_size,
                           num_workers=config.train.num_workers, amp=config.train.amp, progress=progress)


def train_fold(config, train, test, fold_of, k: int, folder: Path, *, progress: bool) -> dict:
    """Fit fold k's model, write its OOF / test embeddings and fold.json (last: the fold is done)."""
    from . import load_encoder
    from .frozen import FrozenFeatures, neck_embed

    fold_dir = folder / str(k)
    fold_started = time.time()
    encoder = fold_encoder(config)
    frozen = config.train.freeze_backbone
    cache = run_features(config, encoder, train, test, folder, progress=progress) if frozen else None
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
    train, test = load_shopee(Path(data_dir), image_policy or default_image_policy(config.kind))
    fold_of = shopee_fold_ids(train, config.n_folds, config.fold_seed)
    train_fold(config, train, test, fold_of, k, Path(run) / "folds" / config.model_name, progress=False)
    return k


def train_folds_in_processes(data_dir, config, chosen, run, image_policy, jobs: int, progress: bool):
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
