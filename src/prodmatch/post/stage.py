"""What the matcher scores and saves: a `Stage` (models + the names of the chain steps on top) and
the `MatcherParams` tuned for it, with their JSON forms (old saved forms still load)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

UNION_GRAPH = "(union graph)"  # nb_thresholds key of the union graph's threshold (no model has this name)

# the boolean stage fields of matcher.json / bundles written before steps were objects
_OLD_FLAGS = ("select", "min2", "nb", "units", "chisel")
_OLD_ORDER = ("select", "min2", "nb", "union", "units", "chisel")  # the chain of that time


@dataclass(frozen=True)
class Stage:
    """One chain setting to score: models (first alone, or union of all) and the steps on top.

    `steps` names registered steps (`post.steps.STEPS`); they run in the chain's order
    (`post.steps.CHAIN`), whatever the order here. `nb_graph` is the NB step's graph: "own"
    blends each model on its own graph, "union" every model on the members' union graph.
    """

    name: str
    models: tuple[str, ...]
    steps: tuple[str, ...] = ()
    nb_graph: str = "own"

    def has(self, step: str) -> bool:
        return step in self.steps

    def without(self, *steps: str) -> "Stage":
        """This stage less the named steps."""
        return replace(self, steps=tuple(s for s in self.steps if s not in steps))

    @property
    def label(self) -> str:
        return self.models[0] if len(self.models) == 1 else "union(" + "+".join(self.models) + ")"

    def to_dict(self) -> dict:
        return {"name": self.name, "models": list(self.models), "steps": list(self.steps), "nb_graph": self.nb_graph}

    @classmethod
    def from_dict(cls, data: dict) -> "Stage":
        """A saved stage; old ones (boolean fields nb/units/min2/chisel/select) become step names."""
        models = tuple(data["models"])
        if "steps" in data:
            steps = tuple(data["steps"])
        else:
            on = {s for s in _OLD_FLAGS if data.get(s)} | ({"union"} if len(models) > 1 else set())
            steps = tuple(s for s in _OLD_ORDER if s in on)  # several models: the old chain's union
        return cls(str(data["name"]), models, steps, str(data.get("nb_graph", "own")))


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
        "stage": params.stage.to_dict(),
        "nb_thresholds": params.nb_thresholds,
        "t": params.t,
        "t_min2": params.t_min2,
        "target_size_counts": {str(s): int(c) for s, c in zip(sizes, counts)},
    }


def params_from_dict(data: dict) -> MatcherParams:
    stage = Stage.from_dict(data["stage"])
    sizes = np.repeat([int(s) for s in data["target_size_counts"]], list(data["target_size_counts"].values()))
    return MatcherParams(stage, dict(data["nb_thresholds"]), float(data["t"]),
                         None if data["t_min2"] is None else float(data["t_min2"]), tuple(int(s) for s in sizes))


class Part(NamedTuple):
    """The rows of one fold (`segment` of `pool`; None: all of it), scored within the pool they were searched in."""

    pool: object  # a `post.pool.Pool`
    segment: object = None
