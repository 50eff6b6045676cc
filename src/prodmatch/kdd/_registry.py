"""Leaf registry of KDD ranking method kinds: kind -> `Method` class (filled by the modules
`prodmatch.kdd` imports, imported on the registry's first lookup)."""
from __future__ import annotations

from ..registry import Registry

METHODS = Registry("method kind", attribute="kind", builtins="prodmatch.kdd")
register_method = METHODS.register
"""Class decorator ``@register_method(kind)``: a `Method` a config can name as ``kind``."""
