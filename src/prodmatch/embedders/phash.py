"""The competition's image_phash column as a model: 64-bit codes, similarity 1 - Hamming / 64."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..similarity import phash_codes
from ._registry import register_embedder
from .base import Embedder

if TYPE_CHECKING:
    import pandas as pd


@register_embedder("phash")
class Phash(Embedder):
    kind = "phash"
    grid = np.round(1 - np.arange(0, 25) / 64, 4)  # every Hamming distance 0..24

    def transform(self, frame: pd.DataFrame):
        return phash_codes(frame["image_phash"])
