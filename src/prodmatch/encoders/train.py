"""Training of every trainable encoder (image NFNet, text SBERT): a head of heads.py on label_group, on
the shared `training.Engine`, resumable per epoch; output files, schedule, determinism: encoders/README.md."""
from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..config import load_config, to_dict
from ..errors import DataError
from ..io import write_json
from ..training.checkpoint import check_resume, seed_everything
from ..training.engine import Engine, StepPlan, deterministic, epoch_generator
from ..training.optim import build_optimizer
from ..training.schedule import lr_factor  # noqa: F401  (re-exported)
from .frozen import FeatureDataset, FrozenFeatures, neck_embed
from .heads import TripletConfig
from .inference import backbone_features, device_for, embed_frame, make_loader, to_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArcFaceConfig:
    """ArcFace head: scale `s`, margin `m` reached after a linear warm-up from `m_start`."""

    s: float = 30.0
    m: float = 0.5
    m_start: float | None = None  # None: the margin is `m` from the first step
    m_warmup: float = 0.0  # fraction of all optimizer steps over which the margin goes m_start -> m
    easy_margin: bool = False
    ls_eps: float = 0.0  # label smoothing of the one-hot target
    class_size_margin: bool = False  # per-class margins from class sizes (small classes: larger m)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of `fit`; YAML files state only what differs from these defaults."""

    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int | None = None  # None: 2 * batch_size
    lr_backbone: float = 1e-4
    lr_head: float = 1e-3  # neck + ArcFace head: higher than the pretrained backbone's
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.0
    warmup_steps: int | None = None  # overrides warmup_epochs when set
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.01  # cosine floor as a fraction of the peak learning rate
    grad_clip: float | None = 1.0  # clipping value (norm: max global norm; agc: clip factor); None: no clipping
    # "norm": global gradient-norm clipping; "agc": adaptive gradient clipping (NFNet, Brock et al.
    # 2021: each unit's gradient clipped relative to its weight norm; timm's adaptive_clip_grad)
    clip_mode: Literal["norm", "agc"] = "norm"
    accumulate: int = 1  # micro-batches per optimizer step
    amp: bool = True  # autocast (bf16 where supported, else fp16 + loss scaling); CUDA only
    channels_last: bool = True  # image models on CUDA only
    seed: int = 0
    num_workers: int = 0
    deterministic: bool = True  # torch.use_deterministic_algorithms during fit on CPU (warn_only)
    k: int = 50  # neighbours searched for the validation F1
    max_steps_per_epoch: int | None = None  # cap on micro-batches per epoch (tests, smoke runs)
    save_checkpoints: bool = True  # per-epoch resume checkpoint (weights + optimizer); off saves disk
    freeze_backbone: bool = False  # train neck + head on backbone features computed once (encoders/frozen.py)
    head: str = "arcface"  # the training loss (`encoders.heads`): arcface, softmax, triplet
    arcface: ArcFaceConfig = field(default_factory=ArcFaceConfig)
    triplet: TripletConfig = field(default_factory=TripletConfig)


@dataclass
class FitResult:
    """What `fit` did: the trained encoder (in memory, last epoch) and the per-epoch history."""

    encoder: object
    out_dir: Path
    history: list[dict]
    best_epoch: int | None
    best_f1: float
    best_threshold: float | None
    n_classes: int
    skipped: int
    steps: int
    seconds: float

    @property
    def final_f1(self) -> float:
        return self.history[-1]["f1"] if self.history else float("nan")


# --------------------------------------------------------------------------------------- helpers


def encode_labels(groups) -> tuple[np.ndarray, np.ndarray]:
    """(classes, codes): label_group values mapped to 0..C-1 in sorted order."""
    classes, codes = np.unique(np.asarray(groups), return_inverse=True)
    return classes, codes.astype(np.int64)


def validation_f1(emb: np.ndarray, groups, k: int = 50) -> dict:
    """Mean row-F1 of the held-out rows searched among themselves, at their best threshold."""
    from ..post.tune import best_row_threshold
    from ..neighbors import knn

    groups = np.asarray(groups)
    if len(groups) < 2:
        return {"f1": float("nan"), "threshold": None, "precision": float("nan"), "recall": float("nan")}
    sims, idx = knn(emb, min(k, len(groups)))
    rows = np.repeat(np.arange(len(groups)), idx.shape[1])
    t, scores = best_row_threshold(rows, idx.ravel(), sims.ravel(), groups)
    return {"f1": float(scores.f1), "threshold": t, "precision": float(scores.precision), "recall": float(scores.recall)}


