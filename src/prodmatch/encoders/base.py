"""What every neural encoder offers the trainer, and the registry that builds them by kind.

An encoder maps a batch of postings to (B, dim) neck outputs; it also knows how to turn a
frame into a dataset and a list of items into a batch, so the trainer never branches on kind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import DataError
from ..layers import Neck  # noqa: F401  (re-exported)
from ..weights import export_state
from ._registry import register_encoder  # noqa: F401  (re-exported: encoder modules import it from here)


class Encoder(nn.Module):
    """Postings -> (B, dim) embeddings (the neck output, NOT normalised; callers L2-normalise).

    Subclasses own ``backbone`` (pretrained part), ``pool`` and ``neck`` submodules, and are
    registered with `register_encoder` under their `kind`.
    """

    kind: ClassVar[str] = ""
    config_class: ClassVar[type] = object
    reads_images: ClassVar[bool] = False  # batches are NCHW pixels: images must load; channels-last pays on GPU

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config
        self.dim = int(config.dim)

    def forward(self, batch) -> Tensor:
        return self.neck(self.features(batch))

    def features(self, batch) -> Tensor:
        """The pooled backbone output ``(B, C)`` the neck sees (what a frozen backbone caches)."""
        raise NotImplementedError

    def dataset(self, frame: pd.DataFrame, *, train: bool, labels: np.ndarray | None = None) -> torch.utils.data.Dataset:
        """Items ``(input, label)`` for the rows of `frame` (label -1 without `labels`)."""
        raise NotImplementedError

    def collate(self, items: list) -> tuple[Any, Tensor]:
        """A list of dataset items -> (batch for `forward`, LongTensor labels)."""
        raise NotImplementedError

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """``{"backbone": [...], "neck": [...]}``: pooling and neck parameters go with the neck,
        so the trainer can give the freshly initialised layers a higher learning rate."""
        backbone = list(self.backbone.parameters())
        seen = {id(p) for p in backbone}
        return {"backbone": backbone, "neck": [p for p in self.parameters() if id(p) not in seen]}

    def export_state(self) -> dict[str, Tensor]:
        """State dict for safetensors: contiguous CPU copies, no shared storage."""
        return export_state(self)

    def save_assets(self, folder: Path) -> None:
        """Write files besides the weights that `from_saved` needs (a tokenizer); none by default."""

    @classmethod
    def from_saved(cls, config, folder: Path) -> "Encoder":
        """The architecture of a saved encoder, without loading any pretrained weights."""
        return cls(config, pretrained=False)


def check_labels(labels, n_rows: int) -> np.ndarray:
    """int64 class indices for `n_rows` rows (all -1 when `labels` is None)."""
    if labels is None:
        return np.full(n_rows, -1, dtype=np.int64)
    labels = np.asarray(labels)
    if labels.shape != (n_rows,):
        raise DataError(f"labels: expected shape ({n_rows},) to match the frame, found {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"labels: expected integer class indices, found dtype {labels.dtype}")
    return labels.astype(np.int64, copy=False)


