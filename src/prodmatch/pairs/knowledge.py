"""PKGM-style knowledge vectors (seed 000 5.1.3, `pkgm_large`): TransE triple embeddings (item,
property, value) pre-trained with PyKEEN over every item bound to the model, then a cross-encoder that
reads each item's knowledge vectors as extra input positions after the pair text. An item's vectors
are the TransE queries ``h_item + r_key`` for the `max_pvs` most frequent keys of its category, so
they carry what the graph predicts for keys the listing leaves out (PKGM's "service vectors")."""
from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import DataError
from ..extras import require
from .base import ASSETS, PairModelConfig, PairOutput, register_pair_model
from .cross_encoder import CrossEncoder
from .item_tables import item_positions, load_item_table, pair_item_ids, save_item_table
from .pvs import PVS_FIELDS, key_frequencies, merge_pvs

KNOWLEDGE_TABLE = "knowledge"
NO_KEY = "<value>"  # the relation of a pvs entry without a key


@dataclass(frozen=True)
class KnowledgeOptions:
    """TransE pre-training: `dim` embedding size, `epochs` over the triples in batches of
    `batch_size`, Adam at `lr`, `negatives` corrupted triples per true one; `max_pvs` knowledge
    positions per item (seed 000: 30)."""

    dim: int = 64
    epochs: int = 30
    batch_size: int = 1024
    lr: float = 0.01
    negatives: int = 4
    max_pvs: int = 30

    def problems(self) -> list[str]:
        if min(self.dim, self.epochs, self.batch_size, self.negatives, self.max_pvs) < 1 or self.lr <= 0:
            return ["knowledge: dim, epochs, batch_size, negatives, max_pvs >= 1 and lr > 0 needed"]
        return []


@dataclass(frozen=True)
class PkgmConfig(PairModelConfig):
    """The cross-encoder's fields plus `knowledge` (`KnowledgeOptions`)."""

    kind: Literal["pkgm"] = "pkgm"
    knowledge: KnowledgeOptions = field(default_factory=KnowledgeOptions)

    def problems(self) -> list[str]:
        return super().problems() + self.knowledge.problems()


def item_triples(items: pd.DataFrame, fields=PVS_FIELDS) -> np.ndarray:
    """(n, 3) str array of ``(item:<id>, key, value:<value>)`` over the items' merged pvs, in table
    order; entities are prefixed so an id and a value never share a node."""
    ids = items["item_id"].astype(str)
    columns = [items[f] if f in items.columns else pd.Series(None, index=items.index, dtype=object) for f in fields]
    rows = [(f"item:{i}", k or NO_KEY, f"value:{v}") for i, *parts in zip(ids, *columns)
            for k, values in merge_pvs(*parts).items() for v in values]
    return np.asarray(rows, dtype=str).reshape(-1, 3)


def pretrain_transe(triples: np.ndarray, options: KnowledgeOptions, seed: int, progress: bool = False):
    """(entity -> row, relation -> row, entity embeddings, relation embeddings) of a TransE model
    trained with PyKEEN's sLCWA loop under `seed`."""
    require("pykeen", "the pkgm pair kind")
    from pykeen.models import TransE
    from pykeen.training import SLCWATrainingLoop
    from pykeen.triples import TriplesFactory

    if len(triples) == 0:
        raise DataError("pkgm: the items state no properties; there is no knowledge graph to pre-train")
    with torch.random.fork_rng(devices=[]), quiet_pykeen():
        torch.manual_seed(seed)
        factory = TriplesFactory.from_labeled_triples(triples)
        model = TransE(triples_factory=factory, embedding_dim=options.dim, random_seed=seed)
        loop = SLCWATrainingLoop(model=model, triples_factory=factory,
                                 optimizer=torch.optim.Adam(model.get_grad_params(), lr=options.lr),
                                 negative_sampler_kwargs={"num_negs_per_pos": options.negatives})
        loop.train(triples_factory=factory, num_epochs=options.epochs, batch_size=options.batch_size,
                   use_tqdm=progress, use_tqdm_batch=False)
        with torch.no_grad():
            entities = model.entity_representations[0](indices=None).detach().float().cpu()
            relations = model.relation_representations[0](indices=None).detach().float().cpu()
    return factory.entity_to_id, factory.relation_to_id, entities, relations


