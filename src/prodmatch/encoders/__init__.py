"""Models that turn postings into L2-normalised vectors (or, for phash, 64-bit codes).

Neural encoders are built by kind from a registry, like timm's ``create_model``:
``create_encoder("image", {"backbone": "eca_nfnet_l1"})``; `save_encoder` / `load_encoder`
write and read a folder with ``encoder.json`` and ``model.safetensors``. torch, timm and
transformers are imported on first use, so ``prodmatch.encoders.tfidf`` stays light.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from ..registry import lazy_attributes

if TYPE_CHECKING:
    from .base import Encoder

CONFIG_FILE = "encoder.json"
from ..saved_model import FORMAT_VERSION, WEIGHTS_FILE  # noqa: E402,F401  (re-exported)

# Names served lazily from submodules (PEP 562) so importing this package does not import torch.
_LAZY = {
    "Encoder": "base", "Neck": "base", "register_encoder": "_registry",
    "ArcFace": "arcface", "margin_at": "arcface", "class_size_margins": "arcface",
    "ImageEncoder": "image", "ImageEncoderConfig": "image", "AugmentConfig": "image",
    "TextEncoder": "text", "TextEncoderConfig": "text",
}


_lazy = lazy_attributes(__name__, _LAZY)


def __getattr__(name: str):
    if name == "ENCODER_CONFIGS":
        return {kind: cls.config_class for kind, cls in encoder_classes().items()}
    return _lazy(name)


def encoder_classes() -> dict:
    """Every registered encoder class by kind (importing the built-in ones registers them)."""
    from ._registry import ENCODERS

    return dict(ENCODERS.items())


def encoder_class(kind: str):
    """The encoder class registered as `kind`; DataError naming the known kinds otherwise."""
    from ._registry import ENCODERS

    return ENCODERS.get(kind)


def _config_for(cls, config):
    from ..config import load_config

    if config is None:
        return cls.config_class()
    if dataclasses.is_dataclass(config) and not isinstance(config, cls.config_class):
        raise DataError(f"{cls.kind} encoder: expected a {cls.config_class.__name__}, got {type(config).__name__}")
    return load_config(config, cls.config_class)


def create_encoder(kind: str, config=None, *, weights: str | Path | None = None) -> "Encoder":
    """A new encoder of `kind` ("image" | "text") from a config (dataclass, dict, YAML path or
    None for defaults); `weights` is a local file/folder with a whole encoder's state dict."""
    from ..weights import load_state, read_state_dict

    cls = encoder_class(kind)
    encoder = cls(_config_for(cls, config))
    if weights is not None:
        load_state(encoder, read_state_dict(weights), what=f"{weights} ({kind} encoder)")
    return encoder


def save_encoder(encoder: "Encoder", folder: str | Path) -> Path:
    """Write `encoder` into `folder` (`saved_model.save_model`: weights, assets, ``encoder.json`` last)."""
    from ..saved_model import save_model

    return save_model(encoder, folder, CONFIG_FILE, {"dim": encoder.dim})


def load_encoder(folder: str | Path) -> "Encoder":
    """The encoder `save_encoder` wrote into `folder`, in eval mode; no pretrained weights or
    model hub are touched, only the folder's own files."""
    from ..config import from_dict
    from ..saved_model import load_weights, read_manifest

    folder = Path(folder)
    meta = read_manifest(folder, CONFIG_FILE, "encoder")
    cls = encoder_class(meta["kind"])
    encoder = cls.from_saved(from_dict(cls.config_class, meta["config"], where=str(folder / CONFIG_FILE)), folder)
    return load_weights(encoder, folder)
