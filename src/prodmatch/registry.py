"""Name -> class registries filled by decorators (timm's `register_model` pattern)."""
from __future__ import annotations

from typing import Callable


def registrar(table: dict, attribute: str | None = None) -> Callable[[str], Callable]:
    """`register(name)` decorators that put the decorated object in `table` under `name`
    (and set ``obj.<attribute> = name`` when `attribute` is given)."""

    def register(name: str):
        def deco(obj):
            if attribute:
                setattr(obj, attribute, name)
            table[name] = obj
            return obj

        return deco

    return register
