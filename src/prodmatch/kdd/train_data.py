"""train.tsv for the trained kinds: streamed through :func:`iter_tsv` up to `max_rows` rows (the real
file is 3M rows / 124 GB: never read whole), keeping only the decoded arrays a method needs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import DataError
from .data import ARRAYS, DEFAULT_CHUNK_ROWS, BoxChunk, concat_chunks, iter_tsv, locate


@dataclass(frozen=True)
class TrainSet:
    """Train rows, each a (product, query) positive: `chunk` (rows + decoded box arrays), the distinct
    query texts `queries` and each row's index into them, `query_codes` (n_rows,) int64."""

    path: Path
    chunk: BoxChunk
    queries: np.ndarray
    query_codes: np.ndarray

    def __len__(self) -> int:
        return len(self.chunk)

    @property
    def product_ids(self) -> np.ndarray:
        return self.chunk.rows["product_id"].to_numpy()


def head(chunk: BoxChunk, n: int) -> BoxChunk:
    """The first `n` rows of `chunk` (views of its arrays, offsets kept)."""
    if n >= len(chunk):
        return chunk
    end = int(chunk.offsets[n])
    arrays = {name: None if getattr(chunk, name) is None else getattr(chunk, name)[:end] for name in ARRAYS}
    return BoxChunk(chunk.rows.iloc[:n].reset_index(drop=True), chunk.offsets[: n + 1], **arrays)


def load_train(data_dir, *, decode=("features", "class_labels", "boxes"), max_rows: int | None = None,
               feature_dim: int = 2048, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> TrainSet:
    """The first `max_rows` rows (None: all) of `data_dir`'s train.tsv, decoding only `decode`."""
    path = locate(data_dir, "train.tsv")
    if path is None:
        raise DataError(f"{data_dir}: no train.tsv (looked in the folder and its train/ sub-folder); "
                        "a trained method needs it")
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be >= 1 or None, got {max_rows}")
    chunks, kept = [], 0
    chunk_rows = min(chunk_rows, max_rows or chunk_rows)  # a small cap reads no more than it keeps
    with tqdm(total=max_rows, desc="kdd train.tsv", unit="row", leave=False) as bar:
        for chunk in iter_tsv(path, chunk_rows=chunk_rows, feature_dim=feature_dim, decode=tuple(decode)):
            if max_rows is not None:
                chunk = head(chunk, max_rows - kept)
            chunks.append(chunk)
            kept += len(chunk)
            bar.update(len(chunk))
            if max_rows is not None and kept >= max_rows:
                break
    if not chunks or kept == 0:
        raise DataError(f"{path}: no train rows")
    chunk = concat_chunks(chunks)
    queries, codes = np.unique(chunk.rows["query"].to_numpy(object).astype(str), return_inverse=True)
    return TrainSet(path, chunk, queries.astype(object), codes.astype(np.int64))
