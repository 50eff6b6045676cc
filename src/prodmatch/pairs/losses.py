"""The pair losses, a registry of small classes: ``loss(out, labels)`` on a `PairOutput`, labels 0/1.
The loss is chosen by the training config (`PairTrainConfig.loss`), not saved with the model."""
from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from ..registry import Registry
from .base import PairOutput

LOSSES = Registry("pair loss", attribute="name")
register_loss = LOSSES.register


class PairLoss(nn.Module):
    """``loss(out, labels)``: mean over the batch; labels are 0/1 (int or float)."""

    name: ClassVar[str] = ""
    default_margin: ClassVar[float | None] = None
    needs_item_vectors: ClassVar[bool] = False  # acts on u, v: only two-tower models with such a head

    def __init__(self, margin: float | None = None) -> None:
        super().__init__()
        self.margin = self.default_margin if margin is None else float(margin)

    def forward(self, out: PairOutput, labels: Tensor) -> Tensor:
        raise NotImplementedError

    def check(self, config) -> None:
        """DataError when this loss cannot train a model of `config` (a `PairModelConfig`)."""
        if self.needs_item_vectors and not config.has_item_vectors:
            raise DataError(f"loss {self.name!r} needs item vectors: a two_tower model with head projection or "
                            f"similarity, not {config.kind} / {config.head}")

    def extra_repr(self) -> str:
        return "" if self.margin is None else f"margin={self.margin}"


@register_loss("ce")
class CrossEntropyLoss(PairLoss):
    """Softmax cross-entropy over the two logits."""

    def forward(self, out: PairOutput, labels: Tensor) -> Tensor:
        return F.cross_entropy(out.logits.float(), labels.long())


@register_loss("bce")
class BinaryCrossEntropyLoss(PairLoss):
    """Sigmoid cross-entropy of the decision logit z."""

    def forward(self, out: PairOutput, labels: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(out.z.float(), labels.float())


@register_loss("cosine-embedding")
class CosineEmbeddingLoss(PairLoss):
    """On the item vectors: ``1 - cos(u, v)`` for positives, ``max(0, cos(u, v) - margin)`` for
    negatives (torch's CosineEmbeddingLoss). Trains the embeddings only; a similarity head's
    affine stays as initialised, so its score remains monotone in cos."""

    default_margin = 0.5
    needs_item_vectors = True

    def forward(self, out: PairOutput, labels: Tensor) -> Tensor:
        if out.u is None or out.v is None:
            raise DataError("cosine-embedding loss needs item vectors (a two-tower model)")
        cos = F.cosine_similarity(out.u.float(), out.v.float(), dim=-1, eps=1e-8)
        y = labels.float()
        return (y * (1 - cos) + (1 - y) * (cos - self.margin).clamp(min=0)).mean()


@register_loss("hinge")
class HingeLoss(PairLoss):
    """SVM hinge on the decision logit: ``max(0, margin - y * z)`` with y in {-1, +1}
    (equals 2 x torch's ``multi_margin_loss`` on the logits ``[0, z]``)."""

    default_margin = 1.0

    def forward(self, out: PairOutput, labels: Tensor) -> Tensor:
        y = labels.float() * 2 - 1
        return (self.margin - y * out.z.float()).clamp(min=0).mean()


def make_loss(name: str, margin: float | None = None) -> PairLoss:
    return LOSSES.get(name)(margin)
