"""Leaf registry of KDD ranking method kinds: kind -> `Method` class. The built-in kinds register when
their modules are imported, on the registry's first lookup (the trained kinds import torch), so
reading or checking KDD files (`kdd.data`) stays torch-free."""
from __future__ import annotations

from ..registry import Registry

BUILTIN_MODULES = ("methods", "two_tower", "sentence_match", "word_match", "lgbm_rerank", "ensemble")

METHODS = Registry("method kind", attribute="kind", builtins=tuple(f"prodmatch.kdd.{m}" for m in BUILTIN_MODULES))
register_method = METHODS.register
"""Class decorator ``@register_method(kind)``: a `Method` a config can name as ``kind``."""


def builtin_methods() -> Registry:
    """`METHODS` with every built-in kind registered (imports their modules once)."""
    METHODS.names()
    return METHODS
