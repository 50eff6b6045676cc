"""Seed 003's sentence-level match model (`sentence_match`): the whole query against the image vector,
trained pointwise with BCE: (query, its product) 1, (query, a sampled negative product) 0 and
(the negative's query, the product) 0, as the seed's manual mining."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from ..layers import InteractionMlp
from ._registry import register_method
from .boxes import BoxBatch
from .match_base import ImageWordCore, MatchMethod, MatchOptions
from .towers import PAD, QueryEncoder, QueryTowerConfig


class MlpInteraction(nn.Module):
    """Query tower vector q and image vector v -> MLP([q, v, q * v, |q - v|]) -> one logit."""

    def __init__(self, core: ImageWordCore, n_words: int, hidden: int) -> None:
        super().__init__()
        dim = core.image_dim
        self.query = QueryEncoder(n_words, 0, QueryTowerConfig(core.words.embedding_dim, hidden, dim))
        self.query.words = core.words  # the (pre-trained) word table is the query tower's
        self.mlp = InteractionMlp(dim, hidden)

    def forward(self, words: Tensor, image: Tensor) -> Tensor:
        q = self.query(words)
        return self.mlp(q, image)


class ConditionedGru(nn.Module):
    """Seed 003's model 2: a GRU reads the query's word vectors starting from (a map of) the image
    vector as its hidden state; a linear map of its last state is the logit."""

    def __init__(self, core: ImageWordCore, n_words: int, hidden: int) -> None:
        super().__init__()
        self.words = core.words
        self.init = nn.Linear(core.image_dim, hidden)
        self.gru = nn.GRU(core.words.embedding_dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, words: Tensor, image: Tensor) -> Tensor:
        lengths = (words != PAD).sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.words(words), lengths, batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, torch.tanh(self.init(image))[None])
        return self.out(last[0]).squeeze(-1)


INTERACTIONS = {"mlp": MlpInteraction, "conditioned_gru": ConditionedGru}


@dataclass(frozen=True)
class SentenceMatchOptions(MatchOptions):
    """`interaction`: ``mlp`` (query tower vector vs image vector) or ``conditioned_gru`` (the seed's
    GRU over the query started from the image vector); `hidden` size of either."""

    interaction: Literal["mlp", "conditioned_gru"] = "mlp"
    hidden: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hidden < 1:
            raise DataError(f"hidden must be >= 1, got {self.hidden}")


class SentenceMatchModel(nn.Module):
    """The core's image vector and an interaction with the query's words."""

    def __init__(self, core: ImageWordCore, n_words: int, options: SentenceMatchOptions) -> None:
        super().__init__()
        self.core = core
        self.interaction = INTERACTIONS[options.interaction](core, n_words, options.hidden)

    def forward(self, words: Tensor, batch: BoxBatch) -> Tensor:
        image, _ = self.core(batch)
        return self.interaction(words, image)


@register_method("sentence_match")
class SentenceMatch(MatchMethod):
    """Seed 003's model 2: query vs image vector, pointwise BCE on positives and both kinds of negatives."""

    options_class = SentenceMatchOptions

    def build(self, core, n_words):
        return SentenceMatchModel(core, n_words, self.options)

    def forward(self, model, words, batch):
        return model(words, batch)

    def loss(self, model, data, pos, neg):
        b, k = neg.shape
        pos_words = data.row_words(pos)
        words = torch.cat([pos_words, pos_words.repeat_interleave(k, 0), data.row_words(neg.ravel())]).to(self.device)
        image, _ = model.core(self.boxes(data.train.chunk, np.concatenate([pos, neg.ravel()])))
        image = torch.cat([image, image[:b].repeat_interleave(k, 0)])  # each product encoded once per step
        logits = model.interaction(words, image)
        labels = torch.zeros_like(logits)
        labels[:b] = 1.0
        return F.binary_cross_entropy_with_logits(logits, labels)