# ----------------------------------------------------------------------------------- checkpoints


def _save_encoder_atomic(encoder, folder: Path) -> None:
    """save_encoder into a temp folder, then swap it in: `folder` is always complete or absent."""
    from . import save_encoder

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    save_encoder(encoder, tmp)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------ fit


def fit(encoder, train_frame: pd.DataFrame, valid_frame: pd.DataFrame | None, config, out_dir, *,
        progress: bool = True, resume: bool = False, features=None) -> FitResult:
    """Train `encoder` with ArcFace on `train_frame`'s label groups; see encoders/README.md.

    With ``config.freeze_backbone`` only the neck and head train, on backbone features computed
    once: `features` (a `FrozenFeatures` of both frames, e.g. a run's cache) or, when None, here.

    `valid_frame` (labelled, groups disjoint from training) is embedded after every epoch and
    scored by mean row-F1 at its best threshold; None skips validation. `out_dir` must not hold a
    checkpoint unless ``resume=True`` (then training continues after its last completed epoch, if
    there is one; the data and config must be the same, else DataError).
    """
    import torch

    from .heads import make_head, pk_batches

    config = load_config(config, TrainConfig)
    _check_config(config)
    out_dir = Path(out_dir)
    if "label_group" not in train_frame.columns:
        raise DataError("training needs label_group")
    classes, codes = encode_labels(train_frame["label_group"].to_numpy())
    if len(classes) < 2:
        raise DataError(f"the training frame has {len(classes)} label group(s); ArcFace needs at least 2")
    if valid_frame is not None and len(valid_frame) and "label_group" not in valid_frame.columns:
        raise DataError("validation needs label_group")
    existing = check_resume(out_dir, resume, {"n_classes": len(classes), "config": to_dict(config)})

    started = time.time()
    device = device_for()
    with deterministic(config.deterministic, device):
        seed_everything(config.seed)
        encoder.to(device)
        channels_last = config.channels_last and encoder.reads_images and device.type == "cuda"
        if channels_last:
            encoder.to(memory_format=torch.channels_last)

        class_margins = None
        if config.arcface.class_size_margin:
            from .arcface import class_size_margins

            class_margins = class_size_margins(np.bincount(codes, minlength=len(classes)))
        head = make_head(config.head, int(encoder.dim), len(classes), config, class_margins).to(device)

        frozen = config.freeze_backbone
        groups = encoder.param_groups()
        backbone = [] if frozen else groups.get("backbone", [])
        neck = list(encoder.neck.parameters()) if frozen else groups.get("neck", [])
        optimizer = build_optimizer([("backbone", backbone, config.lr_backbone),
                                     ("head", [*neck, *head.parameters()], config.lr_head)], config.weight_decay)

        dataset = encoder.dataset(train_frame, train=True, labels=codes)
        skipped = int(getattr(dataset, "skipped", 0))
        eval_bs = config.eval_batch_size or 2 * config.batch_size
        has_valid = valid_frame is not None and len(valid_frame) > 0
        if frozen:
            features = _frozen_features(encoder, train_frame, valid_frame if has_valid else None, features,
                                        batch_size=eval_bs, config=config, device=device, progress=progress)
            kept = np.asarray(getattr(dataset, "rows", np.arange(len(train_frame))), dtype=np.int64)
            undecodable = _placeholder_rows(encoder, features.train[kept], device)
            if undecodable.any():  # passed the header check, drawn as the placeholder: nothing to learn
                log.warning("%d training image(s) do not decode, skipped", int(undecodable.sum()))
                skipped += int(undecodable.sum())
                kept = kept[~undecodable]
            dataset = FeatureDataset(features.train[kept], codes[kept])
        forward = encoder.neck if frozen else encoder
        collate = FeatureDataset.collate if frozen else None
        if skipped:
            log.warning("%d training row(s) skipped (unreadable images)", skipped)
        if len(dataset) < 2:
            raise DataError(f"{len(dataset)} usable training row(s); need at least 2")
        batch_size = min(config.batch_size, len(dataset))
        # BatchNorm in the neck cannot train on a batch of one: drop a ragged last batch.
        drop_last = len(dataset) > batch_size
        n_batches = len(dataset) // batch_size if drop_last else math.ceil(len(dataset) / batch_size)
        row_labels = codes[np.asarray(getattr(dataset, "rows", np.arange(len(dataset))), dtype=np.int64)] \
            if not frozen else dataset.labels
        if head.pk_batches:  # every row needs positives in its batch: whole class chunks per batch
            # the packing count varies a little with each epoch's order: every epoch runs the fewest, so
            # the schedule's step count holds and an accumulation window never ends half-filled
            n_batches = min(len(pk_batches(row_labels, batch_size, config.triplet.per_class, epoch_generator(config.seed, e)))
                            for e in range(config.epochs))
            if not n_batches:
                raise DataError("the triplet head needs label groups with at least 2 training rows")
        if config.max_steps_per_epoch:
            n_batches = min(n_batches, config.max_steps_per_epoch)
        steps_per_epoch = math.ceil(n_batches / config.accumulate)
        total_steps = steps_per_epoch * config.epochs
        warmup = config.warmup_steps if config.warmup_steps is not None else round(config.warmup_epochs * steps_per_epoch)
        head_ids = {id(p) for p in head.parameters()}
        trained = [p for g in optimizer.param_groups for p in g["params"]]
        engine = Engine(optimizer, StepPlan(total=total_steps, warmup=warmup, schedule=config.schedule,
                                            floor=config.min_lr_ratio, accumulate=config.accumulate,
                                            grad_clip=config.grad_clip, clip_mode=config.clip_mode, amp=config.amp),
                        device, clipped=[p for p in trained if id(p) not in head_ids],
                        unclipped=[p for p in trained if id(p) in head_ids],
                        on_window=lambda step: head.set_progress(step / max(1, total_steps)))
        modules = {"encoder": encoder, "head": head}

        start_epoch, history = 0, []
        best = {"f1": -1.0, "epoch": None, "threshold": None}
        if existing is not None:
            info = engine.resume(out_dir, modules)
            start_epoch, history, best = info["epoch"], info["history"], info["best"]
            log.info("resuming %s after epoch %d (step %d)", out_dir, start_epoch, engine.step)

        def batch_loss(batch):
            batch, labels = _usable_rows(*batch)
            if len(labels) < 2:  # BatchNorm needs two rows; nothing to learn from this batch
                return None
            return head.loss(forward(to_device(batch, device, channels_last)), labels.to(device))

        valid_groups = valid_frame["label_group"].to_numpy() if has_valid else None
        for epoch in range(start_epoch, config.epochs):
            epoch_started = time.time()
            encoder.train()
            head.train()
            batches = pk_batches(row_labels, batch_size, config.triplet.per_class,
                                 epoch_generator(config.seed, epoch)) if head.pk_batches else None
            loader = make_loader(encoder, dataset, batch_size, shuffle=True, generator=epoch_generator(config.seed, epoch),
                                 num_workers=config.num_workers, drop_last=drop_last, collate=collate, batches=batches)
            losses = engine.run_epoch(loader, batch_loss, n_batches, desc=f"epoch {epoch + 1}/{config.epochs}",
                                      progress=progress)
            record = {"epoch": epoch + 1, "step": engine.step, "loss": float(np.mean(losses)) if losses else float("nan"),
                      "lr_head": engine.lr(-1), "lr_backbone": engine.lr(0), "margin": head.margin}
            if valid_groups is not None:
                if frozen:
                    emb = neck_embed(encoder, features.valid, device=device)
                else:
                    emb = embed_frame(encoder, valid_frame, batch_size=eval_bs, num_workers=config.num_workers,
                                      device=device, amp=config.amp, progress=False)
                record.update(validation_f1(emb, valid_groups, config.k))
            else:
                record.update({"f1": float("nan"), "threshold": None})
            record["seconds"] = round(time.time() - epoch_started, 3)
            history.append(record)
            f1 = record["f1"]
            if valid_groups is not None and f1 == f1 and f1 > best["f1"]:
                best = {"f1": f1, "epoch": epoch + 1, "threshold": record["threshold"]}
                _save_encoder_atomic(encoder, out_dir / "best")
            if progress:
                log.info("epoch %d/%d: loss %.4f, valid F1 %.4f (t=%s), %.1f s", epoch + 1, config.epochs,
                         record["loss"], f1, record["threshold"], record["seconds"])
            if config.save_checkpoints:
                engine.save(out_dir, modules, {"epoch": epoch + 1, "history": history, "best": best,
                                               "n_classes": len(classes), "config": to_dict(config),
                                               "total_steps": total_steps})
            write_json(out_dir / "history.json", history)
        _save_encoder_atomic(encoder, out_dir / "final")
    return FitResult(encoder=encoder, out_dir=out_dir, history=history, best_epoch=best["epoch"],
                     best_f1=best["f1"] if best["epoch"] else float("nan"), best_threshold=best["threshold"],
                     n_classes=len(classes), skipped=skipped, steps=engine.step, seconds=round(time.time() - started, 3))


