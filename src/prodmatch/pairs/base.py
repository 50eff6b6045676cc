"""What every CCKS pair model shares (config, local backbones, segment packing, output), so a pair
model kind adds only its input encoding and head; packing rules: pairs/README.md."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Literal, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import DataError
from ..layers import TOKEN_POOLINGS
from ..encoders.text import load_hf_backbone, resolve_model_folder
from ..io import atomic_dir
from ..registry import registrar

ASSETS = "backbone"  # subfolder of a saved pair model: tokenizer + transformers config


@dataclass(frozen=True)
class PairModelConfig:
    """Architecture of a pair model (saved beside its weights; the training loss is a
    `PairTrainConfig` setting, not part of the model).

    kind: ``cross`` (one tower over the joined pair) or ``two_tower`` (shared encoder per item).
    model: local model folder; None = the shipped all-MiniLM-L6-v2.
    max_length: tokens of the whole pair sequence (cross) or of one item (two-tower).
    pooling: ``cls`` or ``mean`` of the last hidden states (None: cls for cross, mean for two-tower).
    head (two-tower): ``projection`` (MLP on [u, v, |u-v|, u*v] -> 2 logits, "matrix projection"),
        ``similarity`` (a vector similarity -> learnt affine -> logit) or ``adaptive`` (seed 002's
        self-adaptive threshold: positive when sim(f_a, f_b) > sim(g_a, g_b)). Cross: projection.
    similarity: ``cosine | inner | l1 | l2`` (similarity and adaptive heads).
    pvs: ``aligned`` (the pair's v3.4 alignment), ``own`` (each item's pvs alone), ``none``;
        ``auto`` = aligned for cross, own for two-tower (an item vector must not see its partner).
    swap_prob: chance a training pair is fed as (b, a) (symmetric augmentation).
    symmetric: at inference average the scores of (a, b) and (b, a).
    extend_vocab: before training, add the training texts' characters that the tokenizer maps to
        [UNK] as new tokens (e.g. Chinese characters an English vocabulary lacks), so the model can
        tell them apart; saved with the tokenizer.
    hidden / dim / dropout: projection-MLP width, adaptive embedding size, head dropout.
    seed: initialises the head (the backbone comes from the folder).
    """

    kind: Literal["cross", "two_tower"] = "cross"
    model: str | None = None
    max_length: int = 128
    pooling: Literal["cls", "mean"] | None = None
    head: Literal["projection", "similarity", "adaptive"] = "projection"
    similarity: Literal["cosine", "inner", "l1", "l2"] = "cosine"
    pvs: Literal["auto", "aligned", "own", "none"] = "auto"
    swap_prob: float = 0.5
    symmetric: bool = False
    extend_vocab: bool = False
    hidden: int = 256
    dim: int = 128
    dropout: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.max_length < 8:
            problems.append(f"max_length={self.max_length} < 8")
        if not 0.0 <= self.swap_prob <= 1.0:
            problems.append(f"swap_prob={self.swap_prob} not in [0, 1]")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout={self.dropout} not in [0, 1)")
        if self.hidden < 1 or self.dim < 1:
            problems.append("hidden and dim must be >= 1")
        if self.kind == "cross" and self.head != "projection":
            problems.append(f"the cross-encoder classifies by projection only, not head={self.head!r}")
        if self.kind == "cross" and self.pvs == "own":
            problems.append("pvs 'own' is for two-tower models; the cross-encoder reads 'aligned' or 'none'")
        if problems:
            raise DataError("PairModelConfig: " + "; ".join(problems))

    @property
    def has_item_vectors(self) -> bool:
        """Whether the model's output carries item vectors u, v (losses on the embeddings need them)."""
        return self.kind == "two_tower" and self.head != "adaptive"

    @property
    def pooling_mode(self) -> str:
        return self.pooling or ("cls" if self.kind == "cross" else "mean")

    @property
    def pvs_mode(self) -> str:
        if self.pvs != "auto":
            return self.pvs
        return "aligned" if self.kind == "cross" else "own"


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


