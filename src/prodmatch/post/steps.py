"""The post-processing chain as step objects, shared by the matcher and the stacker.

A step is one registered class (`register_step`): its name, the phase it acts in, which
pipelines it serves (``targets``: "matcher", "stacker"), which model kinds it applies to,
whether a config switches it on (`enabled`), and hooks: `extend` (the stage of its ablation
row), `apply` (what it does to candidates or match sets), `prepare` / `tune` (its part of
threshold tuning). `CHAIN` is the order steps run in and the ablation's rows come in; a
`Stage` names the steps it runs (`Stage.steps`). Adding a step: post/README.md.

Phases, in the order a pool runs them:

- ``"tune"``: acts only while thresholds are tuned (`prepare`; greedy union member selection)
- ``"models"``: decides the stage's models (the union of all of them)
- ``"search"``: which searched model each member brings (NB: blended, searched again); one per stage
- ``"candidates"``: filters the scored candidate pairs before thresholds (unit filter)
- ``"threshold"``: changes how sets are chosen from candidates (Min2, read by `select`)
- ``"matches"``: transforms the chosen match sets (chisel; the stacker's components)
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, ClassVar, NamedTuple, Sequence

import numpy as np

from ..errors import DataError
from ..registry import Registry, unknown
from .chisel import chisel
from .components import components
from .stage import UNION_GRAPH, MatcherParams, Stage
from .threshold import Matches
from .tune import best_thresholds
from .union import BLENDABLE
from .units import pair_conflicts

PHASES = ("tune", "models", "search", "candidates", "threshold", "matches")
TARGETS = ("matcher", "stacker")


class Context(NamedTuple):
    """What `Step.apply` may read: the pool searched, the matcher's params, the config."""

    pool: object = None  # a `post.pool.Pool` (None in the stacker)
    params: MatcherParams | None = None
    config: object = None  # `StackerConfig` in the stacker


class Tuning(NamedTuple):
    """What `Step.prepare` / `Step.tune` may use: the labelled parts, the matcher config, and the
    matcher's `tune` and `score_parts` (passed in: this module sits below the matcher)."""

    parts: Sequence
    config: object  # `post.matcher.MatcherConfig`
    tune: Callable
    score_parts: Callable


