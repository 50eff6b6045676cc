"""Leaf registry of embedding methods: name -> `Embedder` class (timm's ``_registry.py`` pattern).

The package's modules register themselves on import (`prodmatch.embedders` imports them all);
nothing here imports them, so any module may import this one.
"""
from __future__ import annotations

from ..errors import DataError
from ..registry import registrar

_EMBEDDERS: dict[str, type] = {}

register_embedder = registrar(_EMBEDDERS, "name")
"""Class decorator ``@register_embedder(name)``: an `Embedder` buildable as ``get_embedder(name)``."""


def embedder_names(*, trained: bool | None = None) -> list[str]:
    """Registered method names (``trained=False``: only those fitted on the data itself)."""
    return sorted(n for n, cls in _EMBEDDERS.items() if trained is None or cls.trained == trained)


def embedder_class(name: str) -> type:
    """The class registered as `name`; DataError naming the known methods otherwise."""
    if name not in _EMBEDDERS:
        raise DataError(f"unknown embedding method {name!r}; known: {', '.join(embedder_names())}")
    return _EMBEDDERS[name]
