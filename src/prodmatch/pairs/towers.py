"""Two-tower pair models over item towers other than one transformer: the image tower (seed 000 5.2),
the TextCNN (5.1.1, trained from scratch) and the image + text multimodal tower (seed 002). Each kind
is a config + the branches it reads; heads, the pair loop and unique-item inference are shared."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import TOKEN_POOLINGS, AvgPool, GeM
from .base import PairHeadConfig, extend_tokenizer, load_text_backbone, pack_segments, register_pair_model, save_text_assets
from .two_tower import TowerPairModel

ITEM_FIELDS = ("title", "pvs", "image")


# ------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class ImageOptions:
    """The image branch: a timm backbone by name (``test_*`` / tiny ones on CPU), local weights only,
    GeM or average pooling; `hflip` the train-time flip chance; `keep_images` keeps decoded images
    in memory (n_items x 3 x image_size^2 bytes)."""

    backbone: str = "eca_nfnet_l0"
    weights: str | None = None
    image_size: int = 224
    pooling: Literal["gem", "avg"] = "gem"
    gem_p: float = 3.0
    hflip: float = 0.5
    keep_images: bool = True

    def problems(self) -> list[str]:
        bad = []
        if self.image_size < 8 or self.gem_p <= 0 or not 0.0 <= self.hflip <= 1.0:
            bad.append(f"image: need image_size >= 8, gem_p > 0, 0 <= hflip <= 1 (got {self.image_size}, "
                       f"{self.gem_p}, {self.hflip})")
        return bad


@dataclass(frozen=True)
class TowerConfig(PairHeadConfig):
    """Tower kinds read each item alone; `pvs_entries` caps its pvs text at the first entries
    (category-frequency order: seed 002 keeps the 10 most frequent keys), `pvs: none` drops it."""

    head: Literal["projection", "similarity", "adaptive"] = "similarity"
    pvs: Literal["own", "none"] = "own"
    pvs_entries: int = 10

    def problems(self) -> list[str]:
        bad = super().problems()
        if self.pvs_entries < 1:
            bad.append(f"pvs_entries={self.pvs_entries} < 1")
        return bad

    @property
    def pvs_mode(self) -> str:
        return self.pvs


@dataclass(frozen=True)
class ImageTowerConfig(TowerConfig):
    """Image two-tower: item vector = pooled backbone features of the item's main image."""

    kind: Literal["image_tower"] = "image_tower"
    image: ImageOptions = field(default_factory=ImageOptions)

    def problems(self) -> list[str]:
        return super().problems() + self.image.problems()


@dataclass(frozen=True)
class TextCnnConfig(TowerConfig):
    """TextCNN two-tower over title + pvs characters, trained from scratch: characters hashed by code
    point into `buckets` embeddings (no vocabulary to fit or save), convolutions of each of
    `kernel_sizes` with `filters` channels, max-pooled over the text."""

    kind: Literal["textcnn"] = "textcnn"
    buckets: int = 32768
    embed_dim: int = 128
    filters: int = 128
    kernel_sizes: tuple[int, ...] = (2, 3, 4)
    max_chars: int = 160

    def problems(self) -> list[str]:
        bad = super().problems()
        if self.buckets < 2 or self.embed_dim < 1 or self.filters < 1 or self.max_chars < 1:
            bad.append("buckets >= 2, embed_dim, filters and max_chars >= 1 needed")
        if not self.kernel_sizes or min(self.kernel_sizes) < 1:
            bad.append(f"kernel_sizes={self.kernel_sizes}: at least one size >= 1")
        return bad


@dataclass(frozen=True)
class MultimodalConfig(TowerConfig):
    """Multimodal two-tower (seed 002): image branch + transformer text branch (title [SEP] top pvs)
    concatenated and projected to `fusion_dim`; the self-adaptive-threshold head by default."""

    kind: Literal["multimodal"] = "multimodal"
    head: Literal["projection", "similarity", "adaptive"] = "adaptive"
    model: str | None = None
    max_length: int = 64
    pooling: Literal["cls", "mean"] = "mean"
    extend_vocab: bool = False
    fusion_dim: int = 256
    image: ImageOptions = field(default_factory=ImageOptions)

    def problems(self) -> list[str]:
        bad = super().problems() + self.image.problems()
        if self.max_length < 8 or self.fusion_dim < 1:
            bad.append(f"max_length={self.max_length} < 8 or fusion_dim={self.fusion_dim} < 1")
        return bad


