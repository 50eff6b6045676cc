"""Embedding methods by name: TF-IDF (word, char), phash, trained fold encoders.

``get_embedder("tfidf").transform(frame)``; a new method is one module here with an
``@register_embedder(name)`` class, imported below (see the README's "Adding a method").
"""
from __future__ import annotations

from pathlib import Path

from ._registry import embedder_class, embedder_names, register_embedder
from .base import Embedder
from . import encoder, phash, tfidf  # noqa: E402,F401  (importing registers them)


def get_embedder(name: str, **options) -> Embedder:
    """A ready instance of the method registered as `name`."""
    return embedder_class(name)(**options)


def embedder_from_bundle(models_dir: Path, spec: dict, **options) -> Embedder:
    """The method of one bundle.json model entry (`Embedder.bundle_spec`)."""
    return embedder_class(spec.get("source", "")).from_bundle(Path(models_dir), spec, **options)


__all__ = ["Embedder", "embedder_class", "embedder_from_bundle", "embedder_names", "get_embedder",
           "register_embedder"]
