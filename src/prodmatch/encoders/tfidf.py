"""TF-IDF title vectors (word or char n-grams), L2-normalised so a dot product is a cosine."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class TfidfConfig:
    """Word TF-IDF as in the Shopee baselines (binary, English stop words); char uses 2-4-grams."""

    analyzer: str = "word"
    ngram_range: tuple[int, int] = (1, 1)
    binary: bool = True
    stop_words: str | None = "english"
    min_df: int = 1
    max_features: int | None = None

    @classmethod
    def char(cls) -> "TfidfConfig":
        return cls(analyzer="char_wb", ngram_range=(2, 4), binary=False, stop_words=None, min_df=2)


def tfidf_embed(titles, config: TfidfConfig = TfidfConfig()) -> sp.csr_matrix:
    """Fit on `titles` and return their (n, vocab) float32 CSR matrix with unit rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # here: keeps `prodmatch.embedders` light

    vectorizer = TfidfVectorizer(
        analyzer=config.analyzer,
        ngram_range=config.ngram_range,
        binary=config.binary,
        stop_words=config.stop_words if config.analyzer == "word" else None,
        min_df=config.min_df,
        max_features=config.max_features,
        dtype=np.float32,
        lowercase=True,
    )
    try:
        return vectorizer.fit_transform(list(titles)).tocsr()
    except ValueError:  # every title empty or a stop word: no vocabulary
        return sp.csr_matrix((len(titles), 1), dtype="float32")
