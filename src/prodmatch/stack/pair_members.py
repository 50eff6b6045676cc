"""Pair models as stacker features: a `prodmatch.pairs` model (the cross-encoder on the shipped MiniLM
by default) reads the two titles of a candidate pair jointly (model codes, quantities, variants),
which no embedding cosine, TF-IDF or string feature does. Its probability is one more column of the
candidate table, ``pair_<name>``.

Affordable on CPU because it scores only the pairs that can change a decision: each row's `top`
candidates by the best first-stage similarity (`decision_pairs`); the other pairs keep NaN, which
LightGBM routes as missing. For the OOF table it is trained out of fold on exactly the stacker's
folds (trained on the other folds' pairs, scoring fold f's: no score comes from a model that saw the
pair's label); for test time once more on every selected pair, saved with the stacker.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config import from_dict
from ..errors import DataError

log = logging.getLogger(__name__)
FOLDER = "pairs"  # <stack>/pairs/<name>/: the final model of each member (pairs' save format)


@dataclass(frozen=True)
class PairMemberConfig:
    """One pair model of the stacker: `kind` and `options` as a `pairs` model config, `train` as
    `pairs.pair_train.PairTrainConfig`, `top` candidates per row it scores."""

    name: str
    kind: str = "cross"
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    top: int = 3

    @property
    def column(self) -> str:
        return f"pair_{self.name}"

    def model_config(self):
        from ..pairs.base import pair_model_class

        options = {"pvs": "none", **self.options, "kind": self.kind}  # Shopee offers are titles only
        return from_dict(pair_model_class(self.kind).config_class, options, f"pair member {self.name!r} options")

    def train_config(self, progress: bool):
        from ..pairs.pair_train import PairTrainConfig

        return from_dict(PairTrainConfig, {**self.train, "progress": progress}, f"pair member {self.name!r} train")

    def check(self) -> None:
        """Every setting valid before any search or training."""
        if not self.name or "/" in self.name:
            raise DataError(f"pair member name {self.name!r}: a plain name is needed")
        self.model_config()
        self.train_config(False)


def sim_columns(names: list[str]) -> list[str]:
    return [f"{name}_sim" for name in names]


def decision_pairs(pairs: pd.DataFrame, columns: list[str], top: int) -> np.ndarray:
    """Mask of the pairs among the `top` best candidates of either of their rows, ranked by the best
    of `columns` (ties: the table's order): the pairs whose score can change a decision."""
    if not columns:
        raise DataError("the pair members rank candidates by model similarities: the stacker has none")
    best = pairs[columns].to_numpy(np.float32).max(axis=1)
    rows = np.concatenate([pairs["i"].to_numpy(), pairs["j"].to_numpy()])
    score = np.concatenate([best, best])
    order = np.lexsort((-score, rows))  # by row, best first
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    chosen = np.zeros(len(order), bool)
    chosen[order[rank < top]] = True
    return chosen[: len(pairs)] | chosen[len(pairs):]


def pair_texts(titles: np.ndarray, i: np.ndarray, j: np.ndarray, labels: np.ndarray | None = None) -> pd.DataFrame:
    """The pair models' input frame (`pairs.pvs.pair_frame`) of rows (i, j) of `titles`."""
    from ..pairs.pvs import pair_frame

    used = np.unique(np.concatenate([i, j]))
    items = pd.DataFrame({"posting_id": used.astype(str), "title": np.asarray(titles, dtype=object)[used]})
    pairs = pd.DataFrame({"src_item_id": i.astype(str), "tgt_item_id": j.astype(str)})
    if labels is not None:
        pairs["item_label"] = np.asarray(labels, np.int64)
    return pair_frame(pairs, items, id_col="posting_id")


def _fit(spec: PairMemberConfig, frame: pd.DataFrame, folder: Path, progress: bool):
    from ..pairs.base import build_pair_model
    from ..pairs.pair_train import fit_pair_model

    model = build_pair_model(spec.model_config())
    fit_pair_model(model, frame, None, spec.train_config(progress), folder)  # fixed epochs: no pair's label chooses
    return model


def oof_scores(spec: PairMemberConfig, pairs: pd.DataFrame, names: list[str], titles: np.ndarray, i: np.ndarray,
               j: np.ndarray, work: Path, *, progress: bool = False) -> tuple[np.ndarray, dict]:
    """The member's out-of-fold probability per candidate pair (NaN outside `decision_pairs`): per
    fold f a model trained on the selected pairs of the other folds scores fold f's. `i`, `j`: the
    pairs' rows in `titles`, `names` the stacker's models. Returns (scores, facts: pairs scored,
    seconds, training pairs/s)."""
    from ..pairs.pair_train import predict_pairs

    spec.check()
    chosen = decision_pairs(pairs, sim_columns(names), spec.top)
    scores = np.full(len(pairs), np.nan)
    folds = pairs["fold"].to_numpy()
    labels = pairs["label"].to_numpy()
    started, trained = time.time(), 0
    for f in np.unique(folds):
        fit_rows = np.flatnonzero(chosen & (folds != f))
        at = np.flatnonzero(chosen & (folds == f))
        if len(np.unique(labels[fit_rows])) < 2:
            raise DataError(f"pair member {spec.name!r}: the pairs outside fold {f} hold one class only")
        folder = work / f"fold{f}"
        shutil.rmtree(folder, ignore_errors=True)
        model = _fit(spec, pair_texts(titles, i[fit_rows], j[fit_rows], labels[fit_rows]), folder, progress)
        scores[at] = predict_pairs(model, pair_texts(titles, i[at], j[at]), spec.train_config(False).eval_batch_size)
        trained += len(fit_rows)
    seconds = time.time() - started
    facts = {"pairs_scored": int(chosen.sum()), "pairs": len(pairs), "top": spec.top, "oof_seconds": round(seconds, 1),
             "trained_pairs_per_s": round(trained * spec.train_config(False).epochs / seconds, 1) if seconds else None}
    log.info("pair member %s: %d of %d candidate pairs scored out of fold in %.0f s", spec.name, chosen.sum(),
             len(pairs), seconds)
    return scores, facts


def fit_final(spec: PairMemberConfig, pairs: pd.DataFrame, names: list[str], titles: np.ndarray, i: np.ndarray,
              j: np.ndarray, out: Path, *, progress: bool = False) -> Path:
    """The test-time model: trained on every selected labelled pair, saved in ``out`` (pairs' format)."""
    from ..pairs.pair_train import save_pair_model

    chosen = decision_pairs(pairs, sim_columns(names), spec.top)
    rows = np.flatnonzero(chosen)
    work = out.with_name(f".{out.name}.train")
    shutil.rmtree(work, ignore_errors=True)
    try:
        model = _fit(spec, pair_texts(titles, i[rows], j[rows], pairs["label"].to_numpy()[rows]), work, progress)
        save_pair_model(model, out, {"member": dataclasses.asdict(spec)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def score_bundled(member: dict, models_dir: Path, pairs: pd.DataFrame, names: list[str], titles: np.ndarray,
                  batch_size: int = 64) -> np.ndarray:
    """A bundled member's probability per test candidate pair (NaN outside `decision_pairs`, the
    rule its OOF scores followed)."""
    from ..pairs.pair_train import load_pair_model, predict_pairs

    chosen = decision_pairs(pairs, sim_columns(names), int(member["top"]))
    scores = np.full(len(pairs), np.nan)
    at = np.flatnonzero(chosen)
    i, j = pairs["i"].to_numpy()[at], pairs["j"].to_numpy()[at]
    model = load_pair_model(models_dir / member["folder"])
    started = time.time()
    scores[at] = predict_pairs(model, pair_texts(titles, i, j), batch_size)
    seconds = time.time() - started
    log.info("pair member %s: %d of %d candidate pairs scored in %.1f s (%.0f pairs/s)", member["name"], len(at),
             len(pairs), seconds, len(at) / seconds if seconds else float("nan"))
    return scores


__all__ = ["PairMemberConfig", "decision_pairs", "pair_texts", "oof_scores", "fit_final", "score_bundled", "FOLDER"]
