"""Leaf registry of embedding methods: name -> `Embedder` class (timm's ``_registry.py`` pattern).

The package's modules register themselves on import (`prodmatch.embedders` imports them all, and
the registry imports that package on its first lookup); nothing here imports them at import time,
so any module may import this one.
"""
from __future__ import annotations

from ..registry import Registry

EMBEDDERS = Registry("embedding method", attribute="name", builtins="prodmatch.embedders")

register_embedder = EMBEDDERS.register
"""Class decorator ``@register_embedder(name)``: an `Embedder` buildable as ``get_embedder(name)``."""


def embedder_names(*, trained: bool | None = None) -> list[str]:
    """Registered method names (``trained=False``: only those fitted on the data itself)."""
    return sorted(n for n, cls in EMBEDDERS.items() if trained is None or cls.trained == trained)


def embedder_class(name: str) -> type:
    """The class registered as `name`; DataError naming the closest and the known methods otherwise."""
    return EMBEDDERS.get(name)
