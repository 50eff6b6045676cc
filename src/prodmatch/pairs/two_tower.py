"""Two-tower pair models: one shared encoder reads each item alone and a head compares the two vectors
(with `pvs: own` item vectors can be indexed); heads and similarities: pairs/README.md."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from .base import (PairModel, PairModelConfig, PairOutput, TextPairModel, build_pair_model,  # noqa: F401
                   pack_segments, register_pair_model)


def cosine_similarity(u: Tensor, v: Tensor) -> Tensor:
    return F.cosine_similarity(u, v, dim=-1, eps=1e-8)


def inner_similarity(u: Tensor, v: Tensor) -> Tensor:
    return (u * v).sum(-1)


def l1_similarity(u: Tensor, v: Tensor) -> Tensor:
    return -(u - v).abs().sum(-1)


def l2_similarity(u: Tensor, v: Tensor) -> Tensor:
    # eps keeps the gradient finite when u == v
    return -((u - v).pow(2).sum(-1) + 1e-12).sqrt()


@dataclass(frozen=True)
class Similarity:
    """A similarity function with the initial affine ``z = scale * sim + bias`` of its head."""

    fn: Callable[[Tensor, Tensor], Tensor]
    scale: float = 1.0
    bias: float = 0.0


SIMILARITIES: dict[str, Similarity] = {
    "cosine": Similarity(cosine_similarity, scale=10.0, bias=-5.0),
    "inner": Similarity(inner_similarity),
    "l1": Similarity(l1_similarity),
    "l2": Similarity(l2_similarity),
}


def similarity(name: str) -> Similarity:
    if name not in SIMILARITIES:
        raise DataError(f"unknown similarity {name!r}; known: {', '.join(sorted(SIMILARITIES))}")
    return SIMILARITIES[name]


# ------------------------------------------------------------------------------ heads
HEADS: dict[str, type[nn.Module]] = {}


def register_head(name: str):
    def deco(cls):
        HEADS[name] = cls
        return cls

    return deco


def _logits(z: Tensor) -> Tensor:
    """Decision logit z -> 2-class logits ``[0, z]`` (softmax p1 = sigmoid z)."""
    return torch.stack([torch.zeros_like(z), z], dim=-1)


@register_head("projection")
class ProjectionHead(nn.Module):
    """MLP on ``[u, v, |u - v|, u * v]`` -> 2 logits."""

    def __init__(self, hidden_size: int, config: PairModelConfig) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(4 * hidden_size, config.hidden), nn.GELU(),
                                 nn.Dropout(config.dropout), nn.Linear(config.hidden, 2))

    def forward(self, u: Tensor, v: Tensor) -> PairOutput:
        return PairOutput(self.mlp(torch.cat([u, v, (u - v).abs(), u * v], dim=-1)), u, v)


@register_head("similarity")
class SimilarityHead(nn.Module):
    """``z = exp(log_scale) * sim(u, v) + bias``."""

    def __init__(self, hidden_size: int, config: PairModelConfig) -> None:
        super().__init__()
        self.sim = similarity(config.similarity)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(self.sim.scale))))
        self.bias = nn.Parameter(torch.tensor(float(self.sim.bias)))

    def forward(self, u: Tensor, v: Tensor) -> PairOutput:
        sim = self.sim.fn(u, v)
        return PairOutput(_logits(self.log_scale.exp() * sim + self.bias), u, v, {"sim": sim})


@register_head("adaptive")
class AdaptiveThresholdHead(nn.Module):
    """Seed 002: feature stream f and threshold stream g; ``z = exp(s) * (sim(f_a, f_b) - sim(g_a, g_b))``."""

    def __init__(self, hidden_size: int, config: PairModelConfig) -> None:
        super().__init__()
        self.sim = similarity(config.similarity)
        self.feature = nn.Linear(hidden_size, config.dim)
        self.threshold = nn.Linear(hidden_size, config.dim)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(self.sim.scale))))

    def forward(self, u: Tensor, v: Tensor) -> PairOutput:
        fu, fv = self.feature(u), self.feature(v)
        sim = self.sim.fn(fu, fv)
        thr = self.sim.fn(self.threshold(u), self.threshold(v))
        return PairOutput(_logits(self.log_scale.exp() * (sim - thr)), fu, fv, {"sim": sim, "threshold": thr})


def adaptive_decision(sim, threshold) -> np.ndarray:
    """The self-adaptive rule: a pair is the same item when its similarity exceeds its own threshold."""
    return np.asarray(sim) > np.asarray(threshold)


# ------------------------------------------------------------------------------ model
@register_pair_model("two_tower")
class TwoTower(TextPairModel):
    """Shared backbone per item -> pooled u, v -> head (projection / similarity / adaptive)."""

    def build_head(self) -> None:
        if self.config.head not in HEADS:
            raise DataError(f"unknown two-tower head {self.config.head!r}; known: {', '.join(sorted(HEADS))}")
        self.head = HEADS[self.config.head](self.hidden_size, self.config)

    def encode(self, pairs: pd.DataFrame, swap: np.ndarray | None = None) -> dict:
        ta, pa, tb, pb = self.sides(pairs, swap)
        titles, pvs = ta + tb, pa + pb
        segments = [titles] if self.config.pvs_mode == "none" else [titles, pvs]
        return {"items": pack_segments(self.tokenizer, segments, self.config.max_length)}

    def embed_items(self, inputs: dict) -> Tensor:
        """Pooled vectors of the packed items (a then b)."""
        return self.pool(inputs["items"])

    def forward(self, inputs: dict) -> PairOutput:
        pooled = self.embed_items(inputs)
        n = pooled.shape[0] // 2
        return self.head(pooled[:n], pooled[n:])

    def predict_unique(self, pairs: pd.DataFrame, batch_size: int, progress: bool = False) -> np.ndarray:
        """p(same item) per pair, encoding each distinct (title, pvs) item text once (item
        vectors do not depend on the partner), then applying the head to the pairs.
        Call in eval mode under inference_mode; `predict_pairs` uses it."""
        from tqdm.auto import tqdm

        ta, pa, tb, pb = self.sides(pairs, None)
        keys = list(zip(ta + tb, pa + pb))
        unique = list(dict.fromkeys(keys))
        position = {key: i for i, key in enumerate(unique)}
        device = next(self.parameters()).device
        vectors = []
        for start in tqdm(range(0, len(unique), batch_size), disable=not progress, desc="embed", leave=False):
            chunk = unique[start:start + batch_size]
            titles, pvs = [t for t, _ in chunk], [p for _, p in chunk]
            segments = [titles] if self.config.pvs_mode == "none" else [titles, pvs]
            batch = pack_segments(self.tokenizer, segments, self.config.max_length)
            vectors.append(self.pool({k: t.to(device) for k, t in batch.items()}))
        table = torch.cat(vectors)
        index = torch.as_tensor([position[k] for k in keys], device=device)
        n = len(pairs)
        a, b = index[:n], index[n:]
        probs = [self.head(table[a[s:s + batch_size]], table[b[s:s + batch_size]]).prob for s in range(0, n, batch_size)]
        return torch.cat(probs).double().cpu().numpy()


def two_tower(model: str | None = None, **options) -> TwoTower:
    """A two-tower pair model over the local model folder `model` (None: the shipped MiniLM)."""
    return build_pair_model(PairModelConfig(kind="two_tower", model=model, **options))
