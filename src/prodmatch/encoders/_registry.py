"""Leaf registry of neural encoder kinds: kind -> `Encoder` class (timm's ``_registry.py`` pattern).

`image.py` and `text.py` register themselves on import; `prodmatch.encoders.encoder_classes`
imports them. Nothing here imports them back.
"""
from __future__ import annotations

from ..registry import registrar

_ENCODERS: dict[str, type] = {}

register_encoder = registrar(_ENCODERS, "kind")
"""Class decorator ``@register_encoder(kind)``: an `Encoder` subclass buildable as ``create_encoder(kind)``."""
