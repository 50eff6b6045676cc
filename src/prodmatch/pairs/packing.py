"""Segment packing for the transformer pair kinds: several texts per row into one token sequence, each
cut to a fair share of `max_length`, special slots ([CLS] [SEP] [BOS] [IMG]) where a layout says; rules:
pairs/README.md."""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor

from ..errors import DataError


def unknown_characters(tokenizer, texts: Iterable[str]) -> list[str]:
    """The distinct non-space characters of `texts` that `tokenizer` turns into its [UNK] token."""
    unk = tokenizer.unk_token_id
    chars = sorted({c for text in texts if text for c in str(text) if not c.isspace()})
    if unk is None or not chars:
        return []
    ids = tokenizer(chars, add_special_tokens=False)["input_ids"]
    return [c for c, row in zip(chars, ids) if row == [unk]]


def fair_budgets(lengths: Sequence[int], total: int) -> list[int]:
    """Max-min fair token budgets: shortest first, each ``min(len, remaining // left)``."""
    n = len(lengths)
    budgets, remaining = [0] * n, max(0, int(total))
    for k, i in enumerate(sorted(range(n), key=lambda i: (lengths[i], i))):
        budgets[i] = min(int(lengths[i]), remaining // (n - k))
        remaining -= budgets[i]
    return budgets


def pack_segments(tokenizer, segments: Sequence[Sequence[str]], max_length: int,
                  type_ids: Sequence[int] | None = None) -> dict[str, Tensor]:
    """Batch of ``[CLS] s1 [SEP] s2 [SEP] ... sk [SEP]``, each segment cut to its fair budget.

    `segments`: k lists of B texts; `type_ids`: token type per segment (the [CLS] takes the first
    segment's, each [SEP] its segment's). Padded to the longest row; ``token_type_ids`` only
    when the tokenizer uses them.
    """
    types = list(type_ids) if type_ids is not None else [0] * len(segments)
    layout = [("cls", types[0] if segments else 0)]
    for s in range(len(segments)):
        layout += [(s, types[s]), ("sep", types[s])]
    return pack_layout(tokenizer, layout, segments, max_length)


def special_ids(tokenizer) -> dict[str, int]:
    """Ids of the layout's special tokens: cls / sep (else bos / eos), bos (else cls), pad, and img:
    a stand-in id (mask, else unk) whose embedding the model replaces by an image vector."""
    cls_id = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep_id = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if cls_id is None or sep_id is None:
        raise DataError(f"tokenizer {type(tokenizer).__name__} has neither cls/sep nor bos/eos tokens")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else cls_id
    img_id = next((i for i in (tokenizer.mask_token_id, tokenizer.unk_token_id) if i is not None), pad_id)
    return {"cls": cls_id, "sep": sep_id, "bos": bos_id, "pad": pad_id, "img": img_id}


def pack_layout(tokenizer, layout: Sequence[tuple[int | str, int]], segments: Sequence[Sequence[str]],
                max_length: int) -> dict[str, Tensor]:
    """Batch of rows laid out by `layout`: entries ``(segment index, token type)`` take that
    segment's tokens cut to its max-min fair budget, ``(special name, token type)`` one token of
    `special_ids`. Padded to the longest row; ``token_type_ids`` only when the tokenizer uses them;
    with ``img`` entries also ``image_slots`` (B, n_img): each row's positions of its [IMG] tokens."""
    k = len(segments)
    n = len(segments[0]) if k else 0
    n_special = sum(isinstance(entry, str) for entry, _ in layout)
    if max_length < n_special + k:
        raise DataError(f"max_length={max_length} leaves no room for {k} segments and {n_special} special tokens")
    ids_of = special_ids(tokenizer)
    budget = max_length - n_special
    tokens = [tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=budget)["input_ids"]
              if n else [] for texts in segments]
    rows, row_types, slots = [], [], []
    for r in range(n):
        cut = fair_budgets([len(tokens[s][r]) for s in range(k)], budget)
        ids, tt, img = [], [], []
        for entry, type_id in layout:
            if entry == "img":
                img.append(len(ids))
            piece = [ids_of[entry]] if isinstance(entry, str) else list(tokens[entry][r][:cut[entry]])
            ids += piece
            tt += [type_id] * len(piece)
        rows.append(ids)
        row_types.append(tt)
        slots.append(img)
    width = max((len(r) for r in rows), default=0)
    input_ids = torch.full((n, width), ids_of["pad"], dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    token_types = torch.zeros((n, width), dtype=torch.long)
    for r, (ids, tt) in enumerate(zip(rows, row_types)):
        input_ids[r, :len(ids)] = torch.tensor(ids)
        attention[r, :len(ids)] = 1
        token_types[r, :len(tt)] = torch.tensor(tt)
    batch = {"input_ids": input_ids, "attention_mask": attention}
    if "token_type_ids" in getattr(tokenizer, "model_input_names", ()):
        batch["token_type_ids"] = token_types
    if any(entry == "img" for entry, _ in layout):
        batch["image_slots"] = torch.tensor(slots, dtype=torch.long).view(n, -1)
    return batch
