"""CoCa-style multimodal two-tower (seed 000 5.4.2): text states cross-attend to the image tokens, pooled to one
item vector. K3M (5.4.3) is left out: weak in seed 000 (F1 0.7635), unstable pre-training; needs: pairs/README.md."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import DataError
from .base import register_pair_model
from .towers import ImageBranch, MultimodalConfig, MultimodalTower, TextBranch, fusion_layer


@dataclass(frozen=True)
class CocaConfig(MultimodalConfig):
    """CoCa two-tower: `cross_layers` decoder layers over the text states (title [SEP] top pvs), each
    self-attention then cross-attention to the image tokens; `cross_heads` (None: the text backbone's),
    feed-forward `ffn_factor` x hidden. Pooled (`pooling`) -> `fusion_dim` item vector -> head
    (similarity of the two multimodal vectors by default, as in seed 000)."""

    kind: Literal["coca"] = "coca"
    head: Literal["projection", "similarity", "adaptive"] = "similarity"
    cross_layers: int = 2
    cross_heads: int | None = None
    ffn_factor: int = 4

    def problems(self) -> list[str]:
        bad = super().problems()
        if self.cross_layers < 1 or self.ffn_factor < 1 or (self.cross_heads is not None and self.cross_heads < 1):
            bad.append(f"cross_layers, ffn_factor and cross_heads must be >= 1 (got {self.cross_layers}, "
                       f"{self.ffn_factor}, {self.cross_heads})")
        return bad


def token_count(image: ImageBranch) -> int:
    """Image tokens per image at the branch's image size: one forward of a grey image in eval mode
    (so batch-norm statistics stay untouched and no random number is drawn)."""
    size, was_training = image.options.image_size, image.training
    image.eval()
    with torch.no_grad():
        n = image.tokens(torch.full((1, 3, size, size), 128, dtype=torch.uint8)).shape[1]
    image.train(was_training)
    return int(n)


class ImageTokens(nn.Module):
    """(B, N, C) backbone tokens -> Linear -> LayerNorm to the text width, + a learnt position embedding
    (the LayerNorm keeps unnormalised CNN features at the scale of the text states)."""

    def __init__(self, in_dim: int, dim: int, n_tokens: int) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(in_dim, dim), nn.LayerNorm(dim))
        self.position = nn.Parameter(torch.randn(1, n_tokens, dim) * 0.02)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.project(tokens) + self.position


class MultimodalDecoder(nn.Module):
    """Pre-norm transformer decoder layers: text self-attention (padding masked), cross-attention to the
    image tokens, feed-forward; a final LayerNorm. No causal mask: CoCa's decoder is causal only for
    its captioning loss; this one is pooled into an embedding, so every text token may read the whole text."""

    def __init__(self, dim: int, config: CocaConfig, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise DataError(f"coca: text hidden size {dim} is not divisible by cross_heads={heads}")
        layer = nn.TransformerDecoderLayer(dim, heads, config.ffn_factor * dim, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerDecoder(layer, config.cross_layers, norm=nn.LayerNorm(dim))

    def forward(self, text: Tensor, attention_mask: Tensor, image: Tensor) -> Tensor:
        return self.layers(text, image, tgt_key_padding_mask=attention_mask == 0)


@register_pair_model("coca")
class CocaTower(MultimodalTower):
    """CoCa two-tower: item vector = pooled multimodal states of (title [SEP] pvs) x image tokens.
    Tokenizer, vocabulary extension, assets and the backbones' learning rate are the multimodal kind's."""

    config_class = CocaConfig

    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        config = self.config
        self.image = ImageBranch(config.image, pretrained=pretrained)
        self.text = TextBranch(config, pretrained=pretrained, assets=assets)
        heads = config.cross_heads or int(self.text.backbone.config.num_attention_heads)
        self.image_tokens = ImageTokens(self.image.dim, self.text.dim, token_count(self.image))
        self.decoder = MultimodalDecoder(self.text.dim, config, heads)
        self.fuse = fusion_layer(self.text.dim, config)
        self.item_dim = config.fusion_dim

    def multimodal_states(self, inputs: dict) -> Tensor:
        """(B, T, hidden) text states after cross-attending to the item's image tokens."""
        text = inputs["text"]
        image = self.image_tokens(self.image.tokens(inputs["images"]))
        return self.decoder(self.text.states(text), text["attention_mask"], image)

    def embed_items(self, inputs: dict) -> Tensor:
        pooled = self.text.pool_fn(self.multimodal_states(inputs), inputs["text"]["attention_mask"])
        return self.fuse(pooled)
