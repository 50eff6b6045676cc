"""One-tower cross-encoder for item pairs (the CCKS solution's best single model family).

Input, one sequence per pair (see :func:`prodmatch.pairs.base.pack_segments` for the budgets)::

    [CLS] title_a [SEP] pvs_a [SEP] title_b [SEP] pvs_b [SEP]
    type:  0 ...    0     0 ...  0     1 ...    1     1 ...  1

``pvs_a/pvs_b`` are the pair's aligned pvs texts (``pair_frame``: shared keys first, by category
frequency). Each of the four segments is cut to a max-min fair share of ``max_length - 5``, so
both items are always present however long one side's pvs is; an empty pvs keeps its [SEP].
The token types mark the two items when the tokenizer uses them (BERT, MiniLM).

Classification is the "matrix projection" of seed 000: the pooled [CLS] vector (or the mean of
tokens with ``pooling: mean``) -> Dropout -> Linear(hidden, 2) -> softmax, trained with the
configured loss (``ce`` by default; ``bce`` / ``hinge`` act on ``z = logit_1 - logit_0``).
Symmetric augmentation (``swap_prob``) feeds training pairs as (b, a); ``symmetric: true``
averages both orders at inference. ``score(pairs)`` gives p(label 1).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from torch import nn

from .base import PairModel, PairModelConfig, PairOutput, build_pair_model, pack_segments, register_pair_model


@register_pair_model("cross")
class CrossEncoder(PairModel):
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
