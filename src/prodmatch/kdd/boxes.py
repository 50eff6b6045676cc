"""A :class:`BoxChunk`'s rows as padded (rows x max_boxes) tensors for the box towers, built with one
gather per array (no loop over rows or boxes)."""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from .data import BoxChunk

POSITION_DIM = 5  # left / w, top / h, right / w, bottom / h, box area / image area


@dataclass(frozen=True)
class BoxBatch:
    """Padded boxes of B rows, at most M each (a row's first M boxes in file order): `labels` (B, M)
    long, `features` (B, M, F) float32, `positions` (B, M, 5) float32 (:data:`POSITION_DIM`), `mask`
    (B, M) bool (True = a real box). Padding is 0; an array the chunk did not decode is None."""

    labels: Tensor | None
    features: Tensor | None
    positions: Tensor | None
    mask: Tensor

    def to(self, device) -> "BoxBatch":
        return BoxBatch(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name).to(device)
                           for f in fields(self)})

    @property
    def lengths(self) -> Tensor:
        """(B,) long: boxes kept per row (0 for a box-less row)."""
        return self.mask.sum(1)


def box_positions(boxes: np.ndarray, image_h: np.ndarray, image_w: np.ndarray) -> np.ndarray:
    """(N, 4) boxes as the competition stores them, ``[top, left, bottom, right]`` in pixels, with
    each box's image height and width (N,) -> (N, 5) ``[left/w, top/h, right/w, bottom/h, area share]``."""
    h = np.asarray(image_h, np.float32).clip(min=1.0)
    w = np.asarray(image_w, np.float32).clip(min=1.0)
    top, left, bottom, right = (boxes[:, i].astype(np.float32) for i in range(4))
    area = (bottom - top).clip(min=0) * (right - left).clip(min=0) / (h * w)
    return np.stack([left / w, top / h, right / w, bottom / h, area], axis=1).astype(np.float32)


def ragged_positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ragged rows of `counts` items: each item's row and its position within that row."""
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    return np.repeat(np.arange(len(counts)), counts), np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


def padded_boxes(chunk: BoxChunk, rows=None, max_boxes: int = 12) -> BoxBatch:
    """Rows `rows` (positions in `chunk`; default all, repeats allowed) as a :class:`BoxBatch` of
    ``M = max_boxes`` columns; rows with more boxes keep their first `max_boxes`."""
    if max_boxes < 1:
        raise ValueError(f"max_boxes must be >= 1, got {max_boxes}")
    rows = np.arange(len(chunk)) if rows is None else np.asarray(rows, np.int64)
    starts = chunk.offsets[rows]
    counts = np.minimum(chunk.offsets[rows + 1] - starts, max_boxes)
    dst_row, within = ragged_positions(counts)  # each kept box's batch row and number within it
    src = np.repeat(starts, counts) + within  # the box in the chunk's flat arrays
    shape = (len(rows), max_boxes)

    def pad(flat: np.ndarray, dtype) -> np.ndarray:
        out = np.zeros(shape + flat.shape[1:], dtype)
        out[dst_row, within] = flat[src]
        return out

    mask = np.zeros(shape, bool)
    mask[dst_row, within] = True
    labels = None if chunk.class_labels is None else torch.from_numpy(pad(chunk.class_labels, np.int64))
    features = None if chunk.features is None else torch.from_numpy(pad(chunk.features, np.float32))
    positions = None
    if chunk.boxes is not None:
        box_rows = rows[dst_row]
        image = chunk.rows[["image_h", "image_w"]].to_numpy()[box_rows]
        flat = box_positions(chunk.boxes[src], image[:, 0], image[:, 1])
        positions = np.zeros(shape + (POSITION_DIM,), np.float32)
        positions[dst_row, within] = flat
        positions = torch.from_numpy(positions)
    return BoxBatch(labels, features, positions, torch.from_numpy(mask))
