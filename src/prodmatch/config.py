"""Typed configs: frozen dataclasses filled from YAML (or dicts), with errors that name the bad key.

Every stage's settings are a dataclass with defaults; a YAML file only states what differs.
Shipped configs live in ``prodmatch/configs/*.yaml`` and are found by bare name (``tiny-image``).
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import DataError

T = TypeVar("T")


def shipped_configs() -> list[str]:
    """Names of the configs that ship with the package (``configs/<name>.yaml``)."""
    folder = resources.files("prodmatch") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_yaml(path_or_name) -> dict:
    """A YAML mapping from a file path, or from a shipped config by bare name."""
    path = Path(str(path_or_name))
    if not path.is_file():
        shipped = resources.files("prodmatch") / "configs" / f"{path_or_name}.yaml"
        if not shipped.is_file():
            close = difflib.get_close_matches(str(path_or_name), shipped_configs(), n=3, cutoff=0.4)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; shipped: {', '.join(shipped_configs())}"
            raise FileNotFoundError(f"config {path_or_name!r} is neither a file nor a shipped config{hint}")
        text = shipped.read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise DataError(f"config {path_or_name}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(source, cls: type[T]) -> T:
    """`cls` filled from a YAML path, a shipped config name, a dict, or an instance (returned as is)."""
    if isinstance(source, cls):
        return source
    data = source if isinstance(source, dict) else read_yaml(source)
    return from_dict(cls, data)


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass `cls` from a (nested) dict; unknown keys and wrong types raise DataError."""
    if not isinstance(data, dict):
        raise DataError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(fields)})"
        raise DataError(f"{where or cls.__name__}: unknown key {key!r}{hint}")
    hints = typing.get_type_hints(cls)
    values = {k: _coerce(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**values)


def to_dict(config) -> dict:
    """Plain dict of a config (tuples as lists), for JSON/YAML artifacts."""
    return _plain(dataclasses.asdict(config))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(tp, value, where: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except DataError as err:
                errors.append(str(err))
        raise DataError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {tp}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise DataError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise DataError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise DataError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_coerce(kt, k, where): _coerce(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise DataError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise DataError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    return value
