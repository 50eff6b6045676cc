"""Name -> class registries filled by decorators (timm's `register_model` pattern)."""
from __future__ import annotations

from typing import Callable


def registrar(table: dict, attribute: str | None = None) -> Callable[[str], Callable]:
    """`register(name)` decorators that put the decorated object in `table` under `name`
    (and set ``obj.<attribute> = name`` when `attribute` is given)."""

    def register(name: str):
        def deco(obj):
            if attribute:
                setattr(obj, attribute, name)
            table[name] = obj
            return obj

        return deco

    return register


def lazy_attributes(package: str, table: dict[str, str]) -> Callable[[str], object]:
    """A PEP 562 module ``__getattr__`` serving `table`'s names (name -> submodule of `package`)
    on first use, so importing the package stays light (torch, lightgbm load only when needed)."""

    def __getattr__(name: str):
        if name in table:
            import importlib

            return getattr(importlib.import_module(f".{table[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def check_named_kind(what: str, name: str, kind: str, table: dict, reserved: tuple[str, ...] = ()) -> None:
    """DataError unless `name` is a usable folder / column name and `kind` is registered in `table`
    (naming the closest kinds); what configs of named members (CCKS members, KDD methods) share."""
    import difflib

    from .errors import DataError

    if not name or name.startswith(".") or "/" in name or name in reserved:
        raise DataError(f"{what} name {name!r}: must be non-empty, without '/', not starting with '.', "
                        f"and none of {', '.join(reserved)}")
    if kind not in table:
        close = difflib.get_close_matches(kind, list(table), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise DataError(f"{what} {name!r}: unknown kind {kind!r}; {hint}known: {', '.join(sorted(table))}")


def name_problems(what: str, names: list[str]) -> list[str]:
    """What is wrong with a config's list of `what` names: none at all, or some repeated."""
    from .errors import preview

    if not names:
        return [f"no {what}s"]
    repeated = sorted({n for n in names if names.count(n) > 1})
    return [f"repeated {what} name(s) {preview(repeated)}"] if repeated else []
