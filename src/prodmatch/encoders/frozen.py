"""Frozen-backbone training: pooled backbone features are cached once and only neck + ArcFace head train,
which on CPU gives the neck tens of epochs for a fraction of one fine-tuned epoch (encoders/README.md)."""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError

log = logging.getLogger(__name__)

FEATURES_JSON = "features.json"


@dataclass(frozen=True)
class FrozenFeatures:
    """Backbone features of fit's train frame and (optionally) its validation frame, row-aligned."""

    train: np.ndarray
    valid: np.ndarray | None = None

    def check(self, n_train: int, n_valid: int | None) -> None:
        if self.train.ndim != 2 or len(self.train) != n_train:
            raise DataError(f"frozen features: {self.train.shape} for {n_train} training rows")
        if n_valid and (self.valid is None or len(self.valid) != n_valid):
            shape = None if self.valid is None else self.valid.shape
            raise DataError(f"frozen features: validation features {shape} for {n_valid} rows")


class FeatureDataset:
    """(feature vector, label) items for the DataLoader; `collate` stacks them."""

    def __init__(self, features: np.ndarray, labels: np.ndarray) -> None:
        import torch

        self.features = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        self.labels = torch.as_tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.features[i], self.labels[i]

    @staticmethod
    def collate(items: list):
        import torch

        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def neck_embed(encoder, features: np.ndarray, *, batch_size: int = 1024, device=None) -> np.ndarray:
    """L2-normalised embeddings of cached features: what `embed_frame` gives for those rows."""
    import torch

    neck = encoder.neck
    device = device or next(neck.parameters()).device
    was_training = neck.training
    neck.eval()
    parts = []
    try:
        with torch.inference_mode():
            for start in range(0, len(features), batch_size):
                x = torch.from_numpy(np.array(features[start:start + batch_size], dtype=np.float32))  # a copy: the cache may be a read-only memmap
                parts.append(torch.nn.functional.normalize(neck(x.to(device)).float(), dim=1).cpu())
    finally:
        neck.train(was_training)
    return torch.cat(parts).numpy() if parts else np.zeros((0, int(encoder.dim)), np.float32)


def backbone_digest(encoder) -> str:
    """sha256 of the backbone's tensors (names, shapes, bytes): which weights made a feature cache."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.backbone.state_dict().items()):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def cached_features(folder, encoder, frames: dict[str, pd.DataFrame | None], *, batch_size: int = 64,
                    num_workers: int = 0, amp: bool = True, progress: bool = False) -> dict[str, np.ndarray]:
    """Backbone features of each frame in `frames` (name -> frame; None skipped), read from
    `folder` when its features.json matches this backbone and these row counts, else computed and
    written there (each .npy atomically, features.json last)."""
    from ..io import write_json, write_npy
    from .inference import backbone_features

    folder = Path(folder)
    wanted = {name: frame for name, frame in frames.items() if frame is not None}
    digest = backbone_digest(encoder)
    record = {"backbone_sha256": digest, "rows": {name: len(frame) for name, frame in wanted.items()}}
    meta_path = folder / FEATURES_JSON
    if meta_path.is_file():
        existing = json.loads(meta_path.read_text(encoding="utf-8"))
        complete = all((folder / f"{name}.npy").is_file() for name in wanted)
        if existing == record and complete:
            return {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in wanted}
        log.warning("%s: cached features are from another backbone or other rows; recomputing", folder)
        meta_path.unlink()
    out = {}
    for name, frame in wanted.items():
        out[name] = backbone_features(encoder, frame, batch_size=batch_size, num_workers=num_workers, amp=amp,
                                      progress=progress, desc=f"{name} features")
        write_npy(folder / f"{name}.npy", out[name])
    write_json(meta_path, record)
    return out


__all__ = ["FrozenFeatures", "FeatureDataset", "neck_embed", "backbone_digest", "cached_features"]
