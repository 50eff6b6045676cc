"""The training / inference loop of the pair models (cross-encoder, two-tower): best checkpoint by
validation pair F1, deterministic on CPU; output files, schedule, determinism: pairs/README.md."""
from __future__ import annotations

import json
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
from ..encoders.base import batch_to
from ..encoders.checkpoint import seed_everything
from ..encoders.train import lr_factor
from ..encoders.weights import export_state, load_state, read_state_dict
from ..errors import DataError
from ..io import atomic_path, write_json
from ..metrics import best_pair_threshold
from .base import ASSETS, PairModel, PairModelConfig, build_pair_model
from .inference import _device, predict_pairs  # noqa: F401  (predict_pairs: re-exported)
from .pvs import pair_frame  # noqa: F401  (re-export)

log = logging.getLogger(__name__)

MODEL_JSON = "pair_model.json"
WEIGHTS = "model.safetensors"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PairTrainConfig:
    """Training loop settings (see pairs/README.md, "Training loop")."""

    epochs: int = 1
    batch_size: int = 16
    lr_backbone: float = 3e-5
    lr_head: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    schedule: Literal["linear", "cosine"] = "linear"
    grad_clip: float = 1.0
    max_steps: int = 0  # 0: epochs * batches per epoch
    eval_every: int = 0  # optimizer steps; 0: once per epoch
    eval_batch_size: int = 64
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise DataError("PairTrainConfig: epochs, batch_size and eval_batch_size must be >= 1")
        if not 0.0 <= self.warmup < 1.0 or self.max_steps < 0 or self.eval_every < 0:
            raise DataError("PairTrainConfig: need 0 <= warmup < 1, max_steps >= 0, eval_every >= 0")


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


def _optimizer(model: PairModel, config: PairTrainConfig) -> torch.optim.Optimizer:
    groups = []
    for name, params in model.param_groups().items():
        lr = config.lr_backbone if name == "backbone" else config.lr_head
        decay = [p for p in params if p.requires_grad and p.ndim > 1]
        no_decay = [p for p in params if p.requires_grad and p.ndim <= 1]
        groups.append({"params": decay, "lr": lr, "base_lr": lr, "weight_decay": config.weight_decay})
        groups.append({"params": no_decay, "lr": lr, "base_lr": lr, "weight_decay": 0.0})
    return torch.optim.AdamW([g for g in groups if g["params"]])


