"""The `embed` stage for unsupervised methods: a method's train / test representation stored in a run."""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import DataError
from ..io import code_version, data_hashes
from ..data.folds import shopee_fold_ids
from ..data.shopee import load_shopee
from ._registry import embedder_names
from .tune import tune_baseline
from . import get_embedder


def embed_unsupervised(data_dir, method: str, out, *, n_folds: int = 5, fold_seed: int = 0,
                       name: str | None = None) -> dict:
    """Store a TF-IDF (sparse) or phash (uint64) model of train.csv / test.csv in run `out`.

    No labels are used, so every train row's "OOF" vector is its plain embedding; test vectors
    are fitted on test.csv alone. The rows table carries the folds of (`n_folds`, `fold_seed`)
    so the model sits in one run with trained models of the same folds. The F1 reported is the
    baseline's (threshold tuned on all train rows).
    """
    from ..store import rows_table, save_embeddings

    if method not in embedder_names(trained=False):
        raise DataError(f"unknown method {method!r}; choose from {', '.join(embedder_names(trained=False))}")
    started = time.time()
    data_dir = Path(data_dir)
    train, test = load_shopee(data_dir, "text-only")
    fold_of = shopee_fold_ids(train, n_folds, fold_seed)
    embedder = get_embedder(method)
    kind, oof = embedder.kind, embedder.transform(train)
    test_emb = None if test is None else embedder.transform(test)
    settings = embedder.settings()
    tuned = tune_baseline(train, method, embedding=oof)  # the matrix just built: no second TF-IDF fit
    meta = {"config": {"method": method, **settings, "n_folds": n_folds, "fold_seed": fold_seed},
            "code_version": code_version(), "data": data_hashes(data_dir), "data_dir": str(data_dir),
            "folds": list(range(n_folds)), "fold_f1": None, "oof_f1": float(tuned.scores.f1),
            "oof_threshold": tuned.threshold, "unsupervised": True,
            "wall_seconds": round(time.time() - started, 3), "partial": False}
    model_dir = save_embeddings(out, name or method, kind, oof, rows=rows_table(train, fold_of), test=test_emb, meta=meta)
    return {"run": str(out), "name": name or method, "model": str(model_dir), "kind": kind,
            "oof_f1": float(tuned.scores.f1), "oof_threshold": tuned.threshold, "seconds": meta["wall_seconds"]}