# ------------------------------------------------------------------------------ packing
def unknown_characters(tokenizer, texts: Iterable[str]) -> list[str]:
    """The distinct non-space characters of `texts` that `tokenizer` turns into its [UNK] token."""
    unk = tokenizer.unk_token_id
    chars = sorted({c for text in texts if text for c in str(text) if not c.isspace()})
    if unk is None or not chars:
        return []
    ids = tokenizer(chars, add_special_tokens=False)["input_ids"]
    return [c for c, row in zip(chars, ids) if row == [unk]]


def fair_budgets(lengths: Sequence[int], total: int) -> list[int]:
    """Max-min fair token budgets: shortest first, each ``min(len, remaining // left)``."""
    n = len(lengths)
    budgets, remaining = [0] * n, max(0, int(total))
    for k, i in enumerate(sorted(range(n), key=lambda i: (lengths[i], i))):
        budgets[i] = min(int(lengths[i]), remaining // (n - k))
        remaining -= budgets[i]
    return budgets


def pack_segments(tokenizer, segments: Sequence[Sequence[str]], max_length: int,
                  type_ids: Sequence[int] | None = None) -> dict[str, Tensor]:
    """Batch of ``[CLS] s1 [SEP] s2 [SEP] ... sk [SEP]``, each segment cut to its fair budget.

    `segments`: k lists of B texts; `type_ids`: token type per segment (the [CLS] takes the first
    segment's, each [SEP] its segment's). Padded to the longest row; ``token_type_ids`` only
    when the tokenizer uses them.
    """
    k = len(segments)
    n = len(segments[0]) if k else 0
    n_special = k + 1
    if max_length < n_special + k:
        raise DataError(f"max_length={max_length} leaves no room for {k} segments and {n_special} special tokens")
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if cls_id is None or sep_id is None:
        raise DataError(f"tokenizer {type(tokenizer).__name__} has neither cls/sep nor bos/eos tokens")
    budget = max_length - n_special
    tokens = [tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
              if n else [] for texts in segments]
    types = list(type_ids) if type_ids is not None else [0] * k
    rows, row_types = [], []
    for r in range(n):
        segs = [tokens[s][r] for s in range(k)]
        cut = fair_budgets([len(t) for t in segs], budget)
        ids, tt = [cls_id], [types[0] if k else 0]
        for s in range(k):
            ids += list(segs[s][:cut[s]]) + [sep_id]
            tt += [types[s]] * (cut[s] + 1)
        rows.append(ids)
        row_types.append(tt)
    width = max((len(r) for r in rows), default=0)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    token_types = torch.zeros((n, width), dtype=torch.long)
    for r, (ids, tt) in enumerate(zip(rows, row_types)):
        input_ids[r, :len(ids)] = torch.tensor(ids)
        attention[r, :len(ids)] = 1
        token_types[r, :len(tt)] = torch.tensor(tt)
    batch = {"input_ids": input_ids, "attention_mask": attention}
    if "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
        batch["token_type_ids"] = token_types
    return batch


# ------------------------------------------------------------------------------ models
PAIR_MODELS: dict[str, type["PairModel"]] = {}


register_pair_model = registrar(PAIR_MODELS, "kind")


class PairModel(nn.Module):
    """Backbone + tokenizer + head; subclasses implement `encode` and `forward`."""

    kind: ClassVar[str] = ""

    def __init__(self, config: PairModelConfig, *, pretrained: bool = True,
                 assets: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.config = config
        folder = Path(assets) if assets is not None else resolve_model_folder(config.model)
        self.backbone, self.tokenizer, _ = load_hf_backbone(folder, pretrained=pretrained, what="pair model backbone")
        limit = getattr(self.backbone.config, "max_position_embeddings", None)
        if limit and config.max_length > limit:
            raise DataError(f"PairModelConfig.max_length={config.max_length} exceeds the model's "
                            f"max_position_embeddings={limit} ({folder})")
        self.hidden_size = int(self.backbone.config.hidden_size)
        self.pool_fn = POOLINGS[config.pooling_mode]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.build_head()
        self.train()

    # subclass API -----------------------------------------------------------------------
    def build_head(self) -> None:
        raise NotImplementedError

    def encode(self, pairs: pd.DataFrame, swap: np.ndarray | None = None) -> dict:
        """Tokenised model inputs for the rows of `pairs` (``swap[i]``: feed row i as (b, a))."""
        raise NotImplementedError

    def forward(self, inputs: dict) -> PairOutput:
        raise NotImplementedError

    # shared -----------------------------------------------------------------------------
    def pool(self, inputs: dict) -> Tensor:
        hidden = self.backbone(**inputs).last_hidden_state
        return self.pool_fn(hidden, inputs["attention_mask"])

    def sides(self, pairs: pd.DataFrame, swap: np.ndarray | None) -> tuple[list, list, list, list]:
        """(titles_a, pvs_a, titles_b, pvs_b) after swapping the rows flagged in `swap`."""
        mode = self.config.pvs_mode
        missing = [c for c in ("title_a", "title_b") if c not in pairs.columns]
        if missing:
            raise DataError(f"pair model: the pair frame lacks {missing}; build it with pair_frame(pairs, items)")
        n = len(pairs)
        empty = [""] * n

        def col(name: str) -> list[str]:
            if name not in pairs.columns:
                return list(empty)
            return ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in pairs[name].tolist()]

        ta, tb = col("title_a"), col("title_b")
        pa, pb = (col(f"{'own_' if mode == 'own' else ''}pvs_{s}") for s in "ab") if mode != "none" else (empty, empty)
        if swap is not None and np.any(swap):
            swap = np.asarray(swap, dtype=bool)
            ta, tb = [b if s else a for a, b, s in zip(ta, tb, swap)], [a if s else b for a, b, s in zip(ta, tb, swap)]
            pa, pb = [b if s else a for a, b, s in zip(pa, pb, swap)], [a if s else b for a, b, s in zip(pa, pb, swap)]
        return ta, pa, tb, pb

    def extend_vocabulary(self, texts: Iterable[str]) -> list[str]:
        """Add the characters of `texts` that tokenize to [UNK] as tokens; returns them (sorted).

        New embedding rows are drawn around the old rows' mean and covariance (transformers'
        mean resizing) under the model seed, so runs stay reproducible.
        """
        new = unknown_characters(self.tokenizer, texts)
        if new:
            self.tokenizer.add_tokens(new)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                self.backbone.resize_token_embeddings(len(self.tokenizer))
        return new

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        backbone = list(self.backbone.parameters())
        seen = {id(p) for p in backbone}
        return {"backbone": backbone, "head": [p for p in self.parameters() if id(p) not in seen]}

    def score(self, pairs: pd.DataFrame, batch_size: int = 64) -> np.ndarray:
        """p(same item) per row of a pair frame (see `predict_pairs`)."""
        from .inference import predict_pairs

        return predict_pairs(self, pairs, batch_size)

    def save_assets(self, folder: Path) -> None:
        """Tokenizer and transformers config into ``folder/backbone`` (replaced whole)."""
        with atomic_dir(Path(folder) / ASSETS) as tmp:
            self.tokenizer.save_pretrained(str(tmp))
            self.backbone.config.save_pretrained(str(tmp))


def build_pair_model(config: PairModelConfig | dict, *, pretrained: bool = True,
                     assets: str | os.PathLike | None = None) -> PairModel:
    """The pair model of ``config.kind`` (``cross`` or ``two_tower``)."""
    import importlib

    from ..config import load_config

    for module in ("cross_encoder", "two_tower"):  # importing registers them
        importlib.import_module(f"{__package__}.{module}")

    config = load_config(config, PairModelConfig)
    return PAIR_MODELS[config.kind](config, pretrained=pretrained, assets=assets)
