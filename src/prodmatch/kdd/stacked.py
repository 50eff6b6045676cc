"""Level 2 of the KDD stage: methods that combine level-1 methods' scores. They learn on the valid
split's scores and answers, so their valid score is out-of-fold over query-grouped folds (no model
scores a query it was fitted on); one more fit on all of valid scores the test splits."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..data.folds import group_folds
from ..errors import DataError, preview
from ..stack.oof import out_of_fold
from ._registry import METHODS
from .config import KddRunConfig, MethodConfig
from .data import Candidates
from .features import CANDIDATE_FEATURES
from .metrics import relevance, row_ndcg
from .methods import Method


@dataclass(frozen=True)
class StackTable:
    """One split as a level-2 method sees it: per row its level-1 `scores` (n, m) named `names`, the
    candidate `extras` (n, e) named `extra_names`, its query `codes` (0..Q-1) and ids; with the answers:
    each row's `relevant` flag, each query's distinct-answer count `n_relevant` and `answered` mask."""

    scores: np.ndarray
    names: tuple[str, ...]
    extras: np.ndarray
    extra_names: tuple[str, ...]
    codes: np.ndarray
    query_ids: np.ndarray
    product_ids: np.ndarray
    relevant: np.ndarray | None = None
    n_relevant: np.ndarray | None = None
    answered: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.codes)

    def take(self, rows: np.ndarray) -> "StackTable":
        """The rows in boolean mask `rows` (whole queries), query codes renumbered 0..Q'-1."""
        kept, codes = np.unique(self.codes[rows], return_inverse=True)
        per_query = {k: None if getattr(self, k) is None else getattr(self, k)[kept] for k in ("n_relevant", "answered")}
        return StackTable(self.scores[rows], self.names, self.extras[rows], self.extra_names, codes.astype(np.int64),
                          self.query_ids[kept], self.product_ids[rows],
                          None if self.relevant is None else self.relevant[rows], **per_query)

    def ndcg(self, scores: np.ndarray) -> float:
        """Mean NDCG@5 over the answered queries of ranking each query's rows by `scores` (as compare.csv)."""
        per_query = row_ndcg(self.codes, scores, self.relevant, self.n_relevant)
        return float(per_query[self.answered].mean())


def stack_table(candidates: Candidates, scores: dict[str, np.ndarray], inputs, extras=(), answers=None) -> StackTable:
    """The `inputs` columns of a split's level-1 `scores` plus the candidate features `extras`."""
    matrix = np.column_stack([np.asarray(scores[name], dtype=np.float64) for name in inputs])
    bad = ~np.isfinite(matrix).all(axis=0)
    if bad.any():
        raise DataError(f"{candidates.path}: level-1 method(s) {preview(np.asarray(inputs)[bad].tolist())} gave "
                        f"non-finite scores; a level-2 method cannot combine them")
    extra = np.column_stack([CANDIDATE_FEATURES[e][1](candidates) for e in extras]) if extras else np.zeros((len(matrix), 0))
    labels = {}
    if answers is not None:
        qids = candidates.query_ids
        labels = {"relevant": relevance(qids[candidates.codes], candidates.product_ids, answers),
                  "n_relevant": np.array([len(answers.get(int(q), ())) for q in qids], np.int64),
                  "answered": np.isin(qids, np.fromiter(answers, np.int64, len(answers)))}
    return StackTable(matrix, tuple(inputs), extra, tuple(extras), candidates.codes, candidates.query_ids,
                      candidates.product_ids, **labels)


@dataclass(frozen=True)
class StackedOptions:
    """`inputs`: level-1 method names (empty: all; the config lists them before level 2); `extras`: cheap
    candidate features added to them (names in features.CANDIDATE_FEATURES); `folds`: query-grouped folds
    of valid for the out-of-fold valid score (>= 2); `seed` of the fold shuffle (None: the run's)."""

    inputs: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    folds: int = 5
    seed: int | None = None


