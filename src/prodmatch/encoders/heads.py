"""Metric-learning heads: what turns a batch of neck outputs and labels into the training loss.

Seed 004 compares ArcFace with plain softmax classification and the triplet loss; each is one
registered class here with ``loss(emb, labels)`` and ``set_progress(p)`` (training progress in
[0, 1], for margin warm-up). Heads exist only in training: the saved encoder is the embedding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import Registry
from .arcface import ArcFace, margin_at

HEADS = Registry("head", attribute="name")
register_head = HEADS.register


@dataclass(frozen=True)
class TripletConfig:
    """Batch-hard triplet loss: `margin` on cosine distances; batches are whole class chunks of up
    to `per_class` rows (`pk_batches`), so every row has a positive in its batch."""

    margin: float = 0.3
    per_class: int = 4  # rows of one class in a batch (K of the P x K sampler)


class Head(nn.Module):
    """A training head; `pk_batches`: batches must hold several rows per class (triplet)."""

    name: ClassVar[str] = ""
    pk_batches: ClassVar[bool] = False

    def loss(self, emb: Tensor, labels: Tensor) -> Tensor:
        raise NotImplementedError

    def set_progress(self, progress: float) -> None:
        """Schedule anything that depends on training progress (default: nothing)."""

    @property
    def margin(self) -> float | None:
        return None


@register_head("arcface")
class ArcFaceHead(ArcFace, Head):
    """ArcFace logits + cross-entropy; the margin warms up from ``m_start`` (`ArcFaceConfig`)."""

    def __init__(self, dim: int, n_classes: int, config, class_margins=None) -> None:
        arc = config.arcface
        super().__init__(dim, n_classes, s=arc.s, m=arc.m, easy_margin=arc.easy_margin, ls_eps=arc.ls_eps,
                         class_margins=class_margins)
        self.schedule = arc

    def loss(self, emb: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(self(emb.float(), labels).float(), labels)

    def set_progress(self, progress: float) -> None:
        arc = self.schedule
        if arc.m_start is None or arc.m_warmup <= 0:
            self.set_margin(arc.m)
        else:
            self.set_margin(margin_at(progress, arc.m_start, arc.m, arc.m_warmup))

    @property
    def margin(self) -> float:
        return float(self.m)


@register_head("softmax")
class SoftmaxHead(Head):
    """A linear classifier over the embedding + cross-entropy (no margin, no normalisation)."""

    def __init__(self, dim: int, n_classes: int, config, class_margins=None) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, n_classes)

    def loss(self, emb: Tensor, labels: Tensor) -> Tensor:
        return F.cross_entropy(self.linear(emb.float()).float(), labels)


@register_head("triplet")
class TripletHead(Head):
    """Batch-hard triplet loss (Hermans et al. 2017) on L2-normalised embeddings: for each row, its
    farthest positive and nearest negative in the batch; rows without either are left out."""

    pk_batches = True

    def __init__(self, dim: int, n_classes: int, config, class_margins=None) -> None:
        super().__init__()
        self.margin_value = float(config.triplet.margin)

    def loss(self, emb: Tensor, labels: Tensor) -> Tensor:
        return batch_hard_triplet(emb, labels, self.margin_value)

    @property
    def margin(self) -> float:
        return self.margin_value


def batch_hard_triplet(emb: Tensor, labels: Tensor, margin: float) -> Tensor:
    """Mean over anchors of ``relu(max d(a, p) - min d(a, n) + margin)``, d = 1 - cosine; anchors
    with no positive or no negative in the batch do not count (0 when none does)."""
    z = F.normalize(emb.float(), dim=1)
    dist = 1.0 - z @ z.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    valid = pos.any(1) & (~same).any(1)
    if not valid.any():
        return (z * 0.0).sum()  # keeps the graph: a zero loss with gradients
    hardest_pos = dist.masked_fill(~pos, float("-inf")).max(1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(1).values
    return F.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def make_head(name: str, dim: int, n_classes: int, config, class_margins=None) -> Head:
    """The head registered as `name` for `n_classes` classes of `dim`-d embeddings."""
    return HEADS.get(name)(dim, n_classes, config, class_margins)


def pk_batches(labels, batch_size: int, per_class: int, generator: torch.Generator) -> list[np.ndarray]:
    """Row indices in batches of whole class chunks (up to `per_class` rows of one class, at least
    2), chunks in a seeded random order; a class's rows are split into chunks, none dropped but a
    lone leftover row (and classes of one row: a triplet needs a positive)."""
    labels = np.asarray(labels)
    shuffle = torch.randperm(len(labels), generator=generator).numpy()
    order = shuffle[np.argsort(labels[shuffle], kind="stable")]  # by class, random within
    cls = labels[order]
    starts = np.r_[0, np.flatnonzero(cls[1:] != cls[:-1]) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    chunk = np.cumsum(np.r_[True, (cls[1:] != cls[:-1]) | (rank[1:] % per_class == 0)]) - 1
    size = np.bincount(chunk)
    keep = size[chunk] >= 2
    order, chunk = order[keep], chunk[keep]
    ids = np.unique(chunk)
    ids = ids[torch.randperm(len(ids), generator=generator).numpy()]
    sizes = np.bincount(chunk)[ids]
    place = np.empty(int(chunk.max(initial=-1)) + 1, np.int64)
    place[ids] = np.arange(len(ids))
    rows = order[np.argsort(place[chunk], kind="stable")]
    batches, start, filled = [], 0, 0
    for n in sizes.tolist():  # one step per chunk (rows / per_class): whole chunks per batch
        if filled and filled + n > batch_size:
            batches.append(rows[start:start + filled])
            start, filled = start + filled, 0
        filled += n
    if filled >= 2:
        batches.append(rows[start:start + filled])
    return batches
