"""Word and character TF-IDF of titles: fitted on the frame it embeds (test on test, as on Kaggle)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import to_dict
from ..encoders.tfidf import TfidfConfig, tfidf_embed
from ._registry import register_embedder
from .base import Embedder

if TYPE_CHECKING:
    import pandas as pd


@register_embedder("tfidf")
class WordTfidf(Embedder):
    """Word uni/bi-grams, sublinear tf (`TfidfConfig`)."""

    kind = "sparse"

    def config(self) -> TfidfConfig:
        return TfidfConfig()

    def transform(self, frame: pd.DataFrame):
        return tfidf_embed(frame["title"], self.config())

    def settings(self) -> dict:
        return to_dict(self.config())


@register_embedder("tfidf-char")
class CharTfidf(WordTfidf):
    """Character n-grams within word boundaries (`TfidfConfig.char`): robust to spelling variants."""

    def config(self) -> TfidfConfig:
        return TfidfConfig.char()
