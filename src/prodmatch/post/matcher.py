"""The matcher: several models' embeddings in, the configured chain run, per-row matches out.

The chain is `post.steps.CHAIN` (each step optional, in this order): greedy union members ->
exact top-K search per model -> Min2 -> neighbourhood blending (every model on the members'
union graph at its tuned threshold, or each on its own graph; then searched again) -> a+b-ab
union of all models on the union of their candidates -> unit-mismatch filter -> threshold (+
Min2) -> chisel. This module: the config, the ablation's stages, nested tuning and scoring;
`post.pool.Pool` runs a stage on a search set, `post.steps` holds what each step does.

Thresholds are tuned, never guessed: `tune` picks them on labelled pools (one pool per fold:
OOF embeddings of different fold models live in different spaces, and a fold mimics a test set
whose groups are closed); `ablation` scores every fold at thresholds tuned on the others.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..metrics import Scores
from .pool import MODEL_TYPES, Pool, search  # noqa: F401  (their home before post/pool.py)
from .stage import UNION_GRAPH, MatcherParams, Part, Stage, params_from_dict, params_to_dict  # noqa: F401
from .steps import STEPS, Tuning, chain, chain_rows, changes_sets, select_union, single_rows, steps_of  # noqa: F401
from .tune import best_thresholds, density_weight, threshold_grid
from .union import BLENDABLE  # noqa: F401

log = logging.getLogger(__name__)


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


def stages(config: MatcherConfig, names: Sequence[str], kinds: Mapping[str, str]) -> list[Stage]:
    """The ablation's rows: each model alone (threshold, then each per-model step: +min2, +nb),
    then the chain over all (+union, +units, +chisel), each row one step more (`post.steps.CHAIN`)."""
    steps = chain(config, names)
    out = []
    for name in names:
        out.append(Stage("threshold", (name,)))
        on: tuple[str, ...] = ()
        for step in steps:
            if step.per_model and step.applies(kinds[name]):
                on += (step.name,)
                out.append(Stage(step.row, (name,), on))
    base = Stage("chain", (names[0],))
    for step in steps:
        if step.per_model or step.row is None:  # on the chain from its start (NB, Min2, member selection)
            base = step.extend(base, config, names)
    for step in steps:
        if not step.per_model and step.row is not None:
            base = replace(step.extend(base, config, names), name=step.row)
            out.append(base)
    return out


def final_stage(config: MatcherConfig, names: Sequence[str], kinds: Mapping[str, str]) -> Stage:
    """The stage `Matcher.fit` tunes and `predict` runs: the whole configured chain."""
    chain_stages = [s for s in stages(config, names, kinds) if s.name not in single_rows()]
    if chain_stages:
        return chain_stages[-1]
    on = tuple(s.name for s in chain(config, names) if s.per_model and s.applies(kinds[names[0]]))
    return Stage("final", (names[0],), on)


def tune(parts: Sequence[Part], stage: Stage, config: MatcherConfig, nb_thresholds=None,
         target_sizes=()) -> MatcherParams:
    """Thresholds of `stage` maximising summed row-F1 over the labelled `parts` (each step's
    `prepare` first, its `tune` after: member selection, the union graph's threshold, chisel's t)."""
    grid = config.grid
    nb_thresholds = dict(nb_thresholds or {})
    ctx = Tuning(parts, config, tune, score_parts)
    steps = steps_of(stage)
    for step in steps:
        stage, nb_thresholds = step.prepare(stage, nb_thresholds, ctx)
    curves = [pool.curve(stage, nb_thresholds, grid, seg, config.test_rows) for pool, seg in parts]
    t_index, t_min2_index = best_thresholds(curves, min2=stage.has("min2"))
    params = MatcherParams(stage, nb_thresholds, float(grid[t_index]),
                           None if t_min2_index is None else float(grid[t_min2_index]),
                           tuple(sorted(int(s) for s in target_sizes)))
    for step in steps:
        params = step.tune(params, ctx)
    return params


def score(part: Part, params: MatcherParams, grid, test_rows: int | None = None) -> dict[str, float]:
    """Metric sums (f1, precision, recall) of `params` over a labelled part's rows (expected at a
    test pool of `test_rows`: `post.tune.density_weight`)."""
    pool, seg = part
    stage = params.stage
    if not changes_sets(stage):  # thresholds alone: read off the curve
        c = pool.curve(stage, params.nb_thresholds, grid, seg, test_rows)
        t_index = _grid_index(grid, params.t)
        t_min2_index = None if params.t_min2 is None else _grid_index(grid, params.t_min2)
        return c.sums(t_index, t_min2_index)
    mask = pool.mask(seg)
    per_row = pool.matches(params).per_row_scores(pool.groups, density_weight(pool.n, test_rows))
    return {m: float(v[mask].sum()) for m, v in zip(("f1", "precision", "recall"), per_row)}


def score_parts(parts: Sequence[Part], params: MatcherParams, grid, test_rows: int | None = None) -> dict[str, float]:
    """Metric sums of `params` over all `parts`; with a set step (chisel), segments of one pool
    share one pass (it runs on the whole pool: the expensive part on an all-rows pool)."""
    totals = {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    if not changes_sets(params.stage):
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
        scores, t_per_part, t_min2_per_part, chosen = nested_score(parts, stage, config, nb_graph_t)
        single = stage.name in single_rows()
        key = stage.models[0] if single else "chain"
        if key in previous:
            gain = scores.f1 - previous[key]
        elif not single and previous:  # first chain row: against the best single model
            gain = scores.f1 - max(previous.values())
        else:
            gain = None
        previous[key] = scores.f1
        per_fold[f"{stage.name} {stage.label}"] = {"t": t_per_part, "t_min2": t_min2_per_part, "models": chosen}
        rows.append({
            "stage": stage.name, "models": stage.label, "f1": round(scores.f1, 4), "precision": round(scores.precision, 4),
            "recall": round(scores.recall, 4), "gain": None if gain is None else round(gain, 4),
            "t": round(float(np.mean(t_per_part)), 4),
            "t_min2": None if t_min2_per_part[0] is None else round(float(np.mean(t_min2_per_part)), 4),
            "selected": _most_common(chosen) if stage.has("select") else "",
            "seconds": round(time.perf_counter() - started, 2),
        })
    # predict runs the chain stage that scored best out of fold (a stage that loses, e.g. chisel on
    # real titles, is left out), or the full chain when the config has no chain rows
    chain = [(r["f1"], -i, stage) for i, (r, stage) in enumerate(zip(rows, all_stages)) if stage.name in chain_rows()]
    if chain:
        f1, _, best = max(chain, key=lambda c: (c[0], c[1]))
    else:
        best, f1 = None, float("nan")
    return AblationResult(pd.DataFrame(rows), fit(parts, config, kinds, names, stage=best), per_fold, f1, best)


def nested_nb_thresholds(parts: Sequence[Part], config: MatcherConfig, names: Sequence[str]) -> dict:
    """For each held-out part f: each model's threshold-only t tuned on the other parts (NB graphs)."""
    others = lambda f: [p for g, p in enumerate(parts) if g != f]
    graphs = STEPS["nb"].graph_thresholds
    return {f: graphs(others(f), names, config, tune) for f in range(len(parts))}


