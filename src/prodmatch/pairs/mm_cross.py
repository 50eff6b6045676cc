"""Multimodal cross-encoder (seed 000 5.4.1, roberta+image): each item's image vector, projected to the
text model's hidden size, sits at an [IMG] position of one sequence holding both items' texts."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import DataError
from .base import PairModelConfig, PairOutput, pack_layout, register_pair_model, swap_sides, text_column
from .cross_encoder import CrossEncoder
from .towers import ImageBranch, ImageOptions

# [CLS] [IMG] [SEP] title_a [SEP] pvs_a [BOS] [IMG] [SEP] title_b [SEP] pvs_b [SEP]; item b's tokens type 1
IMAGE_LAYOUT = (("cls", 0), ("img", 0), ("sep", 0), (0, 0), ("sep", 0), (1, 0),
                ("bos", 1), ("img", 1), ("sep", 1), (2, 1), ("sep", 1), (3, 1), ("sep", 1))


@dataclass(frozen=True)
class MultimodalCrossConfig(PairModelConfig):
    """`PairModelConfig` of the cross-encoder plus the image branch (`towers.ImageOptions`)."""

    kind: Literal["multimodal_cross"] = "multimodal_cross"
    image: ImageOptions = field(default_factory=ImageOptions)

    def problems(self) -> list[str]:
        return super().problems() + self.image.problems()


@register_pair_model("multimodal_cross")
class MultimodalCrossEncoder(CrossEncoder):
    """The cross-encoder with the two images in its input: token embeddings at the [IMG] slots are
    replaced by ``Linear(image vector)``; position and token-type embeddings are added as usual."""

    config_class = MultimodalCrossConfig
    reads_images = True

    def build_encoder(self, *, pretrained: bool, assets: Path | None) -> None:
        super().build_encoder(pretrained=pretrained, assets=assets)
        self.image = ImageBranch(self.config.image, pretrained=pretrained)
        self.image_proj = nn.Linear(self.image.dim, self.hidden_size)

    def pretrained_modules(self) -> list[nn.Module]:
        return [self.backbone] + ([self.image.backbone] if self.image.pretrained else [])

    def encode(self, pairs: pd.DataFrame, swap: np.ndarray | None = None) -> dict:
        if "image_a" not in pairs.columns:
            raise DataError("multimodal_cross: the pair frame has no image_a / image_b; build it with "
                            "pair_frame(pairs, items) from items with an image_path column")
        ta, pa, tb, pb = self.sides(pairs, swap)
        image_a, image_b = swap_sides(text_column(pairs, "image_a"), text_column(pairs, "image_b"), swap)
        text = pack_layout(self.tokenizer, IMAGE_LAYOUT, [ta, pa, tb, pb], self.config.max_length)
        return {"text": text, "images": self.image.encode(image_a + image_b)}

    def forward(self, inputs: dict) -> PairOutput:
        text = dict(inputs["text"])
        slots = text.pop("image_slots")
        embeds = self.backbone.get_input_embeddings()(text.pop("input_ids"))
        images = self.image_proj(self.image(inputs["images"])).to(embeds.dtype)
        n = embeds.shape[0]
        rows = torch.arange(n, device=embeds.device)
        embeds = embeds.index_put((rows, slots[:, 0]), images[:n]).index_put((rows, slots[:, 1]), images[n:])
        hidden = self.backbone(inputs_embeds=embeds, **text).last_hidden_state
        return PairOutput(self.classifier(self.dropout(self.pool_fn(hidden, text["attention_mask"]))))
