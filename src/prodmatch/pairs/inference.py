"""Pair-model inference: p(same item) for a pair frame, batched, both orders when symmetric."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..backbones import batch_to
from ..errors import DataError

if TYPE_CHECKING:
    from .base import PairModel


def _device(model: PairModel) -> torch.device:
    return next(model.parameters()).device


_SWAP_COLUMNS = {f"{c}_{s}": f"{c}_{o}" for c in ("title", "pvs", "own_pvs", "cate", "image") for s, o in (("a", "b"), ("b", "a"))}


def predict_pairs(model: PairModel, pairs: pd.DataFrame, batch_size: int = 64, *,
                  progress: bool = False) -> np.ndarray:
    """p(same item) for each row of `pairs` (float64, shape (len(pairs),)); averages both orders
    when ``model.config.symmetric``. Runs under ``torch.inference_mode`` in eval mode and
    restores the model's training flag; an empty frame gives an empty array."""
    if len(pairs) == 0:
        return np.empty(0, dtype=np.float64)
    if batch_size < 1:
        raise DataError(f"predict_pairs: batch_size must be >= 1, got {batch_size}")
    from tqdm.auto import tqdm

    was_training = model.training
    device = _device(model)
    model.eval()
    orders = (False, True) if model.config.symmetric else (False,)
    out = np.zeros(len(pairs), dtype=np.float64)
    try:
        with torch.inference_mode():
            if hasattr(model, "predict_unique"):  # two-tower: each distinct item encoded once
                if model.config.symmetric:  # the head may be asymmetric (projection on [u, v, ...])
                    flipped = pairs.rename(columns=_SWAP_COLUMNS)
                    return (model.predict_unique(pairs, batch_size, progress)
                            + model.predict_unique(flipped, batch_size, progress)) / 2
                return model.predict_unique(pairs, batch_size, progress)
            for start in tqdm(range(0, len(pairs), batch_size), disable=not progress, desc="predict", leave=False):
                chunk = pairs.iloc[start:start + batch_size]
                for flip in orders:
                    swap = np.full(len(chunk), flip) if flip else None
                    prob = model(batch_to(model.encode(chunk, swap), device)).prob
                    out[start:start + len(chunk)] += prob.double().cpu().numpy() / len(orders)
    finally:
        model.train(was_training)
    return out
