"""Leaf registry of CCKS member kinds: kind -> `Member` class (filled by `prodmatch.ccks.members`)."""
from __future__ import annotations

from ..registry import registrar

MEMBERS: dict[str, type] = {}
register_member = registrar(MEMBERS, "kind")
"""Class decorator ``@register_member(kind)``: a `Member` a config can name as ``kind``."""
