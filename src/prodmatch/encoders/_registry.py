"""Leaf registry of neural encoder kinds: kind -> `Encoder` class (timm's ``_registry.py`` pattern).

`image.py` and `text.py` register themselves on import; the registry declares their kinds, so the
names are known (CLI choices) without importing torch, and imports a module when its kind is used.
"""
from __future__ import annotations

from ..registry import Registry

ENCODERS = Registry("encoder kind", attribute="kind", builtins={
    "image": "prodmatch.encoders.image:ImageEncoder",
    "text": "prodmatch.encoders.text:TextEncoder",
})

register_encoder = ENCODERS.register
"""Class decorator ``@register_encoder(kind)``: an `Encoder` subclass buildable as ``create_encoder(kind)``."""