def nested_score(parts: Sequence[Part], stage: Stage, config: MatcherConfig, nb_graph_t: dict | None = None):
    """Mean F1/P/R of `stage` over every part, each at thresholds tuned on the others (NB graph
    thresholds `nb_graph_t` from `nested_nb_thresholds`, chisel targets the others' group sizes), at
    the test size ``config.test_rows``. Returns (Scores, per-part t, t_min2, union members)."""
    grid = config.grid
    n_total = sum(int(pool.mask(seg).sum()) for pool, seg in parts)
    sizes = [_group_sizes(pool.groups[pool.mask(seg)]) for pool, seg in parts]
    nb, sized = stage.has("nb"), any(s.needs_sizes for s in steps_of(stage))
    if nb and nb_graph_t is None:
        nb_graph_t = nested_nb_thresholds(parts, config, stage.models)
    totals = {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    t_per_part, t_min2_per_part, chosen = [], [], []
    for f in range(len(parts)):
        others = [p for g, p in enumerate(parts) if g != f]
        other_sizes = np.concatenate([z for g, z in enumerate(sizes) if g != f]) if sized else ()
        params = tune(others, stage, config, nb_graph_t[f] if nb else None, other_sizes)
        for m, v in score(parts[f], params, grid, config.test_rows).items():
            totals[m] += v
        t_per_part.append(params.t)
        t_min2_per_part.append(params.t_min2)
        chosen.append("+".join(params.stage.models))
    return Scores(*(totals[m] / n_total for m in ("f1", "precision", "recall"))), t_per_part, t_min2_per_part, chosen


def fit(parts: Sequence[Part], config: MatcherConfig, kinds: Mapping[str, str], names: Sequence[str],
        stage: Stage | None = None) -> MatcherParams:
    """`stage` (default: the full configured chain) tuned on every labelled part: what
    `Pool.matches` then applies."""
    final = stage or final_stage(config, names, kinds)
    nb_graph_t = STEPS["nb"].graph_thresholds(parts, final.models, config, tune) if final.has("nb") else None
    sized = any(s.needs_sizes for s in steps_of(final))
    sizes = np.concatenate([_group_sizes(pool.groups[pool.mask(seg)]) for pool, seg in parts]) if sized else ()
    return tune(parts, final, config, nb_graph_t, sizes)


def _most_common(choices: Sequence[str]) -> str:
    """'a+b (4/5)': the members most folds chose."""
    values, counts = np.unique(np.asarray(choices), return_counts=True)
    top = int(np.argmax(counts))
    return f"{values[top]} ({counts[top]}/{len(choices)})"


def _grid_index(grid, t: float) -> int:
    i = int(np.argmin(np.abs(grid - t)))
    if abs(grid[i] - t) > 1e-9:
        raise ValueError(f"threshold {t} is not on the tuning grid")
    return i


def _group_sizes(groups) -> np.ndarray:
    return np.unique(np.asarray(groups), return_counts=True)[1]

