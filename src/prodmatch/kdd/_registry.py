"""Leaf registry of KDD ranking method kinds: kind -> `Method` class (filled by `prodmatch.kdd.methods`)."""
from __future__ import annotations

from ..registry import registrar

METHODS: dict[str, type] = {}
register_method = registrar(METHODS, "kind")
"""Class decorator ``@register_method(kind)``: a `Method` a config can name as ``kind``."""