class Step:
    """One post-processing step; subclasses set the class attributes and override hooks they need."""

    name: ClassVar[str] = ""  # set by `register_step`
    phase: ClassVar[str] = "matches"
    row: ClassVar[str | None] = ""  # ablation row name ("" -> "+<name>"); None: no row, on from the chain's start
    per_model: ClassVar[bool] = False  # True: rows for each model alone (cumulative); False: rows of the chain
    targets: ClassVar[frozenset[str]] = frozenset({"matcher"})
    kinds: ClassVar[tuple[str, ...] | None] = None  # model kinds it applies to; None: every kind
    needs_sizes: ClassVar[bool] = False  # tuning hands the labelled parts' group sizes to `Context.params`

    def enabled(self, config, names: Sequence[str] = ()) -> bool:
        """Whether `config` (MatcherConfig / StackerConfig) switches the step on: its field of this name."""
        return bool(getattr(config, self.name, False))

    def applies(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    def extend(self, stage: Stage, config, names: Sequence[str]) -> Stage:
        """`stage` with this step on (the chain's rows grow by one step each)."""
        return with_step(stage, self.name)

    def apply(self, matches: Matches, ctx: Context) -> Matches:
        """Phases "candidates" (scored candidate pairs) and "matches" (chosen sets): the new pairs."""
        return matches

    def prepare(self, stage: Stage, nb_thresholds: dict, ctx: Tuning) -> tuple[Stage, dict]:
        """Before the thresholds are tuned: the stage and NB graph thresholds to tune them for."""
        return stage, nb_thresholds

    def tune(self, params: MatcherParams, ctx: Tuning) -> MatcherParams:
        """After the thresholds are tuned: adjusted params (e.g. a lower t for chisel)."""
        return params

    def __repr__(self) -> str:
        return f"<step {self.name} ({self.phase})>"


STEPS = Registry("post step")  # name -> the step (one instance per class)
CHAIN: list[str] = []  # step names in chain order


def register_step(name: str, *, after: str | None = None):
    """Class decorator: register the step under `name`, placed in `CHAIN` after step `after`
    (default: at the end); `STEPS` keeps an instance, `CHAIN` the order. Registering a name again replaces it."""

    def deco(cls: type[Step]) -> type[Step]:
        if cls.phase not in PHASES:
            raise ValueError(f"step {name!r}: {unknown('phase', cls.phase, PHASES)}")
        if after is not None and after not in CHAIN:
            raise ValueError(f"step {name!r}: no step {after!r} to come after")
        cls.name = name
        if cls.row == "":
            cls.row = "+" + name
        if name in CHAIN:
            CHAIN.remove(name)
        CHAIN.insert(CHAIN.index(after) + 1 if after is not None else len(CHAIN), name)
        STEPS.register(name, cls(), replace=True)
        return cls

    return deco


def unregister_step(name: str) -> None:
    """Remove a registered step (tests' toy steps)."""
    STEPS.pop(name)
    CHAIN.remove(name)


# ---------------------------------------------------------------- chains and stages
def step(name: str) -> Step:
    return STEPS.get(name)


def steps_of(stage: Stage, phase: str | None = None) -> list[Step]:
    """The stage's steps in chain order (only those of `phase` when given)."""
    for name in stage.steps:
        step(name)
    return [STEPS[n] for n in CHAIN if n in stage.steps and (phase is None or STEPS[n].phase == phase)]


def with_step(stage: Stage, name: str) -> Stage:
    """`stage` with step `name` on, its step names kept in chain order."""
    step(name)
    on = set(stage.steps) | {name}
    return replace(stage, steps=tuple(n for n in CHAIN if n in on))


def chain(config, names: Sequence[str] = (), target: str = "matcher") -> list[Step]:
    """The steps `config` switches on for `target` ("matcher" or "stacker"), in chain order."""
    if target not in TARGETS:
        raise ValueError(str(unknown("target", target, TARGETS)))
    return [STEPS[n] for n in CHAIN if target in STEPS[n].targets and STEPS[n].enabled(config, names)]


def changes_sets(steps: Sequence[Step] | Stage) -> bool:
    """Whether a step transforms the chosen match sets (then thresholds cannot be read off curves)."""
    steps = steps_of(steps) if isinstance(steps, Stage) else steps
    return any(s.phase == "matches" for s in steps)


def single_rows() -> tuple[str, ...]:
    """Ablation row names of models alone: "threshold" and the per-model steps' rows."""
    return ("threshold",) + tuple(STEPS[n].row for n in CHAIN if STEPS[n].per_model and STEPS[n].row)


def chain_rows() -> tuple[str, ...]:
    """Ablation row names of the chain (the stages `predict` may run)."""
    return tuple(STEPS[n].row for n in CHAIN if not STEPS[n].per_model and STEPS[n].row and "matcher" in STEPS[n].targets)


def select_matches(candidates: Matches, t: float, t_min2: float | None, steps: Sequence[Step], ctx: Context) -> Matches:
    """Sets from scored candidates: threshold t (+ Min2 when the steps hold it), then every
    "matches" step in order. The one place matcher and stacker turn candidates into sets."""
    from .threshold import select

    out = select(candidates, t, t_min2 if any(s.name == "min2" for s in steps) else None)
    for s in steps:
        if s.phase == "matches":
            out = s.apply(out, ctx)
    return out


# ---------------------------------------------------------------- the steps
@register_step("select")
class SelectUnion(Step):
    """Greedy union members (forward selection on the labelled parts, before anything is tuned)."""

    phase = "tune"
    row = None

    def enabled(self, config, names=()) -> bool:
        return bool(getattr(config, "union", False)) and getattr(config, "union_select", "") == "greedy" \
            and len(names) > 1

    def prepare(self, stage, nb_thresholds, ctx):
        return select_union(ctx.parts, stage, ctx.config, nb_thresholds), nb_thresholds


@register_step("min2")
class Min2(Step):
    """Min2: a row left alone at t takes its best neighbour above t_min2 (`threshold.select`)."""

    phase = "threshold"
    per_model = True
    targets = frozenset(TARGETS)


@register_step("nb")
class NeighbourhoodBlend(Step):
    """NB: each member's vectors blended on a thresholded match graph and searched again; in the
    stacker the blended similarities are pair features. Graph thresholds: `graph_thresholds`."""

    phase = "search"
    per_model = True
    targets = frozenset(TARGETS)
    kinds = BLENDABLE

    def extend(self, stage, config, names):
        return replace(with_step(stage, self.name), nb_graph=getattr(config, "nb_graph", "own"))

    def key(self, stage: Stage, nb_thresholds) -> tuple:
        """The graph thresholds the stage's searches depend on, as a hashable tuple."""
        nb_thresholds = nb_thresholds or {}
        if stage.nb_graph == "union":
            if UNION_GRAPH not in nb_thresholds:
                raise DataError("NB over the union graph needs its threshold")
            return ((UNION_GRAPH, float(nb_thresholds[UNION_GRAPH])),)
        missing = [m for m in stage.models if m not in nb_thresholds]
        if missing:
            raise DataError(f"NB needs a graph threshold for {missing}")
        return tuple((m, float(nb_thresholds[m])) for m in stage.models)

    def models(self, pool, stage: Stage, nb_thresholds) -> list:
        """Every member blended (own graph at its threshold, or the members' union graph) and searched."""
        graph_t = dict(self.key(stage, nb_thresholds))
        if stage.nb_graph == "union":
            return [pool.union_blended(m, stage.models, graph_t[UNION_GRAPH]) for m in stage.models]
        return [pool.model(m, graph_t.get(m)) for m in stage.models]

    def prepare(self, stage, nb_thresholds, ctx):
        if stage.nb_graph != "union":
            return stage, nb_thresholds
        graph = Stage("graph", stage.models)
        return stage, {**nb_thresholds, UNION_GRAPH: ctx.tune(ctx.parts, graph, ctx.config, target_sizes=()).t}

    @staticmethod
    def graph_thresholds(parts, models: Sequence[str], config, tune: Callable) -> dict[str, float]:
        """Each model's own NB graph threshold: its threshold-only t tuned on `parts`."""
        return {m: tune(parts, Stage("threshold", (m,)), config).t for m in models}


@register_step("union")
class Union(Step):
    """a+b-ab union of every model on the union of their candidates (the chain's members)."""

    phase = "models"

    def enabled(self, config, names=()) -> bool:
        return bool(getattr(config, "union", False)) and len(names) > 1

    def extend(self, stage, config, names):
        return replace(with_step(stage, self.name), models=tuple(names))


@register_step("units")
class UnitFilter(Step):
    """Drop candidate pairs whose titles state conflicting quantities (`post.units`)."""

    phase = "candidates"

    def apply(self, matches, ctx):
        if ctx.pool.titles is None:
            raise DataError("the unit filter needs titles")
        return matches.subset(~pair_conflicts(ctx.pool.titles, matches.rows, matches.cols))


@register_step("chisel")
class Chisel(Step):
    """Trim match sets to train's group-size distribution (`post.chisel`); tuned below t."""

    phase = "matches"
    needs_sizes = True

    def apply(self, matches, ctx):
        return chisel(matches, ctx.params.target_sizes)

    def tune(self, params, ctx):
        config, grid = ctx.config, ctx.config.grid
        if config.chisel_as_threshold:
            return replace(params, t=float(grid[0]), t_min2=None)
        # chisel only removes, so it pays off with a lower t: scan a window below the tuned t
        best, best_f1 = params, -np.inf
        for t in grid[(grid <= params.t + 1e-9) & (grid >= params.t - config.chisel_window - 1e-9)][::-1]:
            trial = replace(params, t=float(t), t_min2=None if params.t_min2 is None else min(params.t_min2, float(t)))
            f1 = ctx.score_parts(ctx.parts, trial, grid, config.test_rows)["f1"]
            if f1 > best_f1 + 1e-12:
                best, best_f1 = trial, f1
        return best


@register_step("components")
class Components(Step):
    """The stacker's graph step: rows of a small connected component match the whole component."""

    phase = "matches"
    row = None
    targets = frozenset({"stacker"})

    def enabled(self, config, names=()) -> bool:
        return getattr(config, "graph", "none") == "components"

    def apply(self, matches, ctx):
        return components(matches, ctx.config.component_cap)


def select_union(parts, stage: Stage, config, nb_thresholds) -> Stage:
    """Forward selection of union members on the labelled parts (without set-changing steps such
    as chisel, for speed): start from the best model alone, add the model that raises the tuned
    F1 most, stop when none does."""
    grid = config.grid
    drop = [s.name for s in steps_of(stage) if s.phase == "matches"]
    probe = replace(stage.without("select", *drop), nb_graph="own")  # own graphs: no threshold per member set

    def value(members) -> float:
        trial = replace(probe, models=tuple(m for m in stage.models if m in members))
        curves = [pool.curve(trial, nb_thresholds, grid, seg, config.test_rows) for pool, seg in parts]
        t_index, t_min2_index = best_thresholds(curves, min2=trial.has("min2"))
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
    return replace(stage.without("select"), models=tuple(m for m in stage.models if m in chosen))
