"""Post steps as objects (post/steps.py): the registry, a toy step in the chain, old saved stages."""
from __future__ import annotations

import json

import numpy as np
import pytest

from prodmatch.errors import DataError
from prodmatch.post.matcher import MatcherConfig, ablation, fit, stages
from prodmatch.post.pool import Pool
from prodmatch.post.stage import Stage, params_from_dict, params_to_dict
from prodmatch.post.steps import CHAIN, STEPS, Step, chain, register_step, unregister_step, with_step
from prodmatch.stack.lgbm import StackerConfig, group_matches, pair_matches

from .test_matcher import clustered, fold_parts

KINDS = {"a": "dense", "b": "dense"}


@pytest.fixture
def toy_step():
    """A set step after the unit filter that keeps only self matches, counting its calls."""
    calls = []

    @register_step("toy", after="units")
    class SelfOnly(Step):
        phase = "matches"
        targets = frozenset({"matcher", "stacker"})

        def enabled(self, config, names=()):
            return True

        def apply(self, matches, ctx):
            calls.append(ctx)
            keep = matches.rows == matches.cols
            return matches.subset(keep)

    yield calls
    unregister_step("toy")


def test_the_chain_order_and_phases():
    assert CHAIN[:7] == ["select", "min2", "nb", "union", "units", "chisel", "components"]
    assert [s.name for s in chain(MatcherConfig(), ["a", "b"])] == ["select", "min2", "nb", "union", "units", "chisel"]
    assert [s.name for s in chain(StackerConfig(), target="stacker")] == ["min2", "nb"]
    assert [s.name for s in chain(StackerConfig(graph="components"), target="stacker")] == ["min2", "nb", "components"]
    assert with_step(Stage("x", ("a",), ("chisel",)), "min2").steps == ("min2", "chisel")
    with pytest.raises(DataError, match="unknown post step"):
        with_step(Stage("x", ("a",)), "nope")


def test_a_registered_toy_step_runs_in_the_matcher_chain(toy_step):
    names = [s.name for s in stages(MatcherConfig(), ["a", "b"], KINDS)]
    assert names[-3:] == ["+units", "+toy", "+chisel"]  # placed after the unit filter
    models, groups, folds, titles = clustered()
    parts = fold_parts(models, groups, folds, titles)
    config = MatcherConfig(k=10, chisel=False)
    result = ablation(parts, config, KINDS, ["a", "b"], progress=False)
    assert list(result.table["stage"])[-2:] == ["+units", "+toy"]
    assert toy_step  # the ablation ran it
    params = fit(parts, config, KINDS, ["a", "b"], stage=stages(config, ["a", "b"], KINDS)[-1])
    assert params.stage.has("toy")
    out = parts[0][0].matches(params)
    assert out.pair_set() == {(i, i) for i in range(parts[0][0].n)}  # the toy step had the last word
    again = params_from_dict(json.loads(json.dumps(params_to_dict(params))))
    assert again == params


def test_a_registered_toy_step_runs_in_the_stacker_chain(toy_step):
    cands = pair_matches([0, 2], [1, 3], [0.9, 0.8], 4)
    out = group_matches(cands, 0.5, None, StackerConfig())
    assert out.pair_set() == {(i, i) for i in range(4)} and toy_step
    assert toy_step[-1].config == StackerConfig()


def test_register_step_checks_its_phase_and_place():
    with pytest.raises(ValueError, match="phase"):
        register_step("bad")(type("Bad", (Step,), {"phase": "later"}))
    with pytest.raises(ValueError, match="no step"):
        register_step("bad", after="nope")(type("Bad", (Step,), {}))
    assert "bad" not in STEPS and "bad" not in CHAIN


OLD_STAGE = {"name": "+chisel", "models": ["a", "b"], "nb": True, "units": True, "min2": True, "chisel": True,
             "select": False, "nb_graph": "own"}


def test_old_boolean_stage_dicts_load_as_steps():
    stage = Stage.from_dict(OLD_STAGE)
    assert stage == Stage("+chisel", ("a", "b"), ("min2", "nb", "union", "units", "chisel"), "own")
    single = Stage.from_dict({"name": "+nb", "models": ["a"], "nb": True, "units": False, "min2": True,
                              "chisel": False, "select": False, "nb_graph": "own"})
    assert single.steps == ("min2", "nb")
    assert Stage.from_dict(stage.to_dict()) == stage


def test_an_old_saved_matcher_still_predicts_the_same():
    """A matcher.json / bundle params dict of the boolean era: same sets as its new form."""
    models, groups, folds, titles = clustered()
    parts = fold_parts(models, groups, folds, titles)
    config = MatcherConfig(k=10, nb_graph="own", union_select="all")
    params = fit(parts, config, KINDS, ["a", "b"])
    new = params_to_dict(params)
    assert new["stage"]["steps"] == ["min2", "nb", "union", "units", "chisel"]
    old = {**new, "stage": {"name": new["stage"]["name"], "models": new["stage"]["models"],
                            **{flag: flag in new["stage"]["steps"] for flag in ("nb", "units", "min2", "chisel")},
                            "select": False, "nb_graph": "own"}}
    loaded = params_from_dict(json.loads(json.dumps(old)))
    assert loaded == params
    test_models, _, _, test_titles = clustered(n_groups=30, seed=5)
    pool = Pool({m: ("dense", x) for m, x in test_models.items()}, titles=test_titles, k=10)
    a, b = pool.matches(loaded), pool.matches(params)
    assert a.pair_set() == b.pair_set() and np.array_equal(a.scores, b.scores)


def test_a_stage_with_two_search_steps_is_refused():
    @register_step("search2")
    class Search2(Step):
        phase = "search"

    try:
        pool = Pool({"a": ("dense", np.eye(4))}, k=2)
        with pytest.raises(DataError, match="one search step"):
            pool.candidates(Stage("x", ("a",), ("nb", "search2")), {"a": 0.5})
    finally:
        unregister_step("search2")