@contextlib.contextmanager
def quiet_pykeen():
    """PyKEEN's per-model INFO lines and its CPU DataLoader warnings (pin_memory, shuffling) left out."""
    logger = logging.getLogger("pykeen")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pin_memory.*")
            warnings.filterwarnings("ignore", message="Training instances are always shuffled", category=DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def knowledge_table(items: pd.DataFrame, entity_to_id: dict, relation_to_id: dict, entities: Tensor,
                    relations: Tensor, max_pvs: int, category: str = "cate_id") -> tuple[Tensor, Tensor]:
    """(n_items, max_pvs, dim) vectors ``h_item + r_key`` for the `max_pvs` most frequent keys of each
    item's category (ties by key), and the (n_items, max_pvs) mask of the filled positions."""
    freqs = key_frequencies(items, category=category)
    cats = items[category].fillna("").astype(str) if category in items.columns else pd.Series("", index=items.index)
    top = {cat: [relation_to_id[k or NO_KEY] for k in sorted(counts, key=lambda k: (-counts[k], k))
                 if (k or NO_KEY) in relation_to_id][:max_pvs] for cat, counts in freqs.items()}
    heads = np.array([entity_to_id.get(f"item:{i}", -1) for i in items["item_id"].astype(str)], dtype=np.int64)
    keys = np.full((len(items), max_pvs), -1, dtype=np.int64)
    for row, cat in enumerate(cats):
        ids = top.get(cat, [])
        keys[row, :len(ids)] = ids
    keys[heads < 0] = -1  # an item without properties has no entity, so no knowledge positions
    mask = torch.from_numpy(keys >= 0)
    table = entities[torch.from_numpy(heads.clip(0))][:, None, :] + relations[torch.from_numpy(keys.clip(0))]
    return table * mask[..., None], mask


@register_pair_model("pkgm")
class PkgmCrossEncoder(CrossEncoder):
    """``[CLS] title_a [SEP] pvs_a [SEP] title_b [SEP] pvs_b [SEP] K_a K_b``: the K positions are
    ``Linear(knowledge vector)`` (token type of their item), masked where an item has none."""

    config_class = PkgmConfig
    optional_modules = ("pykeen",)

    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        super().build_encoder(pretrained=pretrained, assets=assets)
        k = self.config.knowledge
        limit = getattr(self.backbone.config, "max_position_embeddings", None)
        if limit and self.config.max_length + 2 * k.max_pvs > limit:
            raise DataError(f"pkgm: max_length {self.config.max_length} + 2 x max_pvs {k.max_pvs} exceeds the "
                            f"model's max_position_embeddings={limit}")
        self.knowledge_proj = nn.Linear(k.dim, self.hidden_size)
        saved = load_item_table(assets, KNOWLEDGE_TABLE)
        if saved is not None:
            self.set_knowledge(saved[0]["table"], saved[0]["mask"], saved[1]["item_ids"])

    def set_knowledge(self, table: Tensor, mask: Tensor, item_ids: list[str]) -> None:
        device = self.knowledge_proj.weight.device
        self.register_buffer("knowledge", table.float().to(device), persistent=False)
        self.register_buffer("knowledge_mask", mask.bool().to(device), persistent=False)
        self.position = {item: i for i, item in enumerate(item_ids)}

    def bind_items(self, items: pd.DataFrame, progress: bool = False) -> None:
        k = self.config.knowledge
        entity_to_id, relation_to_id, entities, relations = pretrain_transe(item_triples(items), k, self.config.seed,
                                                                            progress)
        table, mask = knowledge_table(items, entity_to_id, relation_to_id, entities, relations, k.max_pvs)
        self.set_knowledge(table, mask, items["item_id"].astype(str).tolist())

    def save_assets(self, folder: Path) -> None:
        super().save_assets(folder)  # replaces folder/backbone whole, so the table goes in after it
        save_item_table(Path(folder) / ASSETS, KNOWLEDGE_TABLE,
                        {"table": self.knowledge, "mask": self.knowledge_mask}, {"item_ids": list(self.position)})

    def encode(self, pairs: pd.DataFrame, swap: np.ndarray | None = None) -> dict:
        if not hasattr(self, "position"):
            raise DataError("pkgm: call bind_items(items) before encoding pairs")
        ids_a, ids_b = pair_item_ids(pairs, swap)
        return {"text": super().encode(pairs, swap), "items": item_positions(ids_a + ids_b, self.position, "pkgm")}

    def forward(self, inputs: dict) -> PairOutput:
        text = dict(inputs["text"])
        embeds = self.backbone.get_input_embeddings()(text.pop("input_ids"))
        n = embeds.shape[0]
        rows = inputs["items"]
        vectors = self.knowledge_proj(self.knowledge[rows]).to(embeds.dtype)  # (2n, K, hidden)
        mask = self.knowledge_mask[rows].to(text["attention_mask"].dtype)
        k = vectors.shape[1]
        embeds = torch.cat([embeds, vectors[:n], vectors[n:]], dim=1)
        text["attention_mask"] = torch.cat([text["attention_mask"], mask[:n], mask[n:]], dim=1)
        if "token_type_ids" in text:
            types = text["token_type_ids"]
            text["token_type_ids"] = torch.cat([types, types.new_zeros(n, k), types.new_ones(n, k)], dim=1)
        hidden = self.backbone(inputs_embeds=embeds, **text).last_hidden_state
        return PairOutput(self.classifier(self.dropout(self.pool_fn(hidden, text["attention_mask"]))))