def _placeholder_rows(encoder, features: np.ndarray, device) -> np.ndarray:
    """Rows whose cached features are the encoder's placeholder input's (an image that failed to
    decode when the features were computed); none for encoders without a placeholder."""
    import torch

    placeholder = getattr(encoder, "placeholder_input", lambda: None)()
    if placeholder is None or not len(features):
        return np.zeros(len(features), bool)
    was_training = encoder.training
    encoder.eval()
    with torch.inference_mode():
        ref = encoder.features(to_device(placeholder, device)).float().cpu().numpy()[0]
    encoder.train(was_training)
    return np.all(np.abs(np.asarray(features) - ref) <= 1e-4 * (1.0 + np.abs(ref)), axis=1)


def _usable_rows(batch, labels):
    """The batch without rows labelled < 0 (images that failed to decode: `image.UNREADABLE`)."""
    keep = labels >= 0
    if bool(keep.all()):
        return batch, labels
    if isinstance(batch, dict):
        return {k: v[keep] for k, v in batch.items()}, labels[keep]
    return batch[keep], labels[keep]


def _frozen_features(encoder, train_frame, valid_frame, given, *, batch_size: int, config: TrainConfig, device,
                     progress: bool):
    """`given` checked against the frames, or both frames' backbone features computed now."""
    if given is None:
        def compute(frame, desc):
            return backbone_features(encoder, frame, batch_size=batch_size, num_workers=config.num_workers,
                                     device=device, amp=config.amp, progress=progress, desc=desc)

        given = FrozenFeatures(compute(train_frame, "train features"),
                               None if valid_frame is None else compute(valid_frame, "valid features"))
    given.check(len(train_frame), None if valid_frame is None else len(valid_frame))
    return given


def _check_config(config: TrainConfig) -> None:
    from .heads import HEADS

    HEADS.get(config.head, where="train config")
    checks = [
        (config.epochs >= 1, "epochs must be >= 1"),
        (config.batch_size >= 2, "batch_size must be >= 2 (BatchNorm in the neck)"),
        (config.accumulate >= 1, "accumulate must be >= 1"),
        (config.lr_backbone >= 0 and config.lr_head > 0, "learning rates must be positive"),
        (config.max_steps_per_epoch is None or config.max_steps_per_epoch >= 1, "max_steps_per_epoch must be >= 1"),
        (config.arcface.s > 0, "arcface.s must be positive"),
        (config.k >= 2, "k must be >= 2"),
        (config.triplet.per_class >= 2 and config.triplet.margin >= 0,
         "triplet.per_class must be >= 2 and triplet.margin >= 0"),
        (config.clip_mode == "norm" or bool(config.grad_clip), "clip_mode agc needs a grad_clip factor (e.g. 0.01)"),
    ]
    for ok, message in checks:
        if not ok:
            raise DataError(f"train config: {message}")


__all__ = ["ArcFaceConfig", "TrainConfig", "FitResult", "fit", "validation_f1", "encode_labels", "lr_factor",
           "seed_everything"]