class StackedMethod(Method):
    """A level-2 kind: `fit_model` / `predict_model` on :class:`StackTable`s; this base runs the protocol
    (out-of-fold valid scores, then a refit on all of valid for the test splits), so no kind can score a
    query it was fitted on."""

    level: ClassVar[int] = 2
    valid_kind: ClassVar[str] = "oof"
    options_class = StackedOptions

    def __init__(self, spec: MethodConfig, config: KddRunConfig) -> None:
        super().__init__(spec, config)
        if self.options.folds < 2:
            raise DataError(f"method {spec.name!r}: folds must be >= 2 (out-of-fold valid scores), got {self.options.folds}")
        self.inputs = resolve_inputs(spec, config, self.options.inputs)
        self.extras = tuple(self.options.extras)
        unknown = [e for e in self.extras if e not in CANDIDATE_FEATURES]
        if unknown:
            raise DataError(f"method {spec.name!r}: unknown candidate feature(s) {preview(unknown)}; "
                            f"known: {', '.join(CANDIDATE_FEATURES)}")
        self.needs = tuple(sorted({n for e in self.extras for n in CANDIDATE_FEATURES[e][0]}))
        self.model: Any = None

    def fit_model(self, table: StackTable) -> Any:
        """A model fitted on `table`'s rows (relevance known)."""
        raise NotImplementedError

    def predict_model(self, model: Any, table: StackTable) -> np.ndarray:
        """A score per row of `table` (ranked within its query)."""
        raise NotImplementedError

    def describe(self, model: Any) -> dict:
        """run.json facts about a fitted model (weights, importance)."""
        return {}

    def save(self, folder: Path) -> list[str]:
        """Write the model fitted on all of valid into `folder` (no pickle); the file names written."""
        return []

    def load(self, folder: Path, context=None) -> None:
        """Read back what `save` wrote into `folder` as the final model (`kdd.rescore`)."""
        raise NotImplementedError(f"method {self.spec.name!r} ({self.kind}) saves no model to re-apply")

    def fit_scores(self, valid: StackTable) -> tuple[np.ndarray, dict]:
        """Out-of-fold scores of valid's rows (each query scored by a model fitted on the other folds'
        queries), then the final model fitted on all of valid; facts for run.json."""
        seed = self.config.seed if self.options.seed is None else self.options.seed
        try:
            folds = group_folds(valid.codes, self.options.folds, seed)
        except DataError as err:
            raise DataError(f"method {self.spec.name!r}: valid queries: {err}") from err
        oof = out_of_fold(folds, lambda rest: self.fit_model(valid.take(rest)),
                          lambda model, held: self.predict_model(model, valid.take(held)))
        self.model = self.fit_model(valid)
        return oof, {"inputs": list(self.inputs), "extras": list(self.extras), "folds": self.options.folds,
                     "oof_ndcg5": round(valid.ndcg(oof), 6),
                     "in_sample_ndcg5": round(valid.ndcg(self.predict_model(self.model, valid)), 6),
                     **self.describe(self.model)}

    def predict(self, table: StackTable) -> np.ndarray:
        """Scores of a test split by the model fitted on all of valid."""
        if self.model is None:
            raise RuntimeError(f"method {self.spec.name!r}: fit_scores first")
        return self.predict_model(self.model, table)

    def score(self, split, candidates, context):
        raise TypeError(f"method {self.spec.name!r} is level 2: it scores from level-1 scores (fit_scores / predict)")


def resolve_inputs(spec: MethodConfig, config: KddRunConfig, inputs: tuple[str, ...]) -> tuple[str, ...]:
    """The level-1 methods a level-2 `spec` reads: those named (each a level-1 method listed before it)
    or, when none are named, all level-1 methods. A config lists its level-1 methods first, so a method
    appended after the level-2 ones fails loudly instead of silently missing from a default."""
    names = [m.name for m in config.methods]
    here = names.index(spec.name)
    level = {m.name: getattr(METHODS[m.kind], "level", 1) for m in config.methods}
    earlier = [n for n in names[:here] if level[n] == 1]
    late = [n for n in names[here + 1:] if level[n] == 1 and n not in inputs]
    if late:
        raise DataError(f"method {spec.name!r}: level-1 method(s) {preview(late)} listed after this level-2 method; "
                        f"list every level-1 method before the level-2 ones")
    if not inputs:
        if not earlier:
            raise DataError(f"method {spec.name!r}: no level-1 method is listed before it to combine")
        return tuple(earlier)
    problems = []
    for name in inputs:
        if name not in level:
            problems.append(f"unknown input {name!r} (methods: {', '.join(names)})")
        elif level[name] != 1:
            problems.append(f"input {name!r} is a level-2 method; inputs must be level-1 methods")
        elif names.index(name) > here:
            problems.append(f"input {name!r} is listed after it; list inputs before the level-2 method")
    if len(set(inputs)) != len(inputs):
        problems.append(f"repeated input(s) {preview(sorted({n for n in inputs if inputs.count(n) > 1}))}")
    if problems:
        raise DataError(f"method {spec.name!r}: " + "; ".join(problems))
    return tuple(inputs)
