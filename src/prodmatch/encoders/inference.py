"""Batched, gradient-free encoder passes: embeddings and pooled backbone features of a frame.

Shared by training (validation, frozen-backbone caches), `embed` and predict; apart from the
training loop so that inference never imports it.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ..layers import autocast_for, device_for  # noqa: F401  (re-exported for the trainer)

log = logging.getLogger(__name__)


def make_loader(encoder, dataset, batch_size: int, *, shuffle: bool, generator=None, num_workers: int = 0,
                drop_last: bool = False, collate=None, batches=None):
    """A DataLoader over `dataset` with the encoder's collate; `batches` (lists of row indices)
    replaces batch_size / shuffle / drop_last (class-balanced batches for the triplet head)."""
    import torch
    from torch.utils.data import DataLoader

    if batches is not None:
        return DataLoader(dataset, batch_sampler=[np.asarray(b).tolist() for b in batches], collate_fn=collate or encoder.collate, num_workers=num_workers,
                          pin_memory=torch.cuda.is_available(), persistent_workers=False)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=collate or encoder.collate,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )


def to_device(batch, device, channels_last: bool = False):
    import torch

    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.ndim == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, dict):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, channels_last) for v in batch)
    if hasattr(batch, "to"):  # e.g. a transformers BatchEncoding
        return batch.to(device)
    return batch


def _infer(encoder, frame: pd.DataFrame, outputs, *, batch_size: int, num_workers: int, device, amp: bool,
           progress: bool, desc: str) -> np.ndarray:
    """float32 ``outputs(batch)`` of every row of `frame`, batched, no gradients (inference_mode;
    autocast when `amp` and on CUDA). Rows the evaluation dataset does not keep (it should keep
    all: unreadable images get a placeholder) come back as zero vectors, with a warning."""
    import torch
    from tqdm.auto import tqdm

    device = device or device_for()
    encoder.to(device)
    was_training = encoder.training
    encoder.eval()
    dataset = encoder.dataset(frame, train=False, labels=None)
    loader = make_loader(encoder, dataset, batch_size, shuffle=False, num_workers=num_workers)
    channels_last = device.type == "cuda" and encoder.reads_images
    context, _ = autocast_for(device, amp)
    parts = []
    try:
        with torch.inference_mode(), context:
            for batch, _labels in tqdm(loader, desc=desc, disable=not progress, leave=False):
                parts.append(outputs(to_device(batch, device, channels_last)).float().cpu())
    finally:
        encoder.train(was_training)
    out = torch.cat(parts).numpy().astype(np.float32) if parts else np.zeros((0, 0), np.float32)
    rows = np.asarray(getattr(dataset, "rows", np.arange(len(frame))), dtype=np.int64)
    if len(rows) == len(frame) and np.array_equal(rows, np.arange(len(frame))):
        return out
    log.warning("%d of %d rows were not embedded (zero vectors)", len(frame) - len(rows), len(frame))
    full = np.zeros((len(frame), out.shape[1]), np.float32)
    full[rows] = out
    return full


def embed_frame(encoder, frame: pd.DataFrame, *, batch_size: int = 64, num_workers: int = 0,
                device=None, amp: bool = True, progress: bool = False, desc: str = "embed") -> np.ndarray:
    """L2-normalised float32 embeddings ``(len(frame), dim)`` of every row (see `_infer`)."""
    import torch

    emb = _infer(encoder, frame, lambda batch: torch.nn.functional.normalize(encoder(batch).float(), dim=1),
                 batch_size=batch_size, num_workers=num_workers, device=device, amp=amp, progress=progress, desc=desc)
    return emb if emb.size else np.zeros((len(frame), int(getattr(encoder, "dim", 0))), np.float32)


def backbone_features(encoder, frame: pd.DataFrame, *, batch_size: int = 64, num_workers: int = 0,
                      device=None, amp: bool = True, progress: bool = False, desc: str = "features") -> np.ndarray:
    """The pooled backbone outputs ``(len(frame), C)`` the neck sees, unnormalised, without
    augmentation: what ``freeze_backbone`` training caches once instead of recomputing per epoch."""
    return _infer(encoder, frame, encoder.features, batch_size=batch_size, num_workers=num_workers, device=device,
                  amp=amp, progress=progress, desc=desc)
