"""One save/load contract for every model (encoders, pair models): weights as ``model.safetensors``,
the model's own assets (tokenizer, backbone config), then a JSON manifest written last, so a folder
holding a manifest is complete. Each family keeps its manifest name (encoder.json, pair_model.json)."""
from __future__ import annotations

import json
from pathlib import Path

from .errors import DataError

WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1


def save_model(model, folder, manifest: str, extra: dict | None = None) -> Path:
    """Write `model` (``kind``, ``config``, ``save_assets(folder)``) into `folder`: weights, assets,
    then `manifest` = {format, kind, config, **extra}, each file atomically."""
    from safetensors.torch import save_file

    from .config import to_dict
    from .weights import export_state
    from .io import atomic_path, write_json

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(export_state(model), str(tmp), metadata={"kind": model.kind, "format": str(FORMAT_VERSION)})
    model.save_assets(folder)
    write_json(folder / manifest, {"format": FORMAT_VERSION, "kind": model.kind, "config": to_dict(model.config),
                                   **(extra or {})})
    return folder


def read_manifest(folder, manifest: str, what: str) -> dict:
    """The manifest of a saved model: DataError when absent, unreadable, of another format version
    or without kind and config."""
    path = Path(folder) / manifest
    if not path.is_file():
        raise DataError(f"{folder}: not a saved {what} (no {manifest})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        meta["kind"], meta["config"]  # noqa: B018  (both must be present)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"{path}: not a valid {what} description ({err})") from None
    if meta.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise DataError(f"{path}: {what} format {meta.get('format')!r}, this version reads {FORMAT_VERSION}")
    return meta


def load_weights(model, folder):
    """`model` with the weights of ``folder/model.safetensors``, checked key by key; in eval mode."""
    from .weights import load_state, read_state_dict

    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise DataError(f"{folder}: {WEIGHTS_FILE} is missing")
    load_state(model, read_state_dict(path), what=str(path))
    return model.eval()