def save_pair_model(model: PairModel, folder, info: dict | None = None) -> Path:
    """Write ``pair_model.json`` (config + `info`), ``model.safetensors`` and ``backbone/``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_assets(folder)
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(export_state(model), str(tmp), metadata={"format": str(FORMAT_VERSION), "kind": model.kind})
    write_json(folder / MODEL_JSON, {"format": FORMAT_VERSION, "kind": model.kind,
                                     "config": to_dict(model.config), "info": info or {}})
    return folder


def read_pair_model_info(folder) -> dict:
    """The ``pair_model.json`` of a saved pair model (config, info)."""
    path = Path(folder) / MODEL_JSON
    if not path.is_file():
        raise DataError(f"{folder}: no {MODEL_JSON}; not a saved pair model")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise DataError(f"{path}: pair model format {meta.get('format')!r}, this version reads {FORMAT_VERSION}")
    return meta


def load_pair_model(folder, device: str | torch.device = "cpu") -> PairModel:
    """A pair model saved by `save_pair_model` / `fit_pair_model` (``out_dir/best``), in eval mode."""
    folder = Path(folder)
    meta = read_pair_model_info(folder)
    config = load_config(meta["config"], PairModelConfig)
    assets = folder / ASSETS
    model = build_pair_model(config, pretrained=False, assets=assets if (assets / "config.json").is_file() else None)
    load_state(model, read_state_dict(folder / WEIGHTS), what=str(folder / WEIGHTS))
    return model.to(device).eval()


def fit_pair_model(model: PairModel, train_pairs: pd.DataFrame, valid_pairs: pd.DataFrame | None,
                   config: PairTrainConfig | dict | str, out_dir) -> PairFitResult:
    """Train `model` on labelled pair frames; keep and save the weights of the best valid F1."""
    from tqdm.auto import tqdm

    config = load_config(config, PairTrainConfig)
    if len(train_pairs) == 0:
        raise DataError("fit_pair_model: no training pairs")
    y_train = _labels(train_pairs, "training pairs")
    y_valid = None
    if valid_pairs is not None and len(valid_pairs):
        y_valid = _labels(valid_pairs, "validation pairs")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    added = model.extend_vocabulary(text for side in model.sides(train_pairs, None) for text in side) \
        if model.config.extend_vocab else []
    if added:
        log.info("pair model: %d characters the tokenizer maps to [UNK] added as tokens", len(added))
    write_json(out_dir / "train_config.json", {"train": to_dict(config), "model": to_dict(model.config),
                                               "added_tokens": added})

    seed_everything(config.seed)
    device = _device(model)
    n = len(train_pairs)
    per_epoch = math.ceil(n / config.batch_size)
    total = per_epoch * config.epochs
    if config.max_steps:
        total = min(total, config.max_steps)
    warmup_steps = int(round(config.warmup * total))
    optimizer = _optimizer(model, config)
    eval_every = config.eval_every or per_epoch

    history: list[dict] = []
    best = {"f1": -1.0, "threshold": float("nan"), "step": 0}
    best_dir = out_dir / "best"
    started = time.time()
    step, running, seen = 0, 0.0, 0

    def evaluate(epoch: int) -> None:
        nonlocal running, seen
        record = {"step": step, "epoch": epoch, "train_loss": running / max(seen, 1),
                  "lr_backbone": optimizer.param_groups[0]["lr"], "seconds": round(time.time() - started, 2)}
        running, seen = 0.0, 0
        if y_valid is not None:
            scores = predict_pairs(model, valid_pairs, config.eval_batch_size)
            t, s = best_pair_threshold(y_valid, scores)
            record.update(valid_f1=s.f1, valid_precision=s.precision, valid_recall=s.recall, threshold=t)
            better = s.f1 > best["f1"]
        else:
            t, better = float("nan"), True
            record.update(valid_f1=float("nan"))
        history.append(record)
        log.info("pair model step %d: %s", step, record)
        if better:
            best.update(f1=record["valid_f1"], threshold=t, step=step)
            save_pair_model(model, best_dir, {"valid_f1": record["valid_f1"], "threshold": t, "step": step,
                                              "epoch": epoch, "train": to_dict(config)})
        write_json(out_dir / "history.json", history)

    model.train()
    bar = tqdm(total=total, disable=not config.progress, desc=f"fit {model.kind}")
    for epoch in range(config.epochs):
        if step >= total:
            break
        gen = np.random.default_rng([config.seed, epoch])
        order = gen.permutation(n)
        swaps = gen.random(n) < model.config.swap_prob
        for start in range(0, n, config.batch_size):
            if step >= total:
                break
            idx = order[start:start + config.batch_size]
            batch = train_pairs.iloc[idx]
            inputs = batch_to(model.encode(batch, swaps[idx]), device)
            labels = torch.as_tensor(y_train[idx], device=device)
            factor = lr_factor(step, total, warmup_steps, config.schedule)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            loss = model.loss(model(inputs), labels)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"pair model loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            running += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            if step % eval_every == 0 or step == total:
                evaluate(epoch)
    bar.close()
    if not history or history[-1]["step"] != step:
        evaluate(config.epochs - 1)

    best_state = read_state_dict(best_dir / WEIGHTS)
    load_state(model, best_state, what=str(best_dir / WEIGHTS))
    return PairFitResult(best_f1=float(best["f1"]), best_threshold=float(best["threshold"]), best_step=int(best["step"]),
                         steps=step, seconds=time.time() - started, history=history, best_dir=best_dir)
