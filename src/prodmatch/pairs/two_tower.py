"""Two-tower pair models: one shared item encoder reads each item alone and a head compares the two
vectors (with `pvs: own` item vectors can be indexed); the heads, `TowerPairModel` (what every
two-tower kind shares) and the transformer kind `two_tower`; heads and similarities: pairs/README.md."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from ..registry import Registry
from .base import (PairModel, PairModelConfig, PairOutput, TextPairModel, build_pair_model,  # noqa: F401
                   pack_segments, register_pair_model, swap_sides, text_column)
from .pvs import ENTRY_SEP


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


SIMILARITIES = Registry("similarity", {
    "cosine": Similarity(cosine_similarity, scale=10.0, bias=-5.0),
    "inner": Similarity(inner_similarity),
    "l1": Similarity(l1_similarity),
    "l2": Similarity(l2_similarity),
})


def similarity(name: str) -> Similarity:
    return SIMILARITIES.get(name)


# ------------------------------------------------------------------------------ heads
HEADS = Registry("two-tower head")
register_head = HEADS.register


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


# ------------------------------------------------------------------------------ models
class TowerPairModel(PairModel):
    """u = item vector of a, v = of b, then a two-tower head (`two_tower.HEADS`). Subclasses say
    which item fields they read (`reads`: title, pvs, image, item (the id); also the key of
    unique-item inference) and implement
    `encode_items` (fields -> tensors) and `embed_items` (tensors -> (B, item_dim))."""

    reads: ClassVar[tuple[str, ...]] = ("title", "pvs")
    item_dim: int

    def build_head(self) -> None:
        self.head = HEADS.get(self.config.head)(self.item_dim, self.config)

    def item_fields(self, pairs: pd.DataFrame, swap: np.ndarray | None) -> dict[str, list]:
        """{field: values of items a then b} for the fields this kind reads."""
        fields = {}
        if "title" in self.reads or "pvs" in self.reads:
            ta, pa, tb, pb = self.sides(pairs, swap)
            cut = getattr(self.config, "pvs_entries", None)  # tower kinds keep the first entries
            fields["title"] = ta + tb
            fields["pvs"] = pa + pb if cut is None else [ENTRY_SEP.join(p.split(ENTRY_SEP)[:cut]) for p in pa + pb]
        if "image" in self.reads:
            if "image_a" not in pairs.columns:
                raise DataError(f"{self.kind}: the pair frame has no image_a / image_b; build it with "
                                "pair_frame(pairs, items) from items with an image_path column")
            image_a, image_b = swap_sides(text_column(pairs, "image_a"), text_column(pairs, "image_b"), swap)
            fields["image"] = image_a + image_b
        if "item" in self.reads:  # graph / knowledge kinds look the item up by id
            from .item_tables import pair_item_ids

            ids_a, ids_b = pair_item_ids(pairs, swap)
            fields["item"] = ids_a + ids_b
        return {k: fields[k] for k in self.reads}

    def encode_items(self, fields: dict[str, list]) -> dict:
        raise NotImplementedError

    def embed_items(self, inputs: dict) -> Tensor:
        raise NotImplementedError

    def encode(self, pairs: pd.DataFrame, swap: np.ndarray | None = None) -> dict:
        return self.encode_items(self.item_fields(pairs, swap))

    def forward(self, inputs: dict) -> PairOutput:
        vectors = self.embed_items(inputs)
        n = vectors.shape[0] // 2
        return self.head(vectors[:n], vectors[n:])

    def predict_unique(self, pairs: pd.DataFrame, batch_size: int, progress: bool = False) -> np.ndarray:
        """p(same item) per pair, each distinct item (its `reads` fields) embedded once. Call in
        eval mode under inference_mode; `predict_pairs` uses it."""
        from tqdm.auto import tqdm

        from ..backbones import batch_to

        fields = self.item_fields(pairs, None)
        keys = list(zip(*(fields[k] for k in self.reads)))
        unique = list(dict.fromkeys(keys))
        position = {key: i for i, key in enumerate(unique)}
        device = next(self.parameters()).device
        vectors = []
        for start in tqdm(range(0, len(unique), batch_size), disable=not progress, desc="embed", leave=False):
            chunk = unique[start:start + batch_size]
            batch = self.encode_items({name: [key[j] for key in chunk] for j, name in enumerate(self.reads)})
            vectors.append(self.embed_items(batch_to(batch, device)))
        table = torch.cat(vectors)
        index = torch.as_tensor([position[k] for k in keys], device=device)
        n = len(pairs)
        a, b = index[:n], index[n:]
        probs = [self.head(table[a[s:s + batch_size]], table[b[s:s + batch_size]]).prob for s in range(0, n, batch_size)]
        return torch.cat(probs).double().cpu().numpy()


@register_pair_model("two_tower")
class TwoTower(TextPairModel, TowerPairModel):
    """Shared transformer per item (``title [SEP] pvs``) -> pooled u, v -> head (projection / similarity / adaptive)."""

    def build_encoder(self, *, pretrained: bool, assets) -> None:
        super().build_encoder(pretrained=pretrained, assets=assets)
        self.item_dim = self.hidden_size

    def encode_items(self, fields: dict[str, list]) -> dict:
        segments = [fields["title"]] if self.config.pvs_mode == "none" else [fields["title"], fields["pvs"]]
        return {"items": pack_segments(self.tokenizer, segments, self.config.max_length)}

    def embed_items(self, inputs: dict) -> Tensor:
        """Pooled vectors of the packed items (a then b)."""
        return self.pool(inputs["items"])


def two_tower(model: str | None = None, **options) -> TwoTower:
    """A two-tower pair model over the local model folder `model` (None: the shipped MiniLM)."""
    return build_pair_model(PairModelConfig(kind="two_tower", model=model, **options))
