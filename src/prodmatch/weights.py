"""Offline weight loading: local safetensors or weights-only torch checkpoints, checked key by key.

Nothing here touches a model hub. A checkpoint that does not fit the module (another
architecture, another embedding size) is a `DataError` that names expected vs found shapes,
instead of torch's wall of missing keys.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import Tensor, nn

from .errors import DataError, preview

# Files looked for, in order, when a folder is given instead of a file.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pth", "model.pt", "checkpoint.pth")
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
# Wrapper keys of training checkpoints (timm, Lightning, plain torch), tried in order.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module")
# Prefixes added by DataParallel/DDP and torch.compile.
STRIP_PREFIXES = ("module.", "_orig_mod.")


def find_weights_file(path) -> Path:
    """`path` itself when a file; in a folder, the first of `WEIGHT_FILES`, else its only weights file."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"weights {str(path)!r}: no such file or folder")
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if len(found) == 1:
        return found[0]
    what = f"several candidates {preview(p.name for p in found)}" if found else "no weights file"
    raise DataError(f"weights folder {str(path)!r}: {what}; expected one of {', '.join(WEIGHT_FILES)}")


def read_state_dict(path) -> dict[str, Tensor]:
    """Tensors of a local weights file/folder on CPU: safetensors, or ``torch.load(weights_only=True)``
    with training-checkpoint wrappers (``state_dict``, ``model``, ...) and ``module.`` prefixes removed."""
    path = find_weights_file(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise DataError(f"{path}: not a readable safetensors file ({err})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: refused by torch.load(weights_only=True), it holds more than tensors "
                        f"({first}); re-save its state_dict, or convert it to safetensors") from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise DataError(f"{path}: not a readable torch checkpoint ({err})") from None
    return _clean(_unwrap(obj, path), path)


def _unwrap(obj, path: Path) -> Mapping:
    if not isinstance(obj, Mapping):
        raise DataError(f"{path}: expected a state dict, found a {type(obj).__name__}")
    while not _all_tensors(obj):
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping) and obj[k]), None)
        if inner is None:
            break
        obj = inner
    return obj


def _all_tensors(state: Mapping) -> bool:
    return all(isinstance(v, Tensor) for v in state.values())


def _clean(state: Mapping, path: Path) -> dict[str, Tensor]:
    if not state:
        raise DataError(f"{path}: the checkpoint holds no tensors")
    if not _all_tensors(state):
        others = [k for k, v in state.items() if not isinstance(v, Tensor)]
        raise DataError(f"{path}: no state dict found; {len(others)} non-tensor entries such as {preview(others, 3)} "
                        f"(wrapper keys tried: {', '.join(WRAPPER_KEYS)})")
    out = {}
    for key, value in state.items():
        for prefix in STRIP_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def select_prefix(state: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries under `prefix` with it removed, when there are any; else `state` unchanged
    (so a whole-encoder file can initialise just its backbone)."""
    picked = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return picked or dict(state)


def load_state(module: nn.Module, state: Mapping[str, Tensor], *, what: str,
               ignore: Iterable[str] = ()) -> None:
    """Load `state` into `module` strictly after checking names and shapes; keys starting with one
    of `ignore` are dropped first (a classifier the module does not have)."""
    ignore = tuple(ignore)
    state = {k: v for k, v in state.items() if not (ignore and k.startswith(ignore))}
    expected = module.state_dict()
    mismatched = [f"{k}: expected {tuple(expected[k].shape)}, found {tuple(v.shape)}"
                  for k, v in state.items() if k in expected and tuple(expected[k].shape) != tuple(v.shape)]
    mismatched.sort(key=lambda line: not line.split(":")[0].endswith("weight"))  # weights say the most
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if mismatched or missing or unexpected:
        parts = []
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): {'; '.join(mismatched[:3])}"
                         + (f" (+{len(mismatched) - 3} more)" if len(mismatched) > 3 else ""))
        if missing:
            parts.append(f"{len(missing)} missing key(s) {preview(missing, 3)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) {preview(unexpected, 3)}")
        raise DataError(f"{what}: weights do not fit {type(module).__name__} "
                        f"({len(expected)} tensors expected, {len(state)} found): " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def export_state(module: nn.Module) -> dict[str, Tensor]:
    """`module`'s state dict as contiguous CPU tensors with their own storage (safetensors refuses
    tensors that share memory, such as tied embeddings)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}
