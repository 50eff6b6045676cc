"""Training of the pair models (cross-encoder, two-tower) on the shared `training.Engine`: best
checkpoint by validation pair F1, optional per-epoch resume; output files: pairs/README.md."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..config import load_config, to_dict
from ..backbones import batch_to
from ..errors import DataError
from ..io import write_json
from ..metrics import best_pair_threshold
from ..saved_model import WEIGHTS_FILE, load_weights, read_manifest, save_model
from ..training.checkpoint import check_resume, seed_everything
from ..training.engine import Engine, StepPlan, deterministic
from ..training.optim import CLIP_MODES, build_optimizer
from .base import ASSETS, PairModel, build_pair_model, pair_model_config
from .inference import _device, predict_pairs  # noqa: F401  (predict_pairs: re-exported)
from .losses import LOSSES, make_loss
from .pvs import pair_frame  # noqa: F401  (re-export)

log = logging.getLogger(__name__)

MODEL_JSON = "pair_model.json"
WEIGHTS = WEIGHTS_FILE
LEGACY_LOSS_KEYS = ("loss", "margin")  # pair_model.json configs before the loss moved to PairTrainConfig


@dataclass(frozen=True)
class PairTrainConfig:
    """Training settings (see pairs/README.md, "Training loop"). `loss`: a `pairs.losses` entry
    (ce, bce, cosine-embedding, hinge), `margin` its margin (None: the loss's default)."""

    epochs: int = 1
    batch_size: int = 16
    lr_backbone: float = 3e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    schedule: Literal["linear", "cosine"] = "linear"
    grad_clip: float = 1.0  # 0: off
    clip_mode: Literal["norm", "agc"] = "norm"
    loss: str = "ce"
    margin: float | None = None
    max_steps: int = 0  # 0: epochs * batches per epoch
    eval_every: int = 0  # optimizer steps; 0: once per epoch
    eval_batch_size: int = 64
    amp: bool = True  # autocast on CUDA (bf16 where supported, else fp16 + loss scaling); no effect on CPU
    deterministic: bool = True  # torch.use_deterministic_algorithms during fit on CPU (warn_only)
    save_checkpoints: bool = False  # per-epoch resume checkpoint (weights + Adam moments: ~3x the model)
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise DataError("PairTrainConfig: epochs, batch_size and eval_batch_size must be >= 1")
        if not 0.0 <= self.warmup < 1.0 or self.max_steps < 0 or self.eval_every < 0:
            raise DataError("PairTrainConfig: need 0 <= warmup < 1, max_steps >= 0, eval_every >= 0")
        LOSSES.get(self.loss, where="PairTrainConfig")
        if self.clip_mode not in CLIP_MODES or (self.clip_mode == "agc" and not self.grad_clip):
            raise DataError(f"PairTrainConfig: clip_mode one of {', '.join(CLIP_MODES)}; agc needs a grad_clip factor")


@dataclass
class PairFitResult:
    best_f1: float
    best_threshold: float
    best_step: int
    steps: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    best_dir: Path | None = None


def _labels(pairs: pd.DataFrame, what: str) -> np.ndarray:
    if "item_label" not in pairs.columns:
        raise DataError(f"{what}: no item_label column; labelled pairs are needed")
    labels = pd.to_numeric(pairs["item_label"], errors="coerce")
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise DataError(f"{what}: item_label must be 0 or 1")
    return labels.to_numpy(np.int64)


def _resume_key(config: PairTrainConfig) -> dict:
    """The settings a resumed run must share with the checkpoint's (all but the progress bar)."""
    return {k: v for k, v in to_dict(config).items() if k != "progress"}


def save_pair_model(model: PairModel, folder, info: dict | None = None) -> Path:
    """Write ``model.safetensors``, ``backbone/`` and ``pair_model.json`` (config + `info`)."""
    return save_model(model, folder, MODEL_JSON, {"info": info or {}})


def read_pair_model_info(folder) -> dict:
    """The ``pair_model.json`` of a saved pair model (config, info)."""
    return read_manifest(folder, MODEL_JSON, "pair model")


def load_pair_model(folder, device: str | torch.device = "cpu") -> PairModel:
    """A pair model saved by `save_pair_model` / `fit_pair_model` (``out_dir/best``), in eval mode."""
    folder = Path(folder)
    saved = dict(read_pair_model_info(folder)["config"])
    for key in LEGACY_LOSS_KEYS:
        saved.pop(key, None)
    assets = folder / ASSETS
    model = build_pair_model(pair_model_config(saved), pretrained=False, assets=assets if assets.is_dir() else None)
    return load_weights(model, folder).to(device)


def fit_pair_model(model: PairModel, train_pairs: pd.DataFrame, valid_pairs: pd.DataFrame | None,
                   config: PairTrainConfig | dict | str, out_dir, *, resume: bool = False) -> PairFitResult:
    """Train `model` on labelled pair frames; keep and save the weights of the best valid F1.

    With ``save_checkpoints`` every epoch leaves a resume checkpoint; ``resume=True`` continues
    after its last completed epoch and reaches the weights an uninterrupted run would."""
    config = load_config(config, PairTrainConfig)
    loss_fn = make_loss(config.loss, config.margin)
    loss_fn.check(model.config)
    if len(train_pairs) == 0:
        raise DataError("fit_pair_model: no training pairs")
    y_train = _labels(train_pairs, "training pairs")
    y_valid = None
    if valid_pairs is not None and len(valid_pairs):
        y_valid = _labels(valid_pairs, "validation pairs")
    out_dir = Path(out_dir)
    existing = check_resume(out_dir, resume, {"config": _resume_key(config)})
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = model.prepare(train_pairs)
    if prepared.get("added_tokens"):
        log.info("pair model: %d characters the tokenizer maps to [UNK] added as tokens", len(prepared["added_tokens"]))
    write_json(out_dir / "train_config.json", {"train": to_dict(config), "model": to_dict(model.config), **prepared})

    device = _device(model)
    with deterministic(config.deterministic, device):
        seed_everything(config.seed)
        n = len(train_pairs)
        per_epoch = math.ceil(n / config.batch_size)
        total = per_epoch * config.epochs
        if config.max_steps:
            total = min(total, config.max_steps)
        groups = [(name, params, config.lr_backbone if name == "backbone" else config.lr_head)
                  for name, params in model.param_groups().items()]
        engine = Engine(build_optimizer(groups, config.weight_decay, exempt_1d=True),
                        StepPlan(total=total, warmup=int(round(config.warmup * total)), schedule=config.schedule,
                                 grad_clip=config.grad_clip, clip_mode=config.clip_mode, amp=config.amp),
                        device, clipped=list(model.parameters()))
        eval_every = config.eval_every or per_epoch
        modules = {"model": model.to(device)}

        history: list[dict] = []
        best = {"f1": -1.0, "threshold": float("nan"), "step": 0}
        running = {"loss": 0.0, "seen": 0}
        best_dir = out_dir / "best"
        started = time.time()
        start_epoch = 0
        if existing is not None:
            info = engine.resume(out_dir, modules)
            start_epoch, history, best, running = info["epoch"], info["history"], info["best"], info["running"]
            log.info("resuming %s after epoch %d (step %d)", out_dir, start_epoch, engine.step)

        def evaluate(epoch: int) -> None:
            record = {"step": engine.step, "epoch": epoch, "train_loss": running["loss"] / max(running["seen"], 1),
                      "lr_backbone": engine.lr(0), "seconds": round(time.time() - started, 2)}
            running.update(loss=0.0, seen=0)
            if y_valid is not None:
                scores = predict_pairs(model, valid_pairs, config.eval_batch_size)
                t, s = best_pair_threshold(y_valid, scores)
                record.update(valid_f1=s.f1, valid_precision=s.precision, valid_recall=s.recall, threshold=t)
                better = s.f1 > best["f1"]
            else:
                t, better = float("nan"), True
                record.update(valid_f1=float("nan"))
            history.append(record)
            log.info("pair model step %d: %s", engine.step, record)
            if better:
                best.update(f1=record["valid_f1"], threshold=t, step=engine.step)
                save_pair_model(model, best_dir, {"valid_f1": record["valid_f1"], "threshold": t, "step": engine.step,
                                                  "epoch": epoch, "train": to_dict(config)})
            write_json(out_dir / "history.json", history)

        def epoch_batches(epoch: int):
            gen = np.random.default_rng([config.seed, epoch])
            order = gen.permutation(n)
            swaps = gen.random(n) < model.config.swap_prob
            for start in range(0, n, config.batch_size):
                idx = order[start:start + config.batch_size]
                yield idx, swaps[idx]

        def batch_loss(batch) -> torch.Tensor:
            idx, swap = batch
            loss = loss_fn(model(batch_to(model.encode(train_pairs.iloc[idx], swap), device)),
                           torch.as_tensor(y_train[idx], device=device))
            running["loss"] += float(loss.detach()) * len(idx)
            running["seen"] += len(idx)
            return loss

        model.train()
        for epoch in range(start_epoch, config.epochs):
            if engine.done:
                break

            def after_step(epoch=epoch) -> None:
                if engine.step % eval_every == 0 or engine.done:
                    evaluate(epoch)

            engine.run_epoch(epoch_batches(epoch), batch_loss, per_epoch, desc=f"fit {model.kind} {epoch + 1}/{config.epochs}",
                             progress=config.progress, after_step=after_step)
            if config.save_checkpoints:
                engine.save(out_dir, modules, {"epoch": epoch + 1, "history": history, "best": best,
                                               "running": running, "config": _resume_key(config)})
        if not history or history[-1]["step"] != engine.step:
            evaluate(config.epochs - 1)
        training = model.training
        load_weights(model, best_dir).train(training)
    return PairFitResult(best_f1=float(best["f1"]), best_threshold=float(best["threshold"]), best_step=int(best["step"]),
                         steps=engine.step, seconds=time.time() - started, history=history, best_dir=best_dir)
