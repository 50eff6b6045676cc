"""Image encoder: a timm backbone (NFNet in the Shopee gold solution) -> GeM/avg pooling -> Neck.

Backbones are always built with ``pretrained=False``; pretrained weights come only from a local
file (`ImageEncoderConfig.weights`), so nothing reaches for a model hub.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import Dataset
from torchvision.transforms import v2

from ..backbones import IMAGENET_MEAN, IMAGENET_STD, PLACEHOLDER_RGB, create_backbone, load_backbone_weights, read_rgb
from ..data.images import is_readable_image
from ..errors import DataError, preview
from ..layers import AvgPool, GeM, Neck
from .base import Encoder, check_labels, register_encoder

log = logging.getLogger(__name__)

UNREADABLE = -1  # training label of an image that fails to decode: the trainer drops the row


@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation; probabilities and strengths (0 turns one off). Eval only resizes."""

    random_resized_crop_scale: tuple[float, float] = (0.6, 1.0)
    hflip: float = 0.5
    color_jitter: float = 0.2
    blur: float = 0.1


@dataclass(frozen=True)
class ImageEncoderConfig:
    """A timm backbone by name, optional local backbone weights, pooling and the embedding neck."""

    backbone: str = "eca_nfnet_l1"
    weights: str | None = None  # local safetensors / torch checkpoint (file or folder) of the backbone
    image_size: int = 512
    pooling: Literal["gem", "avg"] = "gem"
    gem_p: float = 3.0
    dim: int = 512
    dropout: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.image_size < 8 or self.dim < 1 or not 0.0 <= self.dropout < 1.0 or self.gem_p <= 0:
            raise DataError(f"ImageEncoderConfig: need image_size >= 8, dim >= 1, 0 <= dropout < 1, gem_p > 0; "
                            f"got image_size={self.image_size}, dim={self.dim}, dropout={self.dropout}, gem_p={self.gem_p}")


POOLINGS: dict[str, Callable[[ImageEncoderConfig], nn.Module]] = {
    "gem": lambda config: GeM(config.gem_p),
    "avg": lambda config: AvgPool(),
}


def image_transforms(config: ImageEncoderConfig, mean, std, *, train: bool) -> v2.Compose:
    """PIL RGB image -> normalised float tensor (3, size, size); random augmentation when `train`."""
    size, aug = config.image_size, config.augment
    if train:
        steps = [
            v2.ToImage(),
            v2.RandomResizedCrop(size, scale=tuple(aug.random_resized_crop_scale), antialias=True),
            v2.RandomHorizontalFlip(aug.hflip),
        ]
        if aug.color_jitter > 0:
            steps.append(v2.ColorJitter(aug.color_jitter, aug.color_jitter, aug.color_jitter))
        if aug.blur > 0:
            steps.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 2.0))], p=aug.blur))
    else:
        steps = [v2.ToImage(), v2.Resize((size, size), antialias=True)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(steps)


class ImageDataset(Dataset):
    """(image tensor, label) per kept row; unreadable rows become a grey placeholder."""

    def __init__(self, paths: np.ndarray, ok: np.ndarray, labels: np.ndarray, rows: np.ndarray,
                 transform: Callable, image_size: int, skipped: int = 0, train: bool = False) -> None:
        self.paths, self.ok, self.labels = paths[rows], ok[rows], labels[rows]
        self.rows, self.skipped, self.train = rows, skipped, train
        self.transform, self.image_size = transform, image_size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        img = read_rgb(self.paths[i], self.image_size) if self.ok[i] else None
        label = int(self.labels[i])
        if img is None:
            if self.ok[i] and self.train:  # passed the header check, fails to decode (a truncated JPEG)
                log.warning("%s: image does not decode, skipped for training", self.paths[i])
                label = UNREADABLE
            elif self.ok[i]:
                log.warning("%s: unreadable image, using a grey placeholder", self.paths[i])
            img = Image.new("RGB", (self.image_size, self.image_size), PLACEHOLDER_RGB)
        return self.transform(img), label


@register_encoder("image")
class ImageEncoder(Encoder):
    """Images -> timm backbone feature map -> GeM/avg pooling -> Neck -> (B, dim)."""

    config_class = ImageEncoderConfig
    reads_images = True

    def __init__(self, config: ImageEncoderConfig = ImageEncoderConfig(), *, pretrained: bool = True) -> None:
        super().__init__(config)
        self.backbone = create_backbone(config.backbone)
        if pretrained and config.weights:
            load_backbone_weights(self.backbone, config.weights, config.backbone)
        self.pool = POOLINGS[config.pooling](config)
        self.neck = Neck(self.backbone.num_features, config.dim, config.dropout)
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        self.mean = tuple(cfg.get("mean") or IMAGENET_MEAN)
        self.std = tuple(cfg.get("std") or IMAGENET_STD)

    def features(self, images: Tensor) -> Tensor:
        return self.pool(self.backbone.forward_features(images))

    def dataset(self, frame: pd.DataFrame, *, train: bool, labels: np.ndarray | None = None) -> ImageDataset:
        """Rows with a missing/unreadable image (``image_ok`` False, or a failed header check) are
        skipped when `train`, else drawn as a grey placeholder; either way one warning."""
        if "image_path" not in frame.columns:
            raise DataError("image encoder: the frame has no image_path column; read it with an image "
                            "folder and image_policy 'error' or 'placeholder' (not 'text-only')")
        paths = frame["image_path"].astype(str).to_numpy()
        if "image_ok" in frame.columns:
            ok = frame["image_ok"].to_numpy(dtype=bool)
        else:
            ok = np.fromiter((is_readable_image(Path(p)) for p in paths), dtype=bool, count=len(paths))
        labels = check_labels(labels, len(frame))
        bad = np.flatnonzero(~ok)
        names = frame["image"] if "image" in frame.columns else pd.Series(paths)
        if train:
            rows = np.flatnonzero(ok)
            if len(bad):
                log.warning("%d of %d image(s) missing or unreadable, skipped for training: %s",
                            len(bad), len(paths), preview(names.iloc[bad]))
            if not len(rows):
                raise DataError(f"image encoder: none of the {len(paths)} images can be read; nothing to train on")
        else:
            rows = np.arange(len(paths))
            if len(bad):
                log.warning("%d of %d image(s) missing or unreadable, grey placeholders used: %s",
                            len(bad), len(paths), preview(names.iloc[bad]))
        transform = image_transforms(self.config, self.mean, self.std, train=train)
        return ImageDataset(paths, ok, labels, rows, transform, self.config.image_size,
                            skipped=len(bad) if train else 0, train=train)

    def placeholder_input(self) -> Tensor:
        """The (1, 3, size, size) batch an unreadable image becomes at inference."""
        size = self.config.image_size
        grey = Image.new("RGB", (size, size), PLACEHOLDER_RGB)
        return image_transforms(self.config, self.mean, self.std, train=False)(grey).unsqueeze(0)

    def collate(self, items: list) -> tuple[Tensor, Tensor]:
        images = torch.stack([image for image, _ in items])
        return images, torch.as_tensor([label for _, label in items], dtype=torch.long)
