"""Item images for pair models: decoded once per path to uint8 (3, s, s) tensors and kept, since
pair training reads each item's image in many pairs and epochs; missing or unreadable images
become the grey placeholder (counted, warned about once)."""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)


class ImageCache:
    """``batch(paths)`` -> uint8 (B, 3, size, size). ``keep=False`` decodes every time (catalogues
    whose images do not fit in memory: n_items x 3 x size^2 bytes)."""

    def __init__(self, size: int, keep: bool = True) -> None:
        self.size, self.keep = int(size), keep
        self._tensors: dict[str, Tensor] = {}
        self.unreadable: set[str] = set()

    def _decode(self, path: str) -> Tensor:
        from PIL import Image

        from ..backbones import PLACEHOLDER_RGB, read_rgb

        img = read_rgb(path, self.size) if path else None
        if img is None:
            if path and path not in self.unreadable:
                self.unreadable.add(path)
                log.warning("%s: image missing or unreadable, the grey placeholder is used", path)
            img = Image.new("RGB", (self.size, self.size), PLACEHOLDER_RGB)
        img = img.resize((self.size, self.size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()

    def get(self, path: str) -> Tensor:
        tensor = self._tensors.get(path)
        if tensor is None:
            tensor = self._decode(path)
            if self.keep:
                self._tensors[path] = tensor
        return tensor

    def batch(self, paths) -> Tensor:
        return torch.stack([self.get(str(p)) for p in paths]) if len(paths) else \
            torch.zeros((0, 3, self.size, self.size), dtype=torch.uint8)
