"""Leaf registry of KDD ranking method kinds: kind -> `Method` class. The built-in kinds register when
their modules are imported; `builtin_methods()` imports them on first need (the trained kinds import
torch), so reading or checking KDD files (`kdd.data`) stays torch-free."""
from __future__ import annotations

import importlib

from ..registry import registrar

METHODS: dict[str, type] = {}
register_method = registrar(METHODS, "kind")
"""Class decorator ``@register_method(kind)``: a `Method` a config can name as ``kind``."""

BUILTIN_MODULES = ("methods", "two_tower", "sentence_match", "word_match", "lgbm_rerank", "ensemble")


def builtin_methods() -> dict[str, type]:
    """`METHODS` with every built-in kind registered (imports their modules once)."""
    for name in BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    return METHODS
