"""Trained fold encoders as an embedding method: the normalised mean of every fold's embedding.

A run's trained model has one encoder per CV fold; at test time each embeds the frame and the
fold vectors are averaged. Its bundle entry names the copied fold folders.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._registry import register_embedder
from .base import Embedder

if TYPE_CHECKING:
    import pandas as pd


@register_embedder("encoder")
class FoldEncoders(Embedder):
    kind = "dense"
    trained = True

    def __init__(self, folders=(), encoder_kind: str | None = None, *, batch_size: int = 64, num_workers: int = 0,
                 progress: bool = True) -> None:
        self.folders = [Path(f) for f in folders]
        self.encoder_kind = encoder_kind
        self.batch_size, self.num_workers, self.progress = batch_size, num_workers, progress

    @property
    def needs_images(self) -> bool:  # type: ignore[override]
        """Whether the fold encoders read pixels; a bundle entry without `encoder_kind` (older
        bundles) takes the kind from its first fold's encoder.json."""
        import json

        from ..encoders import CONFIG_FILE, encoder_class

        kind = self.encoder_kind
        if kind is None and self.folders:
            kind = json.loads((self.folders[0] / CONFIG_FILE).read_text(encoding="utf-8")).get("kind")
        return kind is not None and encoder_class(kind).reads_images

    def bundle_spec(self) -> dict:
        return {"kind": self.kind, "source": self.name, "encoder_kind": self.encoder_kind,
                "folders": [str(f) for f in self.folders]}

    @classmethod
    def from_bundle(cls, models_dir: Path, spec: dict, **options) -> "FoldEncoders":
        return cls([Path(models_dir) / f for f in spec["folders"]], spec.get("encoder_kind"), **options)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        from ..encoders import load_encoder
        from ..encoders.frozen import backbone_digest, neck_embed
        from ..encoders.inference import backbone_features, embed_frame

        options = {"batch_size": self.batch_size, "num_workers": self.num_workers, "progress": self.progress}
        folders = self.folders
        # each fold encoder is loaded twice (digest pass, embedding pass) rather than all held at once:
        # five xlm-r-base folds would need ~5.5 GB of a 13 GB kernel
        shared = len(folders) > 1 and len({backbone_digest(load_encoder(f)) for f in folders}) == 1
        features = None
        if shared:  # fold necks over one frozen backbone: its pass runs once, not once per fold
            features = backbone_features(load_encoder(folders[0]), frame, **options,
                                         desc=f"features {folders[0].parent.parent.name}")
        total = None
        for folder in folders:
            encoder = load_encoder(folder)
            if shared:
                emb = neck_embed(encoder, features)
            else:
                emb = embed_frame(encoder, frame, **options, desc=f"embed {folder.parent.name}/{folder.name}")
            total = emb if total is None else total + emb
        norms = np.linalg.norm(total, axis=1, keepdims=True)
        return total / np.where(norms > 0, norms, 1.0)
