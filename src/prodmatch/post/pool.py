"""`Pool`: the rows of one search set with every model's data, and the searches, blends,
candidates and threshold curves of the stages run on it (all cached per pool)."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import DataError
from ..registry import Registry
from .blend import blend
from .stage import MatcherParams, Stage
from .steps import Context, select_matches, steps_of
from .threshold import Matches, min2, select
from .tune import Curve, curve, density_weight
from ..similarity import DenseModel, PhashModel, SparseModel
from .union import BLENDABLE, similarity_union

MODEL_TYPES = Registry("model kind", {"dense": DenseModel, "sparse": SparseModel, "phash": PhashModel})


class Pool:
    """The rows of one search set (a fold, or a test set) with every model's data and caches."""

    def __init__(self, models: Mapping[str, tuple[str, object]], *, titles=None, groups=None, segments=None,
                 k: int = 50, backend: str = "auto"):
        if not models:
            raise DataError("a pool needs at least one model")
        self.data = dict(models)
        sizes = {name: _n_rows(data) for name, (_, data) in self.data.items()}
        if len(set(sizes.values())) != 1:
            raise DataError(f"models cover different numbers of rows: {sizes}")
        self.n = next(iter(sizes.values()))
        self.titles = None if titles is None else np.asarray(titles, dtype=object)
        self.groups = None if groups is None else np.asarray(groups)
        self.segments = None if segments is None else np.asarray(segments)  # e.g. fold per row
        for what, arr in (("titles", self.titles), ("groups", self.groups), ("segments", self.segments)):
            if arr is not None and len(arr) != self.n:
                raise DataError(f"{len(arr)} {what} for a pool of {self.n} rows")
        self.k, self.backend = k, backend
        self._models: dict = {}
        self._candidates: dict = {}
        self._curves: dict = {}

    def model(self, name: str, nb_graph_t: float | None = None):
        """Model `name` searched (top-k), optionally blended on its own graph at nb_graph_t and searched again."""
        kind, _ = self.data[name]
        if kind not in BLENDABLE or nb_graph_t is None:
            return self._searched(name, (name, None), lambda: self.data[name][1])
        return self._blended(name, (name, nb_graph_t), lambda: self._own_graph(name, nb_graph_t))

    def use_searched(self, name: str, model) -> None:
        """Take `model` (a `DenseModel` with its top-k lists, searched elsewhere: e.g. sharded on a
        cluster, `prodmatch.distributed.match`) as model `name`'s search; every step runs on it."""
        kind = self.data[name][0]
        if not isinstance(model, MODEL_TYPES[kind]) or model.n != self.n or model.idx is None:
            raise DataError(f"model {name!r}: expected a searched {MODEL_TYPES[kind].__name__} of {self.n} rows")
        self._models[(name, None)] = model

    def union_blended(self, name: str, members: tuple[str, ...], t: float):
        """Model `name` blended on the union graph of `members` at threshold t, searched again."""
        if self.data[name][0] not in BLENDABLE:
            return self.model(name)
        return self._blended(name, (name, ("union", members, t)), lambda: self._union_graph(members, t))

    def _own_graph(self, name: str, t: float) -> Matches:
        base = self.model(name)
        return min2(base.sims, base.idx, t, None)

    def _union_graph(self, members: tuple[str, ...], t: float) -> Matches:
        """The a+b-ab union of `members` thresholded at t: built once, shared by every member's blend."""
        key = ("union graph", members, t)
        if key not in self._models:
            self._models[key] = select(similarity_union([self.model(m) for m in members])[0], t)
        return self._models[key]

    def _blended(self, name: str, key, graph):
        """Model `name`'s vectors blended on `graph()` and searched again (cached under `key`)."""
        def data():
            base = self.model(name)
            return blend(base.emb if self.data[name][0] == "dense" else base.x, graph())

        return self._searched(name, key, data)

    def _searched(self, name: str, key, data):
        if key not in self._models:
            self._models[key] = search(self.data[name][0], data(), self.k, self.backend)
        return self._models[key]

    def _candidate_key(self, stage: Stage, nb_thresholds) -> tuple:
        """What a stage's candidates depend on: models, search-step graph thresholds, candidate filters."""
        searches = steps_of(stage, "search")
        if len(searches) > 1:
            raise DataError(f"a stage runs one search step, got {[s.name for s in searches]}")
        graph_t = searches[0].key(stage, nb_thresholds) if searches else ()
        return stage.models, tuple(s.name for s in steps_of(stage, "candidates")), graph_t

    def candidates(self, stage: Stage, nb_thresholds: Mapping[str, float] | None = None) -> Matches:
        """Scored candidate pairs of `stage` (before threshold, Min2 and the set steps): its
        models as the search step (NB) brings them, a+b-ab union, then the candidate filters."""
        key = self._candidate_key(stage, nb_thresholds)
        if key not in self._candidates:
            searches = steps_of(stage, "search")
            models = searches[0].models(self, stage, nb_thresholds) if searches else [self.model(m) for m in stage.models]
            cands, _ = similarity_union(models)
            for step in steps_of(stage, "candidates"):
                cands = step.apply(cands, Context(pool=self))
            self._candidates[key] = cands
        return self._candidates[key]

    def curve(self, stage: Stage, nb_thresholds, grid, segment=None, test_rows: int | None = None) -> Curve:
        """Threshold curve of `stage` summed over the rows of `segment` (None: every row), wrong
        pairs weighted for a test pool of `test_rows` (None: this pool's own density)."""
        weight = density_weight(self.n, test_rows)
        key = (*self._candidate_key(stage, nb_thresholds), len(grid), float(grid[0]), float(grid[-1]), segment, weight)
        if key not in self._curves:
            self._curves[key] = curve(self.candidates(stage, nb_thresholds), self._labels(), grid, self.mask(segment),
                                      weight)
        return self._curves[key]

    def mask(self, segment=None) -> np.ndarray:
        """Rows of `segment` (all rows for None)."""
        if segment is None:
            return np.ones(self.n, bool)
        if self.segments is None:
            raise DataError("this pool has no segments")
        return self.segments == segment

    def matches(self, params: MatcherParams) -> Matches:
        """The final per-row matches of `params` on this pool (threshold, Min2, set steps)."""
        stage = params.stage
        return select_matches(self.candidates(stage, params.nb_thresholds), params.t, params.t_min2, steps_of(stage),
                              Context(pool=self, params=params))

    def _labels(self) -> np.ndarray:
        if self.groups is None:
            raise DataError("tuning thresholds needs label groups")
        return self.groups


def search(kind: str, data, k: int, backend: str = "auto"):
    """The similarity model of `kind` over `data` with its exact top-k lists."""
    model_type = MODEL_TYPES.get(kind)
    if kind == "sparse":
        return SparseModel.search(data, k)
    return model_type.search(data, k, backend=backend)


def _n_rows(data) -> int:
    return int(data.shape[0])
