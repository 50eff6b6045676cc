"""The matcher: several models' embeddings in, the configured chain run, per-row matches out.

Chain (each step optional, in this order): exact top-K search per model -> neighbourhood
blending (every model on the members' union graph at its tuned threshold, or each on its own
graph; then searched again) -> a+b-ab union of all models on the union of their candidates ->
unit-mismatch filter -> threshold + Min2 -> chisel. Near 500 lines (config, Pool, nested tuning,
ablation); the next split is `Pool` into its own module (issue 14, item 5: steps as objects).

Thresholds are tuned, never guessed: `tune` picks them on labelled pools (one pool per fold:
OOF embeddings of different fold models live in different spaces, and a fold mimics a test set
whose groups are closed); `ablation` scores every fold at thresholds tuned on the others.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Literal, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..metrics import Scores
from .blend import blend
from .chisel import chisel
from .threshold import Matches, min2, select
from .tune import Curve, best_thresholds, curve, density_weight, threshold_grid
from .union import DenseModel, PhashModel, SparseModel, similarity_union
from .units import pair_conflicts

log = logging.getLogger(__name__)

MODEL_TYPES = {"dense": DenseModel, "sparse": SparseModel, "phash": PhashModel}
BLENDABLE = ("dense", "sparse")  # phash codes have no vectors to blend


@dataclass(frozen=True)
class MatcherConfig:
    """Which models, and which steps of the chain; thresholds are tuned, not set here."""

    models: tuple[str, ...] = ()  # names in the run; empty: all of them (sorted)
    k: int = 50  # neighbours per model and row (clipped to the pool size)
    nb: bool = True
    union: bool = True
    units: bool = True
    min2: bool = True
    chisel: bool = True
    chisel_window: float = 0.2  # chisel may lower t by up to this much below the tuned t
    # chisel as the threshold itself (18th place Shopee): t drops to the grid's floor and chisel
    # alone sizes every row's top-K list; off: chisel trims below a tuned t (see `chisel_window`)
    chisel_as_threshold: bool = False
    # NB graph: "union" blends every model on one graph, the a+b-ab union of the chain's members at
    # its tuned threshold (1st place Shopee's INB; +0.002..+0.022 over "own" in every ablation
    # column, README); "own" blends each model on its own thresholded graph. Single-model rows
    # of the ablation always use their own graph (the union of one model is that model).
    nb_graph: Literal["own", "union"] = "union"
    grid_step: float = 0.01
    grid_min: float = 0.05
    backend: str = "auto"
    # CV search pool: "fold" searches each fold alone (required when each fold has its own
    # trained model); "all" searches every row together and scores each fold's rows (models that
    # share one space across folds: TF-IDF, phash, zero-shot), closer to a big test set's density;
    # "auto": "all" unless a model was trained per fold
    cv_pool: Literal["auto", "fold", "all"] = "auto"
    test_rows: int | None = None  # test size the thresholds are tuned for (`post.tune.density_weight`)
    # union members: "greedy" adds models while the tuned F1 on the training folds rises (a weak
    # or badly scaled model can drag a+b-ab down); "all" unions every model
    union_select: Literal["greedy", "all"] = "greedy"

    @property
    def grid(self) -> np.ndarray:
        return threshold_grid(self.grid_min, self.grid_step)


@dataclass(frozen=True)
class Stage:
    """One chain setting to score: models (first alone, or union of all) and the steps on top."""

    name: str
    models: tuple[str, ...]
    nb: bool = False
    units: bool = False
    min2: bool = False
    chisel: bool = False
    select: bool = False  # choose the union's members greedily on the labelled parts (see `select_union`)
    nb_graph: str = "own"  # "union": every model blended on the members' union graph (`MatcherConfig.nb_graph`)

    @property
    def label(self) -> str:
        return self.models[0] if len(self.models) == 1 else "union(" + "+".join(self.models) + ")"


@dataclass(frozen=True)
class MatcherParams:
    """What `tune` learns: NB graph thresholds per model, final t / t_min2, train group sizes."""

    stage: Stage
    nb_thresholds: dict[str, float]
    t: float
    t_min2: float | None
    target_sizes: tuple[int, ...] = ()


def params_to_dict(params: MatcherParams) -> dict:
    """JSON-ready params; target sizes as a {size: groups} histogram."""
    sizes, counts = np.unique(np.asarray(params.target_sizes, dtype=np.int64), return_counts=True)
    return {
        "stage": asdict(params.stage),
        "nb_thresholds": params.nb_thresholds,
        "t": params.t,
        "t_min2": params.t_min2,
        "target_size_counts": {str(s): int(c) for s, c in zip(sizes, counts)},
    }


def params_from_dict(data: dict) -> MatcherParams:
    stage = data["stage"]
    stage = Stage(**{**stage, "models": tuple(stage["models"])})
    sizes = np.repeat([int(s) for s in data["target_size_counts"]], list(data["target_size_counts"].values()))
    return MatcherParams(stage, dict(data["nb_thresholds"]), float(data["t"]),
                         None if data["t_min2"] is None else float(data["t_min2"]), tuple(int(s) for s in sizes))


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

    def candidates(self, stage: Stage, nb_thresholds: Mapping[str, float] | None = None) -> Matches:
        """Scored candidate pairs of `stage` (before threshold, Min2 and chisel)."""
        nb_graph_t = _stage_nb(stage, nb_thresholds)
        key = (stage.models, stage.units, nb_graph_t)
        if key not in self._candidates:
            if stage.nb and stage.nb_graph == "union":
                models = [self.union_blended(m, stage.models, dict(nb_graph_t)[UNION_GRAPH]) for m in stage.models]
            else:
                models = [self.model(m, dict(nb_graph_t).get(m)) for m in stage.models]
            cands, _ = similarity_union(models)
            if stage.units:
                if self.titles is None:
                    raise DataError("the unit filter needs titles")
                cands = cands.subset(~pair_conflicts(self.titles, cands.rows, cands.cols))
            self._candidates[key] = cands
        return self._candidates[key]

    def curve(self, stage: Stage, nb_thresholds, grid, segment=None, test_rows: int | None = None) -> Curve:
        """Threshold curve of `stage` summed over the rows of `segment` (None: every row), wrong
        pairs weighted for a test pool of `test_rows` (None: this pool's own density)."""
        nb_graph_t = _stage_nb(stage, nb_thresholds)
        weight = density_weight(self.n, test_rows)
        key = (stage.models, stage.units, nb_graph_t, len(grid), float(grid[0]), float(grid[-1]), segment, weight)
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
        """The final per-row matches of `params` on this pool."""
        stage = params.stage
        out = select(self.candidates(stage, params.nb_thresholds), params.t, params.t_min2 if stage.min2 else None)
        if stage.chisel:
            out = chisel(out, params.target_sizes)
        return out

    def _labels(self) -> np.ndarray:
        if self.groups is None:
            raise DataError("tuning thresholds needs label groups")
        return self.groups


def search(kind: str, data, k: int, backend: str = "auto"):
    """The similarity model of `kind` over `data` with its exact top-k lists."""
    if kind not in MODEL_TYPES:
        raise DataError(f"unknown model kind {kind!r}; known: {', '.join(MODEL_TYPES)}")
    if kind == "sparse":
        return SparseModel.search(data, k)
    return MODEL_TYPES[kind].search(data, k, backend=backend)


def stages(config: MatcherConfig, names: Sequence[str], kinds: Mapping[str, str]) -> list[Stage]:
    """The ablation's rows: each model alone (threshold, +min2, +nb), then the chain over all."""
    out = []
    for name in names:
        out.append(Stage("threshold", (name,)))
        if config.min2:
            out.append(Stage("+min2", (name,), min2=True))
        if config.nb and kinds[name] in BLENDABLE:
            out.append(Stage("+nb", (name,), nb=True, min2=config.min2))
    chain = Stage("chain", tuple(names) if config.union else (names[0],), nb=config.nb, min2=config.min2,
                  select=config.union and config.union_select == "greedy" and len(names) > 1,
                  nb_graph=config.nb_graph if config.nb else "own")
    if config.union and len(names) > 1:
        chain = replace(chain, name="+union")
        out.append(chain)
    if config.units:
        chain = replace(chain, name="+units", units=True)
        out.append(chain)
    if config.chisel:
        chain = replace(chain, name="+chisel", chisel=True)
        out.append(chain)
    return out


def final_stage(config: MatcherConfig, names: Sequence[str], kinds: Mapping[str, str]) -> Stage:
    """The stage `Matcher.fit` tunes and `predict` runs: the whole configured chain."""
    chain = [s for s in stages(config, names, kinds) if s.name not in ("threshold", "+min2", "+nb")]
    if chain:
        return chain[-1]
    single = Stage("final", (names[0],), nb=config.nb and kinds[names[0]] in BLENDABLE, min2=config.min2)
    return single


class Part(NamedTuple):
    """The rows of one fold (`segment` of `pool`; None: all of it), scored within the pool they were searched in."""

    pool: "Pool"
    segment: object = None


def tune(parts: Sequence[Part], stage: Stage, config: MatcherConfig, nb_thresholds=None,
         target_sizes=()) -> MatcherParams:
    """Thresholds of `stage` maximising summed row-F1 over the labelled `parts`."""
    grid = config.grid
    nb_thresholds = dict(nb_thresholds or {})
    if stage.select:
        stage = select_union(parts, stage, config, nb_thresholds)
    if stage.nb and stage.nb_graph == "union":
        graph = Stage("graph", stage.models)
        nb_thresholds[UNION_GRAPH] = tune(parts, graph, config, target_sizes=()).t
    curves = [pool.curve(stage, nb_thresholds, grid, seg, config.test_rows) for pool, seg in parts]
    t_index, t_min2_index = best_thresholds(curves, min2=stage.min2)
    params = MatcherParams(stage, nb_thresholds, float(grid[t_index]),
                           None if t_min2_index is None else float(grid[t_min2_index]),
                           tuple(sorted(int(s) for s in target_sizes)))
    if not stage.chisel:
        return params
    if config.chisel_as_threshold:
        return replace(params, t=float(grid[0]), t_min2=None)
    # chisel only removes, so it pays off with a lower t: scan a window below the tuned t
    best, best_f1 = params, -np.inf
    for t in grid[(grid <= params.t + 1e-9) & (grid >= params.t - config.chisel_window - 1e-9)][::-1]:
        trial = replace(params, t=float(t), t_min2=None if t_min2_index is None else min(params.t_min2, float(t)))
        f1 = score_parts(parts, trial, grid, config.test_rows)["f1"]
        if f1 > best_f1 + 1e-12:
            best, best_f1 = trial, f1
    return best


def select_union(parts: Sequence[Part], stage: Stage, config: MatcherConfig, nb_thresholds) -> Stage:
    """Forward selection of union members on the labelled parts (without chisel, for speed):
    start from the best model alone, add the model that raises the tuned F1 most, stop when none does."""
    grid = config.grid
    probe = replace(stage, chisel=False, select=False, nb_graph="own")  # own graphs: no threshold per member set

    def value(members) -> float:
        trial = replace(probe, models=tuple(m for m in stage.models if m in members))
        curves = [pool.curve(trial, nb_thresholds, grid, seg, config.test_rows) for pool, seg in parts]
        t_index, t_min2_index = best_thresholds(curves, min2=trial.min2)
        return sum(c.sums(t_index, t_min2_index)["f1"] for c in curves)

    chosen: set[str] = set()
    best = -np.inf
    while len(chosen) < len(stage.models):
        trials = [(value(chosen | {m}), m) for m in stage.models if m not in chosen]
        top, pick = max(trials, key=lambda vm: (vm[0], -stage.models.index(vm[1])))
        if top <= best + 1e-9:
            break
        best = top
        chosen.add(pick)
    return replace(stage, models=tuple(m for m in stage.models if m in chosen), select=False)


def score(part: Part, params: MatcherParams, grid, test_rows: int | None = None) -> dict[str, float]:
    """Metric sums (f1, precision, recall) of `params` over a labelled part's rows (expected at a
    test pool of `test_rows`: `post.tune.density_weight`)."""
    pool, seg = part
    stage = params.stage
    if not stage.chisel:
        c = pool.curve(stage, params.nb_thresholds, grid, seg, test_rows)
        t_index = _grid_index(grid, params.t)
        t_min2_index = None if params.t_min2 is None else _grid_index(grid, params.t_min2)
        return c.sums(t_index, t_min2_index)
    mask = pool.mask(seg)
    per_row = pool.matches(params).per_row_scores(pool.groups, density_weight(pool.n, test_rows))
    return {m: float(v[mask].sum()) for m, v in zip(("f1", "precision", "recall"), per_row)}


def score_parts(parts: Sequence[Part], params: MatcherParams, grid, test_rows: int | None = None) -> dict[str, float]:
    """Metric sums of `params` over all `parts`; with chisel, segments of one pool share one
    chisel pass (it runs on the whole pool: the expensive part on an all-rows pool)."""
    totals = {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    if not params.stage.chisel:
        for part in parts:
            for m, v in score(part, params, grid, test_rows).items():
                totals[m] += v
        return totals
    pools: dict[int, tuple] = {}
    for pool, seg in parts:
        pools.setdefault(id(pool), (pool, []))[1].append(seg)
    for pool, segments in pools.values():
        per_row = pool.matches(params).per_row_scores(pool.groups, density_weight(pool.n, test_rows))
        for seg in segments:
            mask = pool.mask(seg)
            for m, v in zip(("f1", "precision", "recall"), per_row):
                totals[m] += float(v[mask].sum())
    return totals


@dataclass
class AblationResult:
    table: pd.DataFrame  # one row per stage: stage, models, f1, precision, recall, gain, t, t_min2
    params: MatcherParams  # the chosen chain stage tuned on every fold (what `Pool.matches` applies)
    per_fold: dict = field(default_factory=dict)  # stage label -> per-fold thresholds
    oof_f1: float = float("nan")  # the chosen stage's nested OOF F1
    stage: Stage | None = None  # the chosen chain stage (before its union members are selected)


def ablation(parts: Sequence[Part], config: MatcherConfig, kinds: Mapping[str, str], names: Sequence[str],
             *, progress: bool = True) -> AblationResult:
    """Score every stage on each part (fold) with thresholds tuned on the other parts (nested).

    NB graphs use each model's threshold-only t tuned on the same other parts; chisel's target
    is the other parts' group sizes. Also returns the full chain's params tuned on all parts.
    """
    from tqdm.auto import tqdm

    if len(parts) < 2:
        raise DataError("the ablation needs at least two folds (thresholds are tuned on the others)")
    nb_graph_t = nested_nb_thresholds(parts, config, names)
    rows, per_fold = [], {}
    previous: dict[str, float] = {}
    all_stages = stages(config, names, kinds)
    bar = tqdm(all_stages, desc="ablation", disable=not progress)
    for stage in bar:
        bar.set_postfix_str(f"{stage.name} {stage.label}")
        started = time.perf_counter()
        scores, ts, t2s, chosen = nested_score(parts, stage, config, nb_graph_t)
        single = stage.name in ("threshold", "+min2", "+nb")
        key = stage.models[0] if single else "chain"
        if key in previous:
            gain = scores.f1 - previous[key]
        elif not single and previous:  # first chain row: against the best single model
            gain = scores.f1 - max(previous.values())
        else:
            gain = None
        previous[key] = scores.f1
        per_fold[f"{stage.name} {stage.label}"] = {"t": ts, "t_min2": t2s, "models": chosen}
        rows.append({
            "stage": stage.name, "models": stage.label, "f1": round(scores.f1, 4), "precision": round(scores.precision, 4),
            "recall": round(scores.recall, 4), "gain": None if gain is None else round(gain, 4),
            "t": round(float(np.mean(ts)), 4),
            "t_min2": None if t2s[0] is None else round(float(np.mean(t2s)), 4),
            "selected": _most_common(chosen) if stage.select else "",
            "seconds": round(time.perf_counter() - started, 2),
        })
    # predict runs the chain stage that scored best out of fold (a stage that loses, e.g. chisel on
    # real titles, is left out), or the full chain when the config has no chain rows
    chain = [(r["f1"], -i, stage) for i, (r, stage) in enumerate(zip(rows, all_stages)) if stage.name in CHAIN_STAGES]
    if chain:
        f1, _, best = max(chain, key=lambda c: (c[0], c[1]))
    else:
        best, f1 = None, float("nan")
    return AblationResult(pd.DataFrame(rows), fit(parts, config, kinds, names, stage=best), per_fold, f1, best)


def nested_nb_thresholds(parts: Sequence[Part], config: MatcherConfig, names: Sequence[str]) -> dict:
    """For each held-out part f: each model's threshold-only t tuned on the other parts (NB graphs)."""
    others = lambda f: [p for g, p in enumerate(parts) if g != f]
    return {f: {name: tune(others(f), Stage("threshold", (name,)), config).t for name in names} for f in range(len(parts))}


def nested_score(parts: Sequence[Part], stage: Stage, config: MatcherConfig, nb_graph_t: dict | None = None):
    """Mean F1/P/R of `stage` over every part, each at thresholds tuned on the others (NB graph
    thresholds `nb_graph_t` from `nested_nb_thresholds`, chisel targets the others' group sizes), at
    the test size ``config.test_rows``. Returns (Scores, per-part t, t_min2, union members)."""
    grid = config.grid
    n_total = sum(int(pool.mask(seg).sum()) for pool, seg in parts)
    sizes = [_group_sizes(pool.groups[pool.mask(seg)]) for pool, seg in parts]
    if stage.nb and nb_graph_t is None:
        nb_graph_t = nested_nb_thresholds(parts, config, stage.models)
    totals = {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    ts, t2s, chosen = [], [], []
    for f in range(len(parts)):
        others = [p for g, p in enumerate(parts) if g != f]
        other_sizes = np.concatenate([z for g, z in enumerate(sizes) if g != f]) if stage.chisel else ()
        params = tune(others, stage, config, nb_graph_t[f] if stage.nb else None, other_sizes)
        for m, v in score(parts[f], params, grid, config.test_rows).items():
            totals[m] += v
        ts.append(params.t)
        t2s.append(params.t_min2)
        chosen.append("+".join(params.stage.models))
    return Scores(*(totals[m] / n_total for m in ("f1", "precision", "recall"))), ts, t2s, chosen


CHAIN_STAGES = ("+union", "+units", "+chisel")


def fit(parts: Sequence[Part], config: MatcherConfig, kinds: Mapping[str, str], names: Sequence[str],
        stage: Stage | None = None) -> MatcherParams:
    """`stage` (default: the full configured chain) tuned on every labelled part: what
    `Pool.matches` then applies."""
    final = stage or final_stage(config, names, kinds)
    nb_graph_t = {m: tune(parts, Stage("threshold", (m,)), config).t for m in final.models} if final.nb else None
    sizes = np.concatenate([_group_sizes(pool.groups[pool.mask(seg)]) for pool, seg in parts]) if final.chisel else ()
    return tune(parts, final, config, nb_graph_t, sizes)


def _most_common(choices: Sequence[str]) -> str:
    """'a+b (4/5)': the members most folds chose."""
    values, counts = np.unique(np.asarray(choices), return_counts=True)
    top = int(np.argmax(counts))
    return f"{values[top]} ({counts[top]}/{len(choices)})"


UNION_GRAPH = "(union graph)"  # nb_thresholds key of the union graph's threshold (no model has this name)


def _stage_nb(stage: Stage, nb_thresholds) -> tuple:
    if not stage.nb:
        return ()
    if stage.nb_graph == "union":
        if UNION_GRAPH not in (nb_thresholds or {}):
            raise DataError("NB over the union graph needs its threshold")
        return ((UNION_GRAPH, float(nb_thresholds[UNION_GRAPH])),)
    missing = [m for m in stage.models if m not in (nb_thresholds or {})]
    if missing:
        raise DataError(f"NB needs a graph threshold for {missing}")
    return tuple((m, float(nb_thresholds[m])) for m in stage.models)


def _grid_index(grid, t: float) -> int:
    i = int(np.argmin(np.abs(grid - t)))
    if abs(grid[i] - t) > 1e-9:
        raise ValueError(f"threshold {t} is not on the tuning grid")
    return i


def _group_sizes(groups) -> np.ndarray:
    return np.unique(np.asarray(groups), return_counts=True)[1]


def _n_rows(data) -> int:
    return int(data.shape[0])
