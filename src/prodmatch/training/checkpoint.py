"""Training checkpoints with exact resume: weights, optimizer and every RNG state, as safetensors + JSON."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from ..io import atomic_path, write_json

CHECKPOINT_JSON = "checkpoint.json"
CHECKPOINT_FORMAT = 1


def rng_state() -> dict:
    import torch

    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state().tolist(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _state_tensors(prefix: str, module) -> dict:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def _optimizer_split(optimizer) -> tuple[dict, dict]:
    """Optimizer state as (tensors for safetensors, JSON-able rest)."""
    import torch

    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_join(tensors: dict, meta: dict) -> dict:
    state: dict = {}
    for name, value in tensors.items():
        if not name.startswith("optim."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(out_dir: Path, *, modules: dict, optimizer, scaler, info: dict) -> Path:
    """Weights of `modules` (name -> nn.Module) + optimizer tensors to a new safetensors file,
    then the JSON that points at it (the commit point: a crash leaves the previous checkpoint)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_name = f"checkpoint-e{info['epoch']:03d}.safetensors"
    opt_tensors, opt_meta = _optimizer_split(optimizer)
    tensors = {k: v for name, module in modules.items() for k, v in _state_tensors(name, module).items()}
    tensors.update(opt_tensors)
    with atomic_path(out_dir / weights_name) as tmp:
        save_file(tensors, str(tmp), metadata={"format": str(CHECKPOINT_FORMAT)})
    info = {**info, "format": CHECKPOINT_FORMAT, "weights": weights_name, "optimizer": opt_meta,
            "scaler": scaler.state_dict() if scaler is not None else None}
    previous = read_checkpoint_info(out_dir)
    write_json(out_dir / CHECKPOINT_JSON, info)  # the commit point
    if previous and previous.get("weights") != weights_name:
        (out_dir / previous["weights"]).unlink(missing_ok=True)
    return out_dir / weights_name


def read_checkpoint_info(out_dir: Path) -> dict | None:
    path = Path(out_dir) / CHECKPOINT_JSON
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def check_resume(out_dir: Path, resume: bool, key: dict) -> dict | None:
    """The checkpoint info of `out_dir` (None: none yet), refused unless `resume` and unless every
    entry of `key` (what the run must share with it: config, classes) equals the checkpoint's."""
    existing = read_checkpoint_info(out_dir)
    if existing is None:
        return None
    if not resume:
        raise FileExistsError(f"{out_dir} holds a checkpoint (epoch {existing['epoch']}); "
                              "pass resume=True to continue it, or choose another folder")
    if any(existing.get(k) != v for k, v in key.items()):
        from ..errors import DataError

        raise DataError(f"{out_dir}: the checkpoint was made with other data or settings; "
                        "resume only with the same data and config")
    return existing


def load_checkpoint(out_dir: Path, *, modules: dict, optimizer, scaler) -> dict:
    """Restore `modules`, the optimizer (and loss scaler) from `out_dir`; returns the JSON state."""
    from safetensors.torch import load_file

    info = read_checkpoint_info(out_dir)
    if info is None:
        raise FileNotFoundError(f"{out_dir}: no {CHECKPOINT_JSON} to resume from")
    tensors = load_file(str(Path(out_dir) / info["weights"]))
    for prefix, module in modules.items():
        part = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        module.load_state_dict(part)
    optimizer.load_state_dict(_optimizer_join(tensors, info["optimizer"]))
    if scaler is not None and info.get("scaler"):
        scaler.load_state_dict(info["scaler"])
    return info
