"""One-tower cross-encoder: both items' titles and pvs in one sequence -> pooled [CLS] -> 2 logits, the
CCKS solution's best single model family; input layout: pairs/README.md."""
from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from .base import PairModelConfig, PairOutput, TextPairModel, build_pair_model, pack_segments, register_pair_model


@register_pair_model("cross")
class CrossEncoder(TextPairModel):
    """``[CLS] title_a [SEP] pvs_a [SEP] title_b [SEP] pvs_b [SEP]`` -> pooled -> Linear -> 2 logits."""

    def build_head(self) -> None:
        self.dropout = nn.Dropout(self.config.dropout)
        self.classifier = nn.Linear(self.hidden_size, 2)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def encode(self, pairs: pd.DataFrame, swap: np.ndarray | None = None) -> dict:
        ta, pa, tb, pb = self.sides(pairs, swap)
        return pack_segments(self.tokenizer, [ta, pa, tb, pb], self.config.max_length, type_ids=(0, 0, 1, 1))

    def forward(self, inputs: dict) -> PairOutput:
        return PairOutput(self.classifier(self.dropout(self.pool(inputs))))


def cross_encoder(model: str | None = None, **options) -> CrossEncoder:
    """A cross-encoder over the local model folder `model` (None: the shipped MiniLM)."""
    return build_pair_model(PairModelConfig(kind="cross", model=model, **options))
