"""GCN two-tower on the item-property graph (seed 000 5.3.1): nodes are items and property values, an
edge joins an item to each of its values and carries the property name; node features are frozen
text embeddings (an item's title, a value's text); a relational GCN (PyTorch Geometric ``RGCNConv``)
gives each item node its vector, trained on the pair labels through a two-tower head."""
from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from ..extras import require
from .base import PairHeadConfig, load_text_backbone, register_pair_model
from .item_tables import embed_texts, item_positions, load_item_table, save_item_table
from .pvs import PVS_FIELDS, merge_pvs
from .two_tower import TowerPairModel

GRAPH_TABLE = "graph"
OTHER_RELATION = "<other>"


@dataclass(frozen=True)
class GcnConfig(PairHeadConfig):
    """features: ``encoder`` (the frozen text encoder `model`, a local folder, None = the shipped
    MiniLM, reading `max_length` tokens, as seed 000) or ``char_tfidf`` (char 2-4-gram TF-IDF of the
    node texts reduced to `feature_dim` by truncated SVD: no pretrained weights, any script); `gcn_dim` node width, `layers` RGCN layers (residual), the
    `max_relations` most frequent property names each their own edge type (the rest share one),
    `bases` the RGCN basis decomposition (0: a full weight per relation); `learn_values` adds a
    trained embedding per value node, so items sharing a value (a model number) share a direction
    even where the frozen text encoder cannot read the value (a held-out item's values are mostly
    training items' values too)."""

    kind: Literal["gcn"] = "gcn"
    head: Literal["projection", "similarity", "adaptive"] = "similarity"
    features: Literal["encoder", "char_tfidf"] = "encoder"
    model: str | None = None
    feature_dim: int = 128
    max_length: int = 32
    gcn_dim: int = 128
    layers: int = 2
    max_relations: int = 32
    bases: int = 8
    feature_batch: int = 128
    learn_values: bool = True

    def problems(self) -> list[str]:
        bad = super().problems()
        sizes = (self.max_length, self.gcn_dim, self.layers, self.max_relations, self.feature_batch, self.feature_dim)
        if min(sizes) < 1 or self.bases < 0:
            bad.append("max_length, gcn_dim, layers, max_relations, feature_batch, feature_dim >= 1 and bases >= 0 "
                       "needed")
        return bad


@dataclass
class ItemGraph:
    """Nodes ``0 .. n_items-1`` are `item_ids` (table order), then one node per distinct value
    (first-appearance order). Edge e joins ``edge_index[:, e]``; type r < `slots` is item -> value
    under ``relations[r]``, r + `slots` the reverse value -> item edge (slots = max_relations + 1,
    fixed by the config, so the RGCN weights do not depend on the data)."""

    item_ids: list[str]
    item_titles: list[str]
    values: list[str]
    relations: list[str]
    edge_index: np.ndarray
    edge_type: np.ndarray
    slots: int

    @property
    def n_nodes(self) -> int:
        return len(self.item_ids) + len(self.values)

    def node_texts(self) -> list[str]:
        return self.item_titles + self.values


def item_graph(items: pd.DataFrame, max_relations: int, fields=PVS_FIELDS) -> ItemGraph:
    """The item-property graph of an items table (``item_id``, ``title``, pvs `fields`): a
    (key, value) an item states twice is one edge; keys ranked by how many items have them
    (ties by name), those past `max_relations` typed ``<other>``."""
    ids = items["item_id"].astype(str).tolist()
    titles = items["title"].fillna("").astype(str).tolist() if "title" in items.columns else [""] * len(ids)
    columns = [items[f] if f in items.columns else pd.Series(None, index=items.index, dtype=object) for f in fields]
    entries = [[(k, v) for k, values in merge_pvs(*parts).items() for v in values] for parts in zip(*columns)]
    key_counts = Counter(k for row in entries for k in dict.fromkeys(k for k, _ in row))
    ranked = sorted(key_counts, key=lambda k: (-key_counts[k], k))
    relations = ranked[:max_relations] + ([OTHER_RELATION] if len(ranked) > max_relations else [])
    relation_of = {k: min(i, max_relations) for i, k in enumerate(ranked)}
    value_of: dict[str, int] = {}
    src, dst, rel = [], [], []
    for item, row in enumerate(entries):
        for key, value in row:
            src.append(item)
            dst.append(len(ids) + value_of.setdefault(value, len(value_of)))
            rel.append(relation_of[key])
    src, dst, rel = (np.asarray(x, dtype=np.int64) for x in (src, dst, rel))
    slots = max_relations + 1
    return ItemGraph(ids, titles, list(value_of), relations,
                     np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])]),
                     np.concatenate([rel, rel + slots]), slots)


def tfidf_features(texts: list[str], dim: int, seed: int) -> Tensor:
    """(n, dim) float32 unit rows: char TF-IDF of `texts` -> truncated SVD (zero-padded when the
    vocabulary is smaller than `dim`)."""
    from sklearn.decomposition import TruncatedSVD

    from ..encoders.tfidf import TfidfConfig, tfidf_embed

    tfidf = tfidf_embed(texts, TfidfConfig.char())
    out = np.zeros((len(texts), dim), dtype=np.float32)
    k = min(dim, tfidf.shape[1] - 1, len(texts) - 1)
    if k >= 1:
        out[:, :k] = TruncatedSVD(n_components=k, random_state=seed).fit_transform(tfidf)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return torch.from_numpy(out)


