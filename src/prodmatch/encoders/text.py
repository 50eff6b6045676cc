"""Text encoder: a local sentence-transformers / Hugging Face model -> token pooling -> Neck, read from
local folders only so nothing reaches for a model hub (encoders/README.md)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..backbones import load_hf_backbone, resolve_model_folder
from ..errors import DataError
from ..io import atomic_dir
from ..layers import Neck, TokenPool
from .base import Encoder, check_labels, register_encoder

log = logging.getLogger(__name__)
ASSETS = "backbone"  # subfolder of a saved encoder with the tokenizer and model config


@dataclass(frozen=True)
class TextEncoderConfig:
    """A local model folder (None: the shipped all-MiniLM-L6-v2), truncation, pooling, neck."""

    model: str | None = None
    max_length: int = 64
    pooling: Literal["mean", "cls", "max"] = "mean"
    dim: int = 512
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.max_length < 2 or self.dim < 1 or not 0.0 <= self.dropout < 1.0:
            raise DataError(f"TextEncoderConfig: need max_length >= 2, dim >= 1, 0 <= dropout < 1; "
                            f"got max_length={self.max_length}, dim={self.dim}, dropout={self.dropout}")


class TextDataset(Dataset):
    """(title, label) per row; titles are always readable (empty ones are "")."""

    def __init__(self, titles: np.ndarray, labels: np.ndarray) -> None:
        self.titles, self.labels = titles, labels
        self.rows, self.skipped = np.arange(len(titles)), 0

    def __len__(self) -> int:
        return len(self.titles)

    def __getitem__(self, i: int):
        return self.titles[i], int(self.labels[i])


@register_encoder("text")
class TextEncoder(Encoder):
    """Titles -> transformer token vectors -> mean/cls/max pooling -> Neck -> (B, dim)."""

    config_class = TextEncoderConfig

    def __init__(self, config: TextEncoderConfig = TextEncoderConfig(), *, pretrained: bool = True,
                 assets: str | os.PathLike | None = None) -> None:
        """`pretrained=False` builds the architecture from the config only (weights come later);
        `assets` is a folder with tokenizer + config to use instead of `config.model`."""
        super().__init__(config)
        folder = Path(assets) if assets is not None else resolve_model_folder(config.model)
        self.backbone, self.tokenizer, hf_config = load_hf_backbone(folder, pretrained=pretrained)
        limit = getattr(hf_config, "max_position_embeddings", None)
        if limit and limit > 0 and config.max_length > limit:
            raise DataError(f"TextEncoderConfig.max_length={config.max_length} exceeds the model's "
                            f"max_position_embeddings={limit} ({folder})")
        self.pool = TokenPool(config.pooling)
        self.neck = Neck(hf_config.hidden_size, config.dim, config.dropout)
        self.train()  # from_pretrained leaves the backbone in eval mode; keep the module consistent

    def features(self, batch: dict[str, Tensor]) -> Tensor:
        hidden = self.backbone(**batch).last_hidden_state
        return self.pool(hidden, batch["attention_mask"])

    def dataset(self, frame: pd.DataFrame, *, train: bool, labels: np.ndarray | None = None) -> TextDataset:
        if "title" not in frame.columns:
            raise DataError(f"text encoder: the frame has no title column; found {list(frame.columns)}")
        titles = frame["title"].fillna("").astype(str).to_numpy()
        return TextDataset(titles, check_labels(labels, len(frame)))

    def collate(self, items: list) -> tuple[dict[str, Tensor], Tensor]:
        titles = [title for title, _ in items]
        tokens = self.tokenizer(titles, padding="longest", truncation=True,
                                max_length=self.config.max_length, return_tensors="pt")
        return dict(tokens), torch.as_tensor([label for _, label in items], dtype=torch.long)

    def save_assets(self, folder: Path) -> None:
        """Tokenizer and model config into ``folder/backbone`` (replaced whole), so a saved
        encoder loads without the original model folder (a Kaggle kernel)."""
        with atomic_dir(Path(folder) / ASSETS) as tmp:
            self.tokenizer.save_pretrained(str(tmp))
            self.backbone.config.save_pretrained(str(tmp))

    @classmethod
    def from_saved(cls, config: TextEncoderConfig, folder: Path) -> "TextEncoder":
        assets = Path(folder) / ASSETS
        return cls(config, pretrained=False, assets=assets if (assets / "config.json").is_file() else None)


