"""Leaf registry of CCKS member kinds: kind -> `Member` class (filled by `prodmatch.ccks.members`,
imported on the registry's first lookup; every pair model kind is served by `members.PairMember`)."""
from __future__ import annotations

from ..registry import Registry

MEMBERS = Registry("member kind", attribute="kind", builtins="prodmatch.ccks.members")
register_member = MEMBERS.register
"""Class decorator ``@register_member(kind)``: a `Member` a config can name as ``kind``."""
