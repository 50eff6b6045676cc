"""Stacking: the LightGBM stacker over candidate pairs, pair-model ensembles (threshold sums, F1 votes).

Names are served lazily from their submodules (PEP 562), so ``import prodmatch.stack`` does not
import lightgbm until one of its names is used.
"""
from __future__ import annotations

from ..registry import lazy_attributes

_LAZY = {
    # ensemble.py
    "ENSEMBLES": "ensemble", "PairEnsemble": "ensemble", "ThresholdEnsemble": "ensemble", "F1Vote": "ensemble",
    "fit_thresholds": "ensemble", "strict_threshold": "ensemble", "member_scores": "ensemble",
    "unseen_mask": "ensemble", "unseen_in_folds": "ensemble", "make_ensemble": "ensemble",
    "ensemble_from_dict": "ensemble", "load_ensemble": "ensemble",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