# ------------------------------------------------------------------------------ branches
class ImageBranch(nn.Module):
    """uint8 images -> normalised (flipped at random in training) -> backbone -> pooled (B, dim)."""

    def __init__(self, options: ImageOptions, *, pretrained: bool) -> None:
        super().__init__()
        from ..backbones import IMAGENET_MEAN, IMAGENET_STD, create_backbone, load_backbone_weights
        from .images import ImageCache

        self.options = options
        self.backbone = create_backbone(options.backbone)
        if pretrained and options.weights:
            load_backbone_weights(self.backbone, options.weights, options.backbone)
        self.pool = GeM(options.gem_p) if options.pooling == "gem" else AvgPool()
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        self.register_buffer("mean", torch.tensor(cfg.get("mean") or IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std") or IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.dim = int(self.backbone.num_features)
        self.cache = ImageCache(options.image_size, options.keep_images)

    @property
    def pretrained(self) -> bool:
        return bool(self.options.weights)

    def encode(self, paths: list[str]) -> Tensor:
        return self.cache.batch(paths)

    def features(self, images: Tensor) -> Tensor:
        """The backbone's unpooled output: a (B, C, H, W) map (a ViT's (B, N, C) tokens)."""
        x = images.float() / 255.0
        if self.training and self.options.hflip > 0:
            flip = torch.rand(len(x), device=x.device) < self.options.hflip
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        x = (x - self.mean) / self.std
        return self.backbone.forward_features(x)

    def tokens(self, images: Tensor) -> Tensor:
        """(B, N, C) image tokens: the feature map's positions (N = H * W), row by row."""
        features = self.features(images)
        return features.flatten(2).transpose(1, 2) if features.dim() == 4 else features

    def forward(self, images: Tensor) -> Tensor:
        return self.pool(self.features(images))


class TextBranch(nn.Module):
    """title [SEP] pvs -> a local transformers backbone -> mean / cls pooled (B, hidden)."""

    def __init__(self, config: MultimodalConfig, *, pretrained: bool, assets: Path | None) -> None:
        super().__init__()
        self.config = config
        self.backbone, self.tokenizer = load_text_backbone(config.model, config.max_length, pretrained=pretrained,
                                                           assets=assets)
        self.pool_fn = TOKEN_POOLINGS[config.pooling]
        self.dim = int(self.backbone.config.hidden_size)

    def encode(self, titles: list[str], pvs: list[str]) -> dict:
        segments = [titles] if self.config.pvs_mode == "none" else [titles, pvs]
        return pack_segments(self.tokenizer, segments, self.config.max_length)

    def states(self, batch: dict) -> Tensor:
        """(B, T, hidden) last hidden states (padding included; `batch["attention_mask"]` marks it)."""
        return self.backbone(**batch).last_hidden_state

    def forward(self, batch: dict) -> Tensor:
        return self.pool_fn(self.states(batch), batch["attention_mask"])


class CharCnnBranch(nn.Module):
    """Characters (code point mod buckets; 0 pads) -> embedding -> Conv1d per kernel size -> ReLU ->
    max over the text's positions -> concatenated (B, filters x len(kernel_sizes))."""

    def __init__(self, config: TextCnnConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.buckets, config.embed_dim, padding_idx=0)
        self.convs = nn.ModuleList(nn.Conv1d(config.embed_dim, config.filters, k) for k in config.kernel_sizes)
        self.dim = config.filters * len(config.kernel_sizes)

    def char_ids(self, texts: list[str]) -> Tensor:
        """(B, T) ids, T = the longest text (cut to max_chars) but at least the widest kernel."""
        cut = [t[:self.config.max_chars] for t in texts]
        width = max([len(t) for t in cut] + [max(self.config.kernel_sizes)])
        ids = np.zeros((len(cut), width), dtype=np.int64)
        for row, text in enumerate(cut):
            ids[row, :len(text)] = [1 + ord(c) % (self.config.buckets - 1) for c in text]
        return torch.from_numpy(ids)

    def encode(self, titles: list[str], pvs: list[str]) -> Tensor:
        joined = titles if self.config.pvs_mode == "none" else [f"{t} {p}".strip() for t, p in zip(titles, pvs)]
        return self.char_ids(joined)

    def forward(self, ids: Tensor) -> Tensor:
        emb = self.embedding(ids).transpose(1, 2)  # (B, E, T)
        valid = (ids != 0)
        pooled = []
        for conv, k in zip(self.convs, self.config.kernel_sizes):
            h = F.relu(conv(emb))  # (B, F, T - k + 1)
            # a window counts when its first position is a character (texts are left-aligned);
            # an empty text pools to zeros
            mask = valid[:, :h.shape[-1]].unsqueeze(1)
            pooled.append(h.masked_fill(~mask, 0.0).amax(-1))
        return torch.cat(pooled, dim=-1)


def fusion_layer(in_dim: int, config: MultimodalConfig) -> nn.Sequential:
    """Dropout -> Linear(in_dim, fusion_dim) -> LayerNorm: a multimodal kind's item vector."""
    return nn.Sequential(nn.Dropout(config.dropout), nn.Linear(in_dim, config.fusion_dim),
                         nn.LayerNorm(config.fusion_dim))


# ------------------------------------------------------------------------------ models
@register_pair_model("image_tower")
class ImageTower(TowerPairModel):
    """Image two-tower (seed 000 5.2): the item is its main image."""

    config_class = ImageTowerConfig
    reads = ("image",)
    reads_images = True

    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        self.image = ImageBranch(self.config.image, pretrained=pretrained)
        self.item_dim = self.image.dim

    def pretrained_modules(self) -> list[nn.Module]:
        return [self.image.backbone] if self.image.pretrained else []

    def encode_items(self, fields: dict[str, list]) -> dict:
        return {"images": self.image.encode(fields["image"])}

    def embed_items(self, inputs: dict) -> Tensor:
        return self.image(inputs["images"])


@register_pair_model("textcnn")
class TextCnnTower(TowerPairModel):
    """TextCNN two-tower (seed 000 5.1.1) over title + pvs characters; no pretrained weights."""

    config_class = TextCnnConfig

    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        self.text = CharCnnBranch(self.config)
        self.dropout = nn.Dropout(self.config.dropout)
        self.item_dim = self.text.dim

    def encode_items(self, fields: dict[str, list]) -> dict:
        return {"chars": self.text.encode(fields["title"], fields["pvs"])}

    def embed_items(self, inputs: dict) -> Tensor:
        return self.dropout(self.text(inputs["chars"]))


@register_pair_model("multimodal")
class MultimodalTower(TowerPairModel):
    """Multimodal two-tower (seed 002): [image vector, text vector] -> Linear -> LayerNorm."""

    config_class = MultimodalConfig
    reads = ("title", "pvs", "image")
    reads_images = True

    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        self.image = ImageBranch(self.config.image, pretrained=pretrained)
        self.text = TextBranch(self.config, pretrained=pretrained, assets=assets)
        self.fuse = fusion_layer(self.image.dim + self.text.dim, self.config)
        self.item_dim = self.config.fusion_dim

    def pretrained_modules(self) -> list[nn.Module]:
        return [self.text.backbone] + ([self.image.backbone] if self.image.pretrained else [])

    def prepare(self, train_pairs: pd.DataFrame) -> dict:
        if not self.config.extend_vocab:
            return {"added_tokens": []}
        fields = self.item_fields(train_pairs, None)
        return {"added_tokens": extend_tokenizer(self.text.tokenizer, self.text.backbone,
                                                 fields["title"] + fields["pvs"], self.config.seed)}

    def save_assets(self, folder: Path) -> None:
        save_text_assets(folder, self.text.tokenizer, self.text.backbone)

    def encode_items(self, fields: dict[str, list]) -> dict:
        return {"images": self.image.encode(fields["image"]), "text": self.text.encode(fields["title"], fields["pvs"])}

    def embed_items(self, inputs: dict) -> Tensor:
        return self.fuse(torch.cat([self.image(inputs["images"]), self.text(inputs["text"])], dim=-1))
