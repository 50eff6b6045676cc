"""Leaf registry of pair model kinds: kind -> `PairModel` class (timm's ``_registry.py`` pattern).

The kind modules register themselves with ``@register_pair_model(kind)``; the built-in kinds are
declared here, so their names are known without importing torch (CCKS serves one member per kind)
and a kind's module is imported when the kind is first used.
"""
from __future__ import annotations

from ..registry import Registry

PAIR_MODELS = Registry("pair model kind", attribute="kind", builtins={
    "cross": "prodmatch.pairs.cross_encoder:CrossEncoder",
    "two_tower": "prodmatch.pairs.two_tower:TwoTower",
    "image_tower": "prodmatch.pairs.towers:ImageTower",
    "textcnn": "prodmatch.pairs.towers:TextCnnTower",
    "multimodal": "prodmatch.pairs.towers:MultimodalTower",
    "multimodal_cross": "prodmatch.pairs.mm_cross:MultimodalCrossEncoder",
    "coca": "prodmatch.pairs.coca:CocaTower",
    "gcn": "prodmatch.pairs.graph:GcnTower",
    "pkgm": "prodmatch.pairs.knowledge:PkgmCrossEncoder",
})

register_pair_model = PAIR_MODELS.register
"""Class decorator ``@register_pair_model(kind)``: a `PairModel` subclass ``build_pair_model`` finds by kind."""
