"""ArcFace (additive angular margin) head, its margin warm-up and class-size margins.

The head turns embeddings into class logits for training only; at inference the embedding
(L2-normalised) is what matters. Logits are ``s*cos(theta + m)`` for the true class and
``s*cos(theta)`` for the others, computed in float32 even under autocast.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError


class ArcFace(nn.Module):
    """Additive angular margin head: s*cos(theta+m) for the true class, s*cos(theta) otherwise.

    When theta + m would pass pi the target logit would rise again; the standard fix keeps it
    monotone: ``cos(theta) - sin(pi - m) * m`` once ``cos(theta) <= cos(pi - m)``
    (``easy_margin`` instead applies the margin only where ``cos(theta) > 0``).
    ``ls_eps`` smooths the one-hot target that mixes margin and plain logits.
    ``class_margins`` (n_classes,) gives each class its own margin (see `class_size_margins`);
    `set_margin` then scales them all by ``m / m_init`` so a warm-up still applies.
    """

    def __init__(
        self,
        dim: int,
        n_classes: int,
        s: float = 30.0,
        m: float = 0.5,
        easy_margin: bool = False,
        ls_eps: float = 0.0,
        class_margins: Tensor | None = None,
    ) -> None:
        super().__init__()
        if dim < 1 or n_classes < 1:
            raise DataError(f"ArcFace needs dim >= 1 and n_classes >= 1, got dim={dim}, n_classes={n_classes}")
        if not 0.0 <= ls_eps < 1.0:
            raise DataError(f"ArcFace ls_eps must be in [0, 1), got {ls_eps}")
        self.dim, self.n_classes = int(dim), int(n_classes)
        self.s, self.easy_margin, self.ls_eps = float(s), bool(easy_margin), float(ls_eps)
        self.weight = nn.Parameter(torch.empty(self.n_classes, self.dim))
        nn.init.xavier_uniform_(self.weight)
        if class_margins is not None:
            class_margins = torch.as_tensor(class_margins, dtype=torch.float32).flatten()
            if class_margins.numel() != self.n_classes:
                raise DataError(f"ArcFace class_margins: expected {self.n_classes} values, found {class_margins.numel()}")
        self.register_buffer("class_margins", class_margins)
        self.m_init = float(m)
        self.set_margin(m)

    def set_margin(self, m: float) -> None:
        """Set the margin (margin warm-up); with class margins, scale them by ``m / m_init``."""
        self.m = float(m)

    def extra_repr(self) -> str:
        per_class = ", class_margins" if self.class_margins is not None else ""
        return (f"dim={self.dim}, n_classes={self.n_classes}, s={self.s}, m={self.m}, "
                f"easy_margin={self.easy_margin}, ls_eps={self.ls_eps}{per_class}")

    def _margins(self, labels: Tensor) -> Tensor | float:
        """The margin of each sample's class: a (B, 1) tensor, or the scalar margin."""
        if self.class_margins is None:
            return self.m
        scale = self.m / self.m_init if self.m_init else 0.0
        return (self.class_margins[labels] * scale).unsqueeze(1)

    def _phi(self, cos: Tensor, m: Tensor | float) -> Tensor:
        """cos(theta + m) with the past-pi fix, elementwise (m broadcasts over cos)."""
        m = torch.as_tensor(m, dtype=cos.dtype, device=cos.device)
        sin = torch.sqrt((1.0 - cos * cos).clamp(0.0, 1.0))
        phi = cos * torch.cos(m) - sin * torch.sin(m)
        if self.easy_margin:
            return torch.where(cos > 0, phi, cos)
        th = torch.cos(math.pi - m)
        mm = torch.sin(math.pi - m) * m
        return torch.where(cos > th, phi, cos - mm)

    def forward(self, emb: Tensor, labels: Tensor) -> Tensor:
        """(B, n_classes) float32 logits for embeddings `emb` (B, dim) and class indices `labels` (B,)."""
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise DataError(f"ArcFace: expected embeddings of shape (B, {self.dim}), found {tuple(emb.shape)}")
        labels = labels.long().view(-1)
        if labels.numel() != emb.shape[0]:
            raise DataError(f"ArcFace: {emb.shape[0]} embeddings but {labels.numel()} labels")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.n_classes):
            raise DataError(f"ArcFace: labels must be class indices in [0, {self.n_classes}), "
                            f"found [{int(labels.min())}, {int(labels.max())}] (unlabelled rows are -1)")
        with torch.autocast(device_type=emb.device.type, enabled=False):
            cos = F.linear(F.normalize(emb.float()), F.normalize(self.weight.float()))
            cos = cos.clamp(-1.0, 1.0)
            m = self._margins(labels)
            if self.ls_eps > 0:
                target = F.one_hot(labels, self.n_classes).to(cos.dtype)
                target = (1.0 - self.ls_eps) * target + self.ls_eps / self.n_classes
                logits = cos + target * (self._phi(cos, m) - cos)
            else:
                index = labels.unsqueeze(1)
                target_cos = cos.gather(1, index)
                logits = cos.scatter(1, index, self._phi(target_cos, m))
            return logits * self.s


def margin_at(progress: float, start: float, end: float, warmup: float) -> float:
    """Margin at `progress` in [0, 1] of training: linear from `start` to `end` over the first
    `warmup` fraction, then `end` (ArcFace diverges when a large margin is on from step one)."""
    if warmup <= 0:
        return float(end)
    p = min(max(float(progress), 0.0), 1.0)
    if p >= warmup:
        return float(end)
    return float(start + (end - start) * p / warmup)


def class_size_margins(counts, a: float = 0.5, b: float = 0.05) -> Tensor:
    """Per-class margins ``a * n_c**-0.25 + b``: small classes get larger margins (the dynamic
    margin of the Google Landmark Retrieval 2020 solutions). `counts` is (n_classes,) sizes."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    if counts.size == 0 or not np.all(np.isfinite(counts)) or (counts <= 0).any():
        raise DataError("class_size_margins: counts must be positive class sizes, "
                        f"found {counts.size} value(s) with min {counts.min() if counts.size else 'n/a'}")
    return torch.from_numpy(a * counts ** -0.25 + b).float()
