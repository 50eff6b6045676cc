"""What the transductive pair kinds (graph, knowledge vectors) share: item ids from a pair frame, node
features from a frozen text encoder, and per-item tensor tables saved as assets of the model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..errors import DataError, preview
from .base import swap_sides, text_column

ITEM_COLUMNS = ("src_item_id", "tgt_item_id")


def pair_item_ids(pairs: pd.DataFrame, swap: np.ndarray | None) -> tuple[list[str], list[str]]:
    """(ids of items a, ids of items b) of a pair frame, the rows flagged in `swap` exchanged."""
    missing = [c for c in ITEM_COLUMNS if c not in pairs.columns]
    if missing:
        raise DataError(f"the pair frame lacks {missing}: a graph / knowledge kind looks items up by id")
    return swap_sides(text_column(pairs, ITEM_COLUMNS[0]), text_column(pairs, ITEM_COLUMNS[1]), swap)


def item_positions(ids: list[str], position: dict[str, int], what: str) -> Tensor:
    """Row of each id in a table bound with `bind_items`; DataError naming ids it never saw."""
    unknown = [i for i in dict.fromkeys(ids) if i not in position]
    if unknown:
        raise DataError(f"{what}: {len(unknown)} item id(s) not in the item table the model was bound to "
                        f"(bind_items; the model is transductive): {preview(unknown)}")
    return torch.as_tensor([position[i] for i in ids], dtype=torch.long)


@torch.no_grad()  # not inference_mode: the features feed a trained graph
def embed_texts(backbone, tokenizer, texts: list[str], max_length: int, batch_size: int = 128,
                progress: bool = False) -> Tensor:
    """(n, hidden) float32 mean-pooled last hidden states of a frozen transformers backbone,
    longest texts first so each batch pads little; rows in the order of `texts`."""
    from tqdm.auto import tqdm

    from ..layers import mean_pool

    was_training = backbone.training
    backbone.eval()
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = torch.empty(len(texts), int(backbone.config.hidden_size))
    for start in tqdm(range(0, len(texts), batch_size), desc="node features", disable=not progress, leave=False):
        rows = order[start:start + batch_size]
        batch = tokenizer([texts[i] or " " for i in rows], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        hidden = backbone(**batch).last_hidden_state
        out[torch.as_tensor(rows)] = mean_pool(hidden, batch["attention_mask"]).float()
    backbone.train(was_training)
    return out


def save_item_table(folder: Path, name: str, tensors: dict[str, Tensor], meta: dict) -> None:
    """``folder/name.safetensors`` (tensors) and ``folder/name.json`` (ids, names), each atomic."""
    from safetensors.torch import save_file

    from ..io import atomic_path, write_json

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / f"{name}.safetensors") as tmp:
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp))
    write_json(folder / f"{name}.json", meta)


def load_item_table(folder: Path | None, name: str) -> tuple[dict[str, Tensor], dict] | None:
    """What `save_item_table` wrote, or None when `folder` holds no such table."""
    from safetensors.torch import load_file

    if folder is None or not (folder / f"{name}.json").is_file():
        return None
    path = folder / f"{name}.safetensors"
    if not path.is_file():
        raise DataError(f"{folder}: {name}.json without {name}.safetensors (an incomplete saved model)")
    return load_file(str(path)), json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
