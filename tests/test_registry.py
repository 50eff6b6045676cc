"""`prodmatch.registry.Registry`: messages, close-name hints, lazy builtins, refused re-registration."""
from __future__ import annotations

import subprocess
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prodmatch.errors import DataError
from prodmatch.registry import Registry, check_named_kind, unknown


def test_get_names_and_the_unknown_message():
    reg = Registry("pair loss", attribute="name")

    @reg.register("hinge")
    class Hinge:
        pass

    reg.register("ce", int, tag=False)
    assert reg.get("hinge") is Hinge and reg["ce"] is int and Hinge.name == "hinge"
    assert reg.names() == ["ce", "hinge"] and list(reg) == ["hinge", "ce"]  # iteration: registration order
    assert "ce" in reg and "bce" not in reg and len(reg) == 2
    with pytest.raises(DataError) as err:
        reg.get("hingee")
    assert str(err.value) == "unknown pair loss 'hingee'; did you mean hinge? known: ce, hinge"
    with pytest.raises(DataError) as err:
        reg["xyz"]
    assert str(err.value) == "unknown pair loss 'xyz'; known: ce, hinge"


def test_unknown_names_up_to_three_close_names_and_sorts_the_known():
    assert str(unknown("kind", "towr", ["two_tower", "tower", "towers", "tower2", "cross"])) == (
        "unknown kind 'towr'; did you mean tower, towers, tower2? known: cross, tower, tower2, towers, two_tower")
    assert str(unknown("ensemble", None, ["threshold", "f1-vote"])) == "unknown ensemble None; known: f1-vote, threshold"


def test_check_named_kind_keeps_its_message():
    with pytest.raises(DataError) as err:
        check_named_kind("member", "m", "two-tower", Registry("member kind", {"two_tower": 1, "cross": 2}))
    assert str(err.value) == "member 'm': unknown kind 'two-tower'; did you mean two_tower? known: cross, two_tower"


def test_registering_twice_is_refused_unless_replace():
    reg = Registry("head", {"a": 1})
    reg.register("a", 1)  # the same object again (a module imported twice) is harmless
    with pytest.raises(ValueError, match="head 'a' is already registered .*replace=True"):
        reg.register("a", 2)
    reg.register("a", 2, replace=True)
    assert reg.get("a") == 2


def test_unregister_pop_and_del():
    reg = Registry("step", {"a": 1, "b": 2, "c": 3})
    assert reg.pop("a") == 1 and reg.pop("a", None) is None
    del reg["b"]
    assert reg.names() == ["c"]
    with pytest.raises(DataError, match="unknown step 'b'"):
        reg.unregister("b")


def test_tag_false_leaves_the_attribute():
    reg = Registry("member kind", attribute="kind")

    class Shared:
        kind = ""

    reg.register("x", Shared, tag=False)
    reg.register("y", Shared, tag=False)
    assert Shared.kind == "" and reg.get("x") is reg.get("y") is Shared


def _fake_module(monkeypatch, name: str, body) -> dict:
    """A module `name` whose import runs `body(module)` and counts the imports."""
    imports = {"n": 0}

    class Finder:
        def find_spec(self, fullname, path=None, target=None):
            import importlib.machinery

            if fullname != name:
                return None
            return importlib.machinery.ModuleSpec(fullname, self)

        def create_module(self, spec):
            return types.ModuleType(spec.name)

        def exec_module(self, module):
            imports["n"] += 1
            body(module)

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    monkeypatch.delitem(sys.modules, name, raising=False)
    return imports


def test_builtin_modules_load_once_on_first_lookup(monkeypatch):
    reg = Registry("widget", builtins="fake_widgets")
    imports = _fake_module(monkeypatch, "fake_widgets", lambda m: reg.register("w1", "first"))
    assert imports["n"] == 0  # constructing imports nothing
    assert reg.names() == ["w1"] and imports["n"] == 1
    assert reg.get("w1") == "first" and "w1" in reg and list(reg) == ["w1"]
    with pytest.raises(DataError, match="unknown widget 'w2'; did you mean w1"):
        reg.get("w2")
    assert imports["n"] == 1


def test_declared_builtins_are_named_without_import_and_imported_on_get(monkeypatch):
    def body(module):
        module.generate = "the generator"  # registered by the registry (no decorator in the module)

    reg = Registry("synthetic data set", builtins={"fake": "fake_synth:generate", "other": "fake_other:x"})
    imports = _fake_module(monkeypatch, "fake_synth", body)
    assert reg.names() == ["fake", "other"] and "fake" in reg and imports["n"] == 0
    assert reg.get("fake") == "the generator" and imports["n"] == 1
    assert reg.get("fake") == "the generator" and imports["n"] == 1
    with pytest.raises(DataError, match="unknown synthetic data set 'fak'; did you mean fake"):
        reg.get("fak")


def test_a_failed_builtin_import_is_retried(monkeypatch):
    reg = Registry("widget", builtins="fake_broken")
    state = {"fail": True}

    def body(module):
        if state["fail"]:
            raise ImportError("broken")
        reg.register("w", 1)

    _fake_module(monkeypatch, "fake_broken", body)
    with pytest.raises(ImportError):
        reg.names()
    state["fail"] = False
    monkeypatch.delitem(sys.modules, "fake_broken", raising=False)
    assert reg.names() == ["w"]


@given(st.lists(st.text(min_size=1, max_size=12), unique=True, max_size=12))
def test_names_round_trip(names):
    reg = Registry("thing")
    for i, name in enumerate(names):
        reg.register(name, i)
    assert reg.names() == sorted(names) and list(reg) == names
    assert all(reg.get(name) == i and name in reg for i, name in enumerate(names))
    assert [n for n, _ in reg.items()] == names
    for name in names:
        reg.unregister(name)
    assert reg.names() == [] and len(reg) == 0


def test_shipped_declared_builtins_match_their_decorators():
    """Each declared ``name: "module:attr"`` builtin registers itself under that name."""
    from prodmatch.encoders._registry import ENCODERS
    from prodmatch.pairs._registry import PAIR_MODELS
    from prodmatch.task import TASKS

    for name in TASKS.names():
        assert TASKS.get(name).function("generate").__name__ == f"generate_{name}"
    for registry in (ENCODERS, PAIR_MODELS):
        declared = list(registry)
        assert [cls.kind for _, cls in registry.items()] == declared


def test_cli_parser_imports_neither_torch_nor_the_generators():
    code = ("import sys; from prodmatch.cli import build_parser; build_parser(); "
            "print('torch' in sys.modules, any(m.startswith('prodmatch.data.synth.') and m != "
            "'prodmatch.data.synth._registry' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
