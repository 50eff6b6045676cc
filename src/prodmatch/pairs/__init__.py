"""Pair models: pvs alignment, cross-encoder / two-tower pair models, their training loop, unsupervised scorers.

Names are served lazily (PEP 562) so ``import prodmatch.pairs`` does not import torch.
"""
from __future__ import annotations

from ..registry import lazy_attributes

# Pair models (pvs alignment, cross-encoder, two-tower, their training loop).
_LAZY = {
    "align_pvs": "pvs", "key_frequencies": "pvs", "order_pvs": "pvs", "merge_pvs": "pvs", "pair_frame": "pvs",
    "PairModelConfig": "base", "PairOutput": "base", "build_pair_model": "base",
    "LOSSES": "losses", "make_loss": "losses",
    "CrossEncoder": "cross_encoder",
    "TwoTower": "two_tower", "SIMILARITIES": "two_tower", "HEADS": "two_tower",
    "PairTrainConfig": "pair_train", "PairFitResult": "pair_train", "fit_pair_model": "pair_train",
    "predict_pairs": "pair_train", "load_pair_model": "pair_train", "save_pair_model": "pair_train",
    "text_cosine": "unsupervised", "pvs_jaccard": "unsupervised",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
