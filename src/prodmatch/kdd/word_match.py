"""Seed 003's word-level match model (`word_match`): every query word gets a match score against the
product's boxes (its best box), the words' scores are averaged with learnt word weights, and the model
is trained pairwise: a query's positive product above sampled negative products."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from ._registry import register_method
from .boxes import BoxBatch
from .match_base import ImageWordCore, MatchMethod, MatchOptions
from .pretrain import box_match
from .towers import PAD, BiLSTMPool

PAIRWISE = ("margin", "bpr")


def pairwise_loss(positive: Tensor, negatives: Tensor, kind: Literal["margin", "bpr"] = "margin",
                  margin: float = 0.9) -> Tensor:
    """Mean over (positive, negative) pairs: `positive` (B,) scores, `negatives` (B, K) of the same
    queries. ``margin``: max(0, margin - pos + neg) (the seed's margin ranking loss, margin 0.9);
    ``bpr``: -log sigmoid(pos - neg)."""
    gap = positive[:, None] - negatives
    if kind == "margin":
        return (margin - gap).clamp(min=0).mean()
    if kind == "bpr":
        return F.softplus(-gap).mean()
    raise ValueError(f"pairwise loss {kind!r}: one of {', '.join(PAIRWISE)}")


class WordWeights(nn.Module):
    """Each query word's weight: softmax over the query's words of a learnt per-word logit plus a gate
    (an MLP on the word's context vector and the image vector: seed 003's ``dense_summary``)."""

    def __init__(self, n_words: int, context_dim: int, image_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.prior = nn.Embedding(n_words, 1)
        nn.init.zeros_(self.prior.weight)
        self.gate = nn.Sequential(nn.Linear(context_dim + image_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, tokens: Tensor, token_mask: Tensor, context: Tensor, image: Tensor) -> Tensor:
        """(B, L) weights summing to 1 over each row's real words (0 on padding; all 0 without words)."""
        image = image[:, None, :].expand(-1, tokens.shape[1], -1)
        logits = self.prior(tokens).squeeze(-1) + self.gate(torch.cat([context, image], -1)).squeeze(-1)
        weights = torch.softmax(logits.masked_fill(~token_mask, float("-inf")), -1)
        return torch.nan_to_num(weights, nan=0.0)


class WordMatchHead(nn.Module):
    """score = sum over query words of weight(word) x box_match(word vector, boxes)."""

    def __init__(self, n_words: int, context_dim: int, image_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.weights = WordWeights(n_words, context_dim, image_dim, hidden)

    def forward(self, word_vectors: Tensor, tokens: Tensor, token_mask: Tensor, context: Tensor,
                boxes: Tensor, box_mask: Tensor, image: Tensor) -> Tensor:
        match = box_match(word_vectors, boxes, box_mask)
        return (self.weights(tokens, token_mask, context, image) * match).sum(-1)


@dataclass(frozen=True)
class WordMatchOptions(MatchOptions):
    """`loss`: ``margin`` (with `margin`, the seed's 0.9) or ``bpr``; `context_hidden` of the word BiLSTM
    whose states feed the word-weight gate, `gate_hidden` of the gate's MLP."""

    loss: Literal["margin", "bpr"] = "margin"
    margin: float = 0.9
    context_hidden: int = 32
    gate_hidden: int = 64

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.context_hidden < 1 or self.gate_hidden < 1 or self.margin < 0:
            raise DataError("context_hidden and gate_hidden must be >= 1, margin >= 0")


class WordMatchModel(nn.Module):
    """The core's word and box vectors, a word BiLSTM (context for the weights) and the head."""

    def __init__(self, core: ImageWordCore, n_words: int, options: WordMatchOptions) -> None:
        super().__init__()
        self.core = core
        self.context = BiLSTMPool(options.word_dim, options.context_hidden)
        self.head = WordMatchHead(n_words, 2 * options.context_hidden, core.image_dim, options.gate_hidden)

    def parts(self, words: Tensor, batch: BoxBatch) -> tuple[Tensor, ...]:
        """The head's inputs for (B, L) word ids and a (B, ...) BoxBatch."""
        image, boxes = self.core(batch)
        vectors, mask = self.core.words(words), words != PAD
        context, _ = self.context(vectors, mask)
        return vectors, words, mask, context, boxes, batch.mask, image

    def forward(self, words: Tensor, batch: BoxBatch) -> Tensor:
        return self.head(*self.parts(words, batch))

    def word_weights(self, words: Tensor, batch: BoxBatch) -> Tensor:
        """(B, L) the learnt weight of each query word (for inspection and tests)."""
        vectors, words, mask, context, _, _, image = self.parts(words, batch)
        return self.head.weights(words, mask, context, image)


@register_method("word_match")
class WordMatch(MatchMethod):
    """Seed 003's model 1: per query word its best box's match, averaged with learnt word weights;
    trained pairwise (a positive product above each sampled negative product of its query)."""

    options_class = WordMatchOptions

    def build(self, core, n_words):
        return WordMatchModel(core, n_words, self.options)

    def forward(self, model, words, batch):
        return model(words, batch)

    def loss(self, model, data, pos, neg):
        k = neg.shape[1]
        words = data.row_words(pos).to(self.device)
        scores = model(torch.cat([words, words.repeat_interleave(k, 0)]),
                       self.boxes(data.train.chunk, np.concatenate([pos, neg.ravel()])))
        return pairwise_loss(scores[:len(pos)], scores[len(pos):].view(len(pos), k), self.options.loss, self.options.margin)
