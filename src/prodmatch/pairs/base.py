"""What every CCKS pair model shares (config, local backbones, output, the kind registry), so a pair
model kind adds only its input encoding and head; segment packing lives in packing.py."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import DataError
from ..layers import TOKEN_POOLINGS
from ..backbones import load_hf_backbone, resolve_model_folder
from ..io import atomic_dir
from .packing import fair_budgets, pack_layout, pack_segments, special_ids, unknown_characters  # noqa: F401

ASSETS = "backbone"  # subfolder of a saved pair model: tokenizer + transformers config


@dataclass(frozen=True)
class PairHeadConfig:
    """What every pair model kind's config shares (each kind's config extends it; saved beside the
    weights; the training loss is a `PairTrainConfig` setting, not part of the model).

    head (two-tower kinds): ``projection`` (MLP on [u, v, |u-v|, u*v] -> 2 logits, "matrix
        projection"), ``similarity`` (a vector similarity -> learnt affine -> logit) or ``adaptive``
        (seed 002's self-adaptive threshold: positive when sim(f_a, f_b) > sim(g_a, g_b)).
    similarity: ``cosine | inner | l1 | l2`` (similarity and adaptive heads).
    swap_prob: chance a training pair is fed as (b, a) (symmetric augmentation).
    symmetric: at inference average the scores of (a, b) and (b, a).
    hidden / dim / dropout: projection-MLP width, adaptive embedding size, head dropout.
    seed: initialises the head and any tower trained from scratch (a pretrained backbone comes
        from its folder).
    """

    kind: str = "cross"
    head: Literal["projection", "similarity", "adaptive"] = "projection"
    similarity: Literal["cosine", "inner", "l1", "l2"] = "cosine"
    swap_prob: float = 0.5
    symmetric: bool = False
    hidden: int = 256
    dim: int = 128
    dropout: float = 0.1
    seed: int = 0

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when they are usable); kinds add theirs."""
        problems = []
        if not 0.0 <= self.swap_prob <= 1.0:
            problems.append(f"swap_prob={self.swap_prob} not in [0, 1]")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout={self.dropout} not in [0, 1)")
        if self.hidden < 1 or self.dim < 1:
            problems.append("hidden and dim must be >= 1")
        return problems

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise DataError(f"{type(self).__name__}: " + "; ".join(problems))

    @property
    def is_two_tower(self) -> bool:
        """Whether items are encoded apart (a then b) and compared by the head."""
        return True

    @property
    def has_item_vectors(self) -> bool:
        """Whether the model's output carries item vectors u, v (losses on the embeddings need them)."""
        return self.is_two_tower and self.head != "adaptive"

    @property
    def pvs_mode(self) -> str:
        """Which pvs text each item is read with: ``own`` (the item's alone) for two-tower kinds."""
        return "own"


@dataclass(frozen=True)
class PairModelConfig(PairHeadConfig):
    """The transformer kinds (`PairHeadConfig` fields and):

    kind: ``cross`` (one tower over the joined pair) or ``two_tower`` (shared encoder per item).
    model: local model folder; None = the shipped all-MiniLM-L6-v2.
    max_length: tokens of the whole pair sequence (cross) or of one item (two-tower).
    pooling: ``cls`` or ``mean`` of the last hidden states (None: cls for cross, mean for two-tower).
    pvs: ``aligned`` (the pair's v3.4 alignment), ``own`` (each item's pvs alone), ``none``;
        ``auto`` = aligned for cross, own for two-tower (an item vector must not see its partner).
    extend_vocab: before training, add the training texts' characters that the tokenizer maps to
        [UNK] as new tokens (e.g. Chinese characters an English vocabulary lacks), so the model can
        tell them apart; saved with the tokenizer.
    """

    kind: Literal["cross", "two_tower"] = "cross"
    model: str | None = None
    max_length: int = 128
    pooling: Literal["cls", "mean"] | None = None
    pvs: Literal["auto", "aligned", "own", "none"] = "auto"
    extend_vocab: bool = False

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.max_length < 8:
            problems.append(f"max_length={self.max_length} < 8")
        if not self.is_two_tower and self.head != "projection":
            problems.append(f"the cross-encoder classifies by projection only, not head={self.head!r}")
        if not self.is_two_tower and self.pvs == "own":
            problems.append("pvs 'own' is for two-tower models; the cross-encoder reads 'aligned' or 'none'")
        return problems

    @property
    def is_two_tower(self) -> bool:
        return self.kind == "two_tower"

    @property
    def pooling_mode(self) -> str:
        return self.pooling or ("mean" if self.is_two_tower else "cls")

    @property
    def pvs_mode(self) -> str:
        if self.pvs != "auto":
            return self.pvs
        return "own" if self.is_two_tower else "aligned"


@dataclass
class PairOutput:
    """Model output: 2-class `logits` (B, 2); item vectors `u`, `v` for two-tower models;
    `extra` holds head internals (``sim``, ``threshold``)."""

    logits: Tensor
    u: Tensor | None = None
    v: Tensor | None = None
    extra: dict = field(default_factory=dict)

    @property
    def z(self) -> Tensor:
        """Decision logit: p(label 1) = sigmoid(z); positive iff z > 0."""
        return self.logits[:, 1] - self.logits[:, 0]

    @property
    def prob(self) -> Tensor:
        return torch.softmax(self.logits.float(), dim=-1)[:, 1]


# ------------------------------------------------------------------------------ pooling


POOLINGS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {m: TOKEN_POOLINGS[m] for m in ("cls", "mean")}


# ------------------------------------------------------------------------------ models
from ._registry import PAIR_MODELS, register_pair_model  # noqa: E402,F401  (re-exported: kind modules import it here)


class PairModel(nn.Module):
    """A pair model kind: its config class, `build_encoder` (towers / backbone), `build_head`,
    `encode` (pair frame -> tensors) and `forward` (-> `PairOutput`). The encoder is built under
    the config seed, the head under a fresh fork of it, so either can change without moving the other."""

    kind: ClassVar[str] = ""
    config_class: ClassVar[type] = PairModelConfig
    reads_images: ClassVar[bool] = False  # its pair frames need image_a / image_b paths
    optional_modules: ClassVar[tuple[str, ...]] = ()  # libraries of a pip extra it needs (prodmatch.extras)

    def __init__(self, config: PairHeadConfig, *, pretrained: bool = True,
                 assets: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.build_encoder(pretrained=pretrained, assets=Path(assets) if assets is not None else None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.build_head()
        self.train()

    # subclass API -----------------------------------------------------------------------
    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        """Backbones / towers; `assets` is a saved model's asset folder (then `pretrained` is False)."""

    def build_head(self) -> None:
        raise NotImplementedError

    def encode(self, pairs: pd.DataFrame, swap: np.ndarray | None = None) -> dict:
        """Model inputs for the rows of `pairs` (``swap[i]``: feed row i as (b, a))."""
        raise NotImplementedError

    def forward(self, inputs: dict) -> PairOutput:
        raise NotImplementedError

    def pretrained_modules(self) -> list[nn.Module]:
        """Modules that start from pretrained weights (trained at ``lr_backbone``); none by default."""
        return []

    def prepare(self, train_pairs: pd.DataFrame) -> dict:
        """Fit what the training data decides before training (e.g. vocabulary); returns facts
        for train_config.json."""
        return {}

    def bind_items(self, items: pd.DataFrame, progress: bool = False) -> None:
        """Take what the whole item table decides (a kind that reads a graph over all items builds
        it here; saved with `save_assets`); nothing by default. Called before `prepare`."""

    def save_assets(self, folder: Path) -> None:
        """Files besides the weights that rebuilding the model needs (tokenizer, config); none by default."""

    # shared -----------------------------------------------------------------------------
    def sides(self, pairs: pd.DataFrame, swap: np.ndarray | None) -> tuple[list, list, list, list]:
        """(titles_a, pvs_a, titles_b, pvs_b) after swapping the rows flagged in `swap`."""
        mode = self.config.pvs_mode
        missing = [c for c in ("title_a", "title_b") if c not in pairs.columns]
        if missing:
            raise DataError(f"pair model: the pair frame lacks {missing}; build it with pair_frame(pairs, items)")
        empty = [""] * len(pairs)
        ta, tb = text_column(pairs, "title_a"), text_column(pairs, "title_b")
        pa, pb = (text_column(pairs, f"{'own_' if mode == 'own' else ''}pvs_{s}") for s in "ab") \
            if mode != "none" else (empty, empty)
        (ta, tb), (pa, pb) = swap_sides(ta, tb, swap), swap_sides(pa, pb, swap)
        return ta, pa, tb, pb

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        backbone = [p for module in self.pretrained_modules() for p in module.parameters()]
        seen = {id(p) for p in backbone}
        return {"backbone": backbone, "head": [p for p in self.parameters() if id(p) not in seen]}


def text_column(pairs: pd.DataFrame, name: str) -> list[str]:
    """A pair-frame column as strings ("" for missing values or a missing column)."""
    if name not in pairs.columns:
        return [""] * len(pairs)
    return ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in pairs[name].tolist()]


def swap_sides(a: list, b: list, swap: np.ndarray | None) -> tuple[list, list]:
    """(a, b) with the entries of the rows flagged in `swap` exchanged."""
    if swap is None or not np.any(swap):
        return a, b
    swap = np.asarray(swap, dtype=bool)
    return [y if s else x for x, y, s in zip(a, b, swap)], [x if s else y for x, y, s in zip(a, b, swap)]


class TextPairModel(PairModel):
    """A pair model over a local transformers backbone + tokenizer (the cross-encoder, the text
    two-tower): `pool` reads the backbone, `extend_vocabulary` grows the tokenizer."""

    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        config = self.config
        self.backbone, self.tokenizer = load_text_backbone(config.model, config.max_length, pretrained=pretrained,
                                                           assets=assets)
        self.hidden_size = int(self.backbone.config.hidden_size)
        self.pool_fn = POOLINGS[config.pooling_mode]

    def pretrained_modules(self) -> list[nn.Module]:
        return [self.backbone]

    def pool(self, inputs: dict) -> Tensor:
        hidden = self.backbone(**inputs).last_hidden_state
        return self.pool_fn(hidden, inputs["attention_mask"])

    def prepare(self, train_pairs: pd.DataFrame) -> dict:
        added = self.extend_vocabulary(text for side in self.sides(train_pairs, None) for text in side) \
            if self.config.extend_vocab else []
        return {"added_tokens": added}

    def extend_vocabulary(self, texts: Iterable[str]) -> list[str]:
        """Add the characters of `texts` that tokenize to [UNK] as tokens (`extend_tokenizer`)."""
        return extend_tokenizer(self.tokenizer, self.backbone, texts, self.config.seed)

    def save_assets(self, folder: Path) -> None:
        save_text_assets(folder, self.tokenizer, self.backbone)


def load_text_backbone(model: str | None, max_length: int, *, pretrained: bool, assets: Path | None):
    """(backbone, tokenizer) of a local transformers folder (`assets` of a saved model, else `model`,
    None = the shipped MiniLM); DataError when `max_length` exceeds its position embeddings."""
    folder = assets if assets is not None else resolve_model_folder(model)
    backbone, tokenizer, _ = load_hf_backbone(folder, pretrained=pretrained, what="pair model backbone")
    limit = getattr(backbone.config, "max_position_embeddings", None)
    if limit and max_length > limit:
        raise DataError(f"max_length={max_length} exceeds the model's max_position_embeddings={limit} ({folder})")
    return backbone, tokenizer


def extend_tokenizer(tokenizer, backbone, texts: Iterable[str], seed: int) -> list[str]:
    """Add the characters of `texts` that tokenize to [UNK] as tokens; returns them (sorted).

    New embedding rows are drawn around the old rows' mean and covariance (transformers' mean
    resizing) under `seed`, so runs stay reproducible.
    """
    new = unknown_characters(tokenizer, texts)
    if new:
        tokenizer.add_tokens(new)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone.resize_token_embeddings(len(tokenizer))
    return new


def save_text_assets(folder: Path, tokenizer, backbone) -> None:
    """Tokenizer and transformers config into ``folder/backbone`` (replaced whole)."""
    with atomic_dir(Path(folder) / ASSETS) as tmp:
        tokenizer.save_pretrained(str(tmp))
        backbone.config.save_pretrained(str(tmp))


def pair_model_class(kind: str) -> type[PairModel]:
    """The pair model class registered as `kind`; DataError naming the closest and the known kinds
    otherwise, or the pip command of the extra the kind needs when that is not installed (before any work)."""
    from ..extras import check

    cls = PAIR_MODELS.get(kind)
    for module in cls.optional_modules:
        check(module, f"the {kind} pair kind")
    return cls


def pair_model_config(config: PairHeadConfig | dict | str):
    """The typed config of `config`'s kind (a dict or YAML names its ``kind``; default ``cross``)."""
    from ..config import from_dict, read_yaml

    if isinstance(config, PairHeadConfig):
        return config
    data = dict(config) if isinstance(config, dict) else read_yaml(config)
    return from_dict(pair_model_class(data.get("kind", "cross")).config_class, data)


def build_pair_model(config: PairHeadConfig | dict, *, pretrained: bool = True,
                     assets: str | os.PathLike | None = None) -> PairModel:
    """The pair model of ``config.kind`` (``cross``, ``two_tower``, or any registered kind)."""
    config = pair_model_config(config)
    return pair_model_class(config.kind)(config, pretrained=pretrained, assets=assets)
