"""Model soups (uniform, greedy): average the weights of fine-tuned checkpoints of one architecture into
one model with the inference cost of one; averaging rules: encoders/README.md."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import torch
from torch import Tensor

from ..errors import DataError, preview
from ..registry import unknown

log = logging.getLogger(__name__)

StateDict = Mapping[str, Tensor]
SOUP_FILE = "soup.json"
# encoder.json config fields that only steer training (initial weights, regularisation,
# augmentation); checkpoints differing in them can still be souped. Everything else must match.
TRAINING_ONLY_FIELDS = frozenset({"weights", "dropout", "augment"})


def _label(names, i: int) -> str:
    return f"checkpoint {names[i]!r}" if names is not None else f"checkpoint {i}"


def check_compatible(state_dicts: Sequence[StateDict], names: Sequence[str] | None = None) -> None:
    """DataError naming the first key (in the first checkpoint's order) that is missing, extra,
    of another shape, or floating in one checkpoint and not in another."""
    if not state_dicts:
        raise DataError("soup: no checkpoints given")
    ref = state_dicts[0]
    if not ref:
        raise DataError(f"soup: {_label(names, 0)} holds no tensors")
    for i, state in enumerate(state_dicts[1:], start=1):
        for key, value in ref.items():
            if key not in state:
                raise DataError(f"soup: {_label(names, i)} lacks {key!r} (present in {_label(names, 0)})")
            other = state[key]
            if tuple(other.shape) != tuple(value.shape):
                raise DataError(f"soup: {key!r} has shape {tuple(other.shape)} in {_label(names, i)} "
                                f"but {tuple(value.shape)} in {_label(names, 0)}")
            if other.is_floating_point() != value.is_floating_point():
                raise DataError(f"soup: {key!r} is {other.dtype} in {_label(names, i)} "
                                f"but {value.dtype} in {_label(names, 0)}")
        extra = [k for k in state if k not in ref]
        if extra:
            raise DataError(f"soup: {_label(names, i)} has key(s) {preview(extra, 3)} absent from {_label(names, 0)}")


def _acc_dtype(t: Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


class _Sum:
    """Running float32 sums of the floating tensors of added checkpoints."""

    def __init__(self, first: StateDict) -> None:
        self.first = first
        self.sums = {k: v.detach().to("cpu", _acc_dtype(v), copy=True)
                     for k, v in first.items() if v.is_floating_point()}
        self.count = 1

    def plus(self, state: StateDict) -> "_Sum":
        out = _Sum.__new__(_Sum)
        out.first, out.count = self.first, self.count + 1
        out.sums = {k: s + state[k].detach().to("cpu", s.dtype) for k, s in self.sums.items()}
        return out

    def mean(self) -> dict[str, Tensor]:
        return {k: ((self.sums[k] / self.count).to(v.dtype) if k in self.sums else v.detach().cpu().clone())
                for k, v in self.first.items()}


def uniform_soup(state_dicts: Sequence[StateDict], names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The element-wise mean of `state_dicts` (see the module notes for dtypes and integer buffers)."""
    state_dicts = list(state_dicts)
    check_compatible(state_dicts, names)
    acc = _Sum(state_dicts[0])
    for state in state_dicts[1:]:
        acc = acc.plus(state)
    return acc.mean()


def greedy_soup(candidates: Sequence[StateDict] | Mapping[str, StateDict],
                evaluate: Callable[[dict[str, Tensor]], float],
                scores: Sequence[float] | None = None) -> tuple[dict[str, Tensor], list]:
    """Greedy soup: returns (soup state dict, chosen candidates in the order added).

    `evaluate(state_dict) -> float` is the held-out score (higher is better, e.g. OOF F1).
    `candidates` is a list (chosen = indices) or a name -> state dict mapping (chosen = names).
    `scores`: each candidate's own score when already known (saves one evaluation each)."""
    if isinstance(candidates, Mapping):
        keys, states = list(candidates), list(candidates.values())
    else:
        states = list(candidates)
        keys = list(range(len(states)))
    names = [str(k) for k in keys] if isinstance(candidates, Mapping) else None
    check_compatible(states, names)
    if scores is None:
        scores = [float(evaluate(uniform_soup([s]))) for s in states]
    elif len(scores) != len(states):
        raise DataError(f"greedy soup: {len(scores)} scores for {len(states)} candidates")
    scores = [float(s) for s in scores]
    if any(s != s for s in scores):
        nan = [keys[i] for i, s in enumerate(scores) if s != s]
        raise DataError(f"greedy soup: evaluate gave NaN for candidate(s) {preview(nan)}")
    order = sorted(range(len(states)), key=lambda i: -scores[i])  # stable: ties keep input order
    best = order[0]
    acc, best_score, chosen = _Sum(states[best]), float(scores[best]), [keys[best]]
    for i in order[1:]:
        trial = acc.plus(states[i])
        score = float(evaluate(trial.mean()))  # NaN compares False: the candidate is skipped
        if score >= best_score:
            acc, best_score = trial, score
            chosen.append(keys[i])
            log.info("greedy soup: %s scores %.6f with the soup -> kept", keys[i], score)
        else:
            log.info("greedy soup: %s scores %.6f with the soup (< %.6f) -> skipped", keys[i], score, best_score)
    return acc.mean(), chosen


# ---------------------------------------------------------------- encoder folders
def _architecture(meta: dict) -> dict:
    config = {k: v for k, v in meta.get("config", {}).items() if k not in TRAINING_ONLY_FIELDS}
    return {"kind": meta.get("kind"), "dim": meta.get("dim"), "config": config}


def _read_meta(folder: Path) -> dict:
    from ..encoders import CONFIG_FILE

    path = folder / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"soup: {folder} is not a saved encoder (no {CONFIG_FILE})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"soup: {path} is not valid JSON ({err.msg})") from None
    if not isinstance(meta, dict) or "kind" not in meta or not isinstance(meta.get("config"), dict):
        raise DataError(f"soup: {path} is not an encoder description (needs kind and config)")
    return meta


def _first_difference(a: dict, b: dict, prefix: str = "") -> str:
    for key in list(a) + [k for k in b if k not in a]:
        va, vb = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(va, dict) and isinstance(vb, dict):
            found = _first_difference(va, vb, f"{prefix}{key}.")
            if found:
                return found
        elif va != vb:
            return f"{prefix}{key}: {va!r} vs {vb!r}"
    return ""


def soup_encoders(folders: Sequence[str | os.PathLike], out_folder: str | os.PathLike,
                  method: str = "uniform", evaluate: Callable | None = None, *,
                  replace: bool = True) -> tuple[Path, list[Path]]:
    """Soup saved encoders of one architecture into `out_folder`; returns (out_folder, chosen folders).

    Architecture = ``kind``, ``dim`` and the config without `TRAINING_ONLY_FIELDS`; any other
    difference is a DataError naming the field. ``method="greedy"`` needs
    ``evaluate(encoder) -> float`` (higher is better), called with an eval-mode encoder holding
    the candidate weights. The output is the first folder's encoder (its config and assets, e.g. a
    tokenizer) with the soup's weights, written via `save_encoder` into a temporary sibling folder
    and renamed into place, plus ``soup.json`` recording sources and choice."""
    from ..encoders import WEIGHTS_FILE, load_encoder, save_encoder
    from ..weights import load_state, read_state_dict
    from ..io import atomic_dir, write_json

    folders = [Path(f) for f in folders]
    if not folders:
        raise DataError("soup: no encoder folders given")
    if method not in ("uniform", "greedy"):
        raise DataError(f"soup: {unknown('method', method, ('uniform', 'greedy'))}")
    if method == "greedy" and evaluate is None:
        raise DataError("soup: method 'greedy' needs an evaluate(encoder) -> score function")
    metas = [_read_meta(f) for f in folders]
    ref = _architecture(metas[0])
    for folder, meta in zip(folders[1:], metas[1:]):
        diff = _first_difference(ref, _architecture(meta))
        if diff:
            raise DataError(f"soup: {folder} is another architecture than {folders[0]} ({diff})")
    states = []
    for folder in folders:
        if not (folder / WEIGHTS_FILE).is_file():
            raise DataError(f"soup: {folder} has no {WEIGHTS_FILE}")
        states.append(read_state_dict(folder / WEIGHTS_FILE))
    names = [str(f) for f in folders]
    check_compatible(states, names)
    encoder = load_encoder(folders[0])  # architecture + assets of the first; weights replaced below

    if method == "uniform":
        soup, chosen = uniform_soup(states, names), list(range(len(folders)))
    else:
        def score_state(state: dict[str, Tensor]) -> float:
            load_state(encoder, state, what="soup candidate")
            return float(evaluate(encoder.eval()))

        soup, chosen = greedy_soup(states, score_state)
    load_state(encoder, soup, what="soup")

    out = Path(out_folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out, replace=replace) as tmp:
        save_encoder(encoder.eval(), tmp)
        write_json(tmp / SOUP_FILE, {"method": method, "sources": [str(f) for f in folders],
                                     "chosen": [str(folders[i]) for i in chosen]})
    return out, [folders[i] for i in chosen]
