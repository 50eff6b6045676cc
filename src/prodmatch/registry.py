"""Name -> object registries (timm's `register_model` pattern): one `Registry` class behind every table.

A leaf module (it imports only `prodmatch.errors`), so any module may import it.
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterable, Iterator, Mapping

from .errors import DataError

_MISSING = object()


def unknown(what: str, name, known: Iterable[str]) -> DataError:
    """The DataError for `name` not among `known`: ``unknown <what> 'x'; did you mean a, b? known: a, b, c``
    (the closest names, difflib, when some are close; `known` sorted)."""
    import difflib

    known = sorted(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return DataError(f"unknown {what} {name!r}; {hint}known: {', '.join(known)}")


class Registry:
    """Objects (classes, functions, instances) by name; `what` names the kind of thing in messages
    ("pair loss": ``unknown pair loss 'x'; did you mean ...? known: ...``).

    `attribute`: `register` sets ``obj.<attribute> = name`` (e.g. a class's ``kind``).
    `builtins`: what fills the table on first need, so importing the registry stays light:
    - module names (a str or a tuple), imported once on the first lookup (their decorators register);
    - or ``{name: "module:attr"}``: names known without any import (CLI choices), each module imported
      when its name is first looked up (the object registers itself there, or ``attr`` is registered).

    Iteration follows declaration / registration order; `names` is sorted. ``registry[name]`` is `get`.
    """

    def __init__(self, what: str, entries: Mapping[str, object] | None = None, *, attribute: str | None = None,
                 builtins: str | tuple[str, ...] | Mapping[str, str] | None = None) -> None:
        self.what, self.attribute = what, attribute
        self._table: dict[str, object] = {}
        self._declared: dict[str, str] = dict(builtins) if isinstance(builtins, Mapping) else {}
        self._modules: tuple[str, ...] = (builtins,) if isinstance(builtins, str) else \
            tuple(builtins or ()) if not isinstance(builtins, Mapping) else ()
        self._loaded = not self._modules
        for name, obj in (entries or {}).items():
            self.register(name, obj)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self)})"

    # ------------------------------------------------------------------ filling
    def register(self, name: str, obj=_MISSING, *, replace: bool = False, tag: bool = True):
        """Put `obj` in the table under `name`; without `obj`, a decorator doing so. A name already
        holding another object is refused unless `replace`; ``tag=False`` leaves ``obj.<attribute>``
        alone (one object under several names)."""
        if obj is _MISSING:
            return lambda o: self.register(name, o, replace=replace, tag=tag)
        held = self._table.get(name, _MISSING)
        if held is not _MISSING and held is not obj and not replace:
            raise ValueError(f"{self.what} {name!r} is already registered ({_label(held)}); "
                             f"pass replace=True to replace it")
        if self.attribute and tag:
            setattr(obj, self.attribute, name)
        self._table[name] = obj
        return obj

    def unregister(self, name: str, default=_MISSING):
        """Remove `name` and return its object (`default` when it is not registered; DataError without one)."""
        self._load()
        if name in self._declared and name not in self._table:
            self._load_declared(name)
        if name in self._table:
            self._declared.pop(name, None)
            return self._table.pop(name)
        if default is not _MISSING:
            return default
        raise unknown(self.what, name, self.names())

    pop = unregister

    def __delitem__(self, name: str) -> None:
        self.unregister(name)

    # ------------------------------------------------------------------ lookups
    def get(self, name: str, *, where: str = ""):
        """The object registered as `name`; DataError naming the closest and all known names otherwise
        (prefixed ``<where>: `` when given, e.g. the config being read)."""
        if name not in self:  # (an unhashable name, a YAML list or mapping, is not in it either)
            err = unknown(self.what, name, self.names())
            raise DataError(f"{where}: {err}") if where else err
        if name not in self._table:
            self._load_declared(name)
        return self._table[name]

    def __getitem__(self, name: str):
        return self.get(name)

    def names(self) -> list[str]:
        """Every name, sorted (declared builtins without importing them)."""
        return sorted(self)

    def items(self) -> list[tuple[str, object]]:
        """(name, object) pairs in iteration order (every declared builtin imported)."""
        return [(name, self.get(name)) for name in self]

    def __contains__(self, name) -> bool:
        self._load()
        return isinstance(name, Hashable) and (name in self._table or name in self._declared)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter([*self._declared, *(n for n in self._table if n not in self._declared)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # ------------------------------------------------------------------ builtins
    def _load(self) -> None:
        """Import the builtin modules, once (a failed import is retried on the next lookup)."""
        if self._loaded:
            return
        import importlib

        self._loaded = True
        try:
            for module in self._modules:
                importlib.import_module(module)
        except BaseException:
            self._loaded = False
            raise

    def _load_declared(self, name: str) -> None:
        import importlib

        module, _, attr = self._declared[name].partition(":")
        loaded = importlib.import_module(module)
        if name not in self._table:
            self.register(name, getattr(loaded, attr))


def _label(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def lazy_attributes(package: str, table: dict[str, str]) -> Callable[[str], object]:
    """A PEP 562 module ``__getattr__`` serving `table`'s names (name -> submodule of `package`)
    on first use, so importing the package stays light (torch, lightgbm load only when needed)."""

    def __getattr__(name: str):
        if name in table:
            import importlib

            return getattr(importlib.import_module(f".{table[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def check_named_kind(what: str, name: str, kind: str, table, reserved: tuple[str, ...] = ()) -> None:
    """DataError unless `name` is a usable folder / column name and `kind` is registered in `table`
    (a `Registry` or a dict; naming the closest kinds); what configs of named members (CCKS members,
    KDD methods) share."""
    if not name or name.startswith(".") or "/" in name or name in reserved:
        raise DataError(f"{what} name {name!r}: must be non-empty, without '/', not starting with '.', "
                        f"and none of {', '.join(reserved)}")
    if kind not in table:
        raise DataError(f"{what} {name!r}: {unknown('kind', kind, table)}")


def name_problems(what: str, names: list[str]) -> list[str]:
    """What is wrong with a config's list of `what` names: none at all, or some repeated."""
    from .errors import preview

    if not names:
        return [f"no {what}s"]
    repeated = sorted({n for n in names if names.count(n) > 1})
    return [f"repeated {what} name(s) {preview(repeated)}"] if repeated else []
