"""Stacking stage: pair-model ensembles (threshold sums, F1 votes), model soups, CCKS result files.

Names are served lazily from their submodules (PEP 562), so ``import prodmatch.stack`` imports
neither torch (soup) nor lightgbm (lgbm) until one of their names is used.
"""
from __future__ import annotations

_LAZY = {
    # ensemble.py
    "ENSEMBLES": "ensemble", "PairEnsemble": "ensemble", "ThresholdEnsemble": "ensemble", "F1Vote": "ensemble",
    "fit_thresholds": "ensemble", "strict_threshold": "ensemble", "member_scores": "ensemble",
    "unseen_mask": "ensemble", "unseen_in_folds": "ensemble", "make_ensemble": "ensemble",
    "ensemble_from_dict": "ensemble", "load_ensemble": "ensemble",
    # soup.py
    "uniform_soup": "soup", "greedy_soup": "soup", "soup_encoders": "soup", "check_compatible": "soup",
    # ccks_output.py
    "pair_score": "ccks_output", "write_result_file": "ccks_output", "read_result_file": "ccks_output",
    "score_result_file": "ccks_output", "predict_result_file": "ccks_output",
    "encode_decision_as_embeddings": "ccks_output", "write_decision_result": "ccks_output",
    "lookup_embeddings": "ccks_output",
    # ccks_run.py
    "ccks_run": "ccks_run", "CcksRunConfig": "ccks_run", "MemberConfig": "ccks_run", "MEMBERS": "ccks_run",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