@register_pair_model("gcn")
class GcnTower(TowerPairModel):
    """Two-tower over the item-property graph: features -> Linear -> `layers` x residual RGCNConv ->
    the item's node vector -> head. `bind_items` builds the graph and its node features (saved
    with the model: it scores pairs of the items it was bound to)."""

    config_class = GcnConfig
    reads = ("item",)
    optional_modules = ("torch_geometric",)

    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        saved = load_item_table(assets, GRAPH_TABLE)
        self._feature_encoder = None  # (backbone, tokenizer) as a tuple: not a submodule, never saved
        self.loaded_graph = saved is not None
        if saved is None and self.config.features == "char_tfidf":
            feature_dim = self.config.feature_dim
        elif saved is None:  # a fresh model: the text encoder waits for bind_items
            self._feature_encoder = load_text_backbone(self.config.model, self.config.max_length, pretrained=True,
                                                       assets=assets)
            feature_dim = int(self._feature_encoder[0].config.hidden_size)
        else:
            tensors, meta = saved
            feature_dim = int(tensors["features"].shape[1])
            self.set_graph(tensors["features"], tensors["edge_index"], tensors["edge_type"], meta["item_ids"],
                           meta)
        n_types = 2 * (self.config.max_relations + 1)  # ItemGraph.slots, both directions
        bases = self.config.bases if 0 < self.config.bases < n_types else None
        self.input = nn.Linear(feature_dim, self.config.gcn_dim)
        self.convs = nn.ModuleList(self._conv(n_types, bases) for _ in range(self.config.layers))
        self.dropout = nn.Dropout(self.config.dropout)
        self.item_dim = self.config.gcn_dim

    def _conv(self, n_types: int, bases: int | None) -> nn.Module:
        with warnings.catch_warnings():  # PyG's import-time torch.jit.script use (its issue, not the user's)
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
            RGCNConv = require("torch_geometric.nn", "the gcn pair kind").RGCNConv

        return RGCNConv(self.config.gcn_dim, self.config.gcn_dim, num_relations=n_types, num_bases=bases)

    def set_graph(self, features: Tensor, edge_index: Tensor, edge_type: Tensor, item_ids: list[str],
                  meta: dict) -> None:
        device = next(iter(self.parameters()), torch.empty(0)).device
        self.register_buffer("features", features.float().to(device), persistent=False)
        self.register_buffer("edge_index", edge_index.long().to(device), persistent=False)
        self.register_buffer("edge_type", edge_type.long().to(device), persistent=False)
        self.graph_meta = meta
        self.position = {item: i for i, item in enumerate(item_ids)}
        if self.config.learn_values:  # one row per value node: its size is the bound graph's
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed + 1)
                self.value_embedding = nn.Embedding(int(meta["n_values"]), self.config.gcn_dim).to(device)
                nn.init.normal_(self.value_embedding.weight, std=0.1)

    def bind_items(self, items: pd.DataFrame, progress: bool = False) -> None:
        if self.loaded_graph:
            raise DataError("gcn: this model was loaded with its graph; it cannot be bound to another item table")
        graph = item_graph(items, self.config.max_relations)
        if self.config.features == "char_tfidf":
            features = tfidf_features(graph.node_texts(), self.config.feature_dim, self.config.seed)
        else:
            backbone, tokenizer = self._feature_encoder
            features = embed_texts(backbone, tokenizer, graph.node_texts(), self.config.max_length,
                                   self.config.feature_batch, progress)
        meta = {"item_ids": graph.item_ids, "relations": graph.relations, "n_values": len(graph.values)}
        self.set_graph(features, torch.from_numpy(graph.edge_index), torch.from_numpy(graph.edge_type),
                       graph.item_ids, meta)

    def save_assets(self, folder: Path) -> None:
        from .base import ASSETS

        save_item_table(Path(folder) / ASSETS, GRAPH_TABLE, {"features": self.features, "edge_index": self.edge_index,
                                                             "edge_type": self.edge_type}, self.graph_meta)

    def encode_items(self, fields: dict[str, list]) -> dict:
        if not hasattr(self, "position"):
            raise DataError("gcn: call bind_items(items) before encoding pairs")
        return {"nodes": item_positions(fields["item"], self.position, "gcn")}

    def node_states(self) -> Tensor:
        x = self.input(self.features)
        if self.config.learn_values:
            n_items = len(self.position)
            x = torch.cat([x[:n_items], x[n_items:] + self.value_embedding.weight])
        x = self.dropout(F.relu(x))
        for conv in self.convs:
            x = x + self.dropout(F.relu(conv(x, self.edge_index, self.edge_type)))
        return x

    def embed_items(self, inputs: dict) -> Tensor:
        return self.node_states()[inputs["nodes"]]
