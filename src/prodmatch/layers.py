"""Torch building blocks shared by the encoders, the pair models and the KDD kinds: neck, poolings, the
[u, v, u * v, |u - v|] interaction MLP, device choice."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import DataError


def device_for(name: str = "auto") -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else CPU; ``cuda`` without a GPU is a DataError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("device 'cuda' asked for, but torch sees no GPU; use device: auto or cpu")
    return torch.device(name)


def autocast_for(device, enabled: bool):
    """(autocast context, dtype) for `device`: bf16 / fp16 autocast on CUDA when `enabled`, else
    (nullcontext, None); fp16 needs a GradScaler."""
    if not enabled or device.type != "cuda":
        return nullcontext(), None
    # emulated bf16 (T4 / P100: Kaggle's GPUs) is slow; those get fp16 with loss scaling
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return torch.autocast("cuda", dtype=dtype), dtype


class Neck(nn.Module):
    """Pooled feature -> Dropout -> Linear(in, dim) -> BatchNorm1d(dim): the embedding layer."""

    def __init__(self, in_dim: int, dim: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, dim)
        self.bn = nn.BatchNorm1d(dim)
        nn.init.xavier_normal_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.linear(self.dropout(x)))


class GeM(nn.Module):
    """Generalised mean pooling with a learnable exponent p (p=1: average, p->inf: max)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # float32: x**p overflows float16 under autocast
        pooled = x.float().clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1))
        return pooled.pow(1.0 / self.p)


class AvgPool(nn.Module):
    """Global average pooling of a (B, C, H, W) map to (B, C)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Average of the non-padding token vectors."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def cls_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """The first ([CLS]) token vector."""
    return hidden[:, 0]


def max_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Elementwise max over the non-padding token vectors."""
    return hidden.masked_fill(mask.unsqueeze(-1) == 0, torch.finfo(hidden.dtype).min).amax(1)


def masked_mean_max(sequence: Tensor, mask: Tensor) -> Tensor:
    """(B, T, H) + (B, T) bool -> (B, 2H): `mean_pool` and `max_pool` over the real steps, both 0 for a
    row without any. The mean is taken first: the backward pass accumulates gradients in that order."""
    mean = mean_pool(sequence, mask)
    peak = max_pool(sequence, mask)
    peak = torch.where(mask.any(1, keepdim=True), peak, torch.zeros_like(peak))
    return torch.cat([mean, peak], dim=1)


TOKEN_POOLINGS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"mean": mean_pool, "cls": cls_pool, "max": max_pool}


class TokenPool(nn.Module):
    """(B, T, H) token vectors + (B, T) attention mask -> (B, H), by a named pooling."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.fn = TOKEN_POOLINGS[mode]

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        return self.fn(hidden, mask)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class InteractionMlp(nn.Module):
    """Two vectors u, v (B, dim) -> MLP([u, v, u * v, |u - v|]): Linear(4 dim, hidden) -> ReLU ->
    (Dropout when `dropout` is not None) -> Linear(hidden, 1) -> one logit (B,)."""

    def __init__(self, dim: int, hidden: int, dropout: float | None = None) -> None:
        super().__init__()
        layers = [nn.Linear(4 * dim, hidden), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout is not None else [])
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden, 1))

    def forward(self, u: Tensor, v: Tensor) -> Tensor:
        return self.mlp(torch.cat([u, v, u * v, (u - v).abs()], dim=-1)).squeeze(-1)
