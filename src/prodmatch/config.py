"""Typed configs: frozen dataclasses filled from YAML (or dicts), with errors that name the bad key.

Every stage's settings are a dataclass with defaults; a YAML file only states what differs.
Shipped configs live in ``prodmatch/configs/*.yaml`` and are found by bare name (``tiny-image``).
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import DataError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Range:
    """Allowed values of a numeric setting: ``ge`` / ``gt`` / ``le`` / ``lt`` bounds (None: open)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __str__(self) -> str:
        parts = [f"{op} {bound:g}" for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
                 if bound is not None]
        return " and ".join(parts)

    def admits(self, value) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))


AT_LEAST_1 = Range(ge=1)
POSITIVE = Range(gt=0)
NON_NEGATIVE = Range(ge=0)
SHARE = Range(ge=0, le=1)
# The one table of numeric ranges: a setting of this name is checked wherever it appears - a config
# field, a member's options, LightGBM's parameters, a command-line flag. Names keep one meaning
# across the package, so one entry serves every task. (Every float anywhere must also be finite.)
SETTING_RANGES: dict[str, Range] = {
    **dict.fromkeys(("k", "epochs", "batch_size", "eval_batch_size", "accumulate", "jobs",
                     "max_length", "dim", "hidden", "word_dim", "gate_hidden", "fusion_dim", "context_hidden",
                     "image_size", "feature_dim", "chunk_rows", "n_estimators", "min_probe", "hnsw_m",
                     "ef_construction", "ef_search", "refine_factor", "pq_dims_per_code", "train_rows_per_cell",
                     "min_data_in_leaf", "max_bin", "per_class", "component_cap", "test_rows", "rows",
                     "max_rows", "recall_sample", "cross_layers", "top"), AT_LEAST_1),
    **dict.fromkeys(("lr", "learning_rate", "grid_step", "s", "gem_p",
                     "cells_per_sqrt_n", "probe_share"), POSITIVE),
    **dict.fromkeys(("seed", "fold_seed", "test_fold", "threads", "num_workers", "workers",
                     "weight_decay", "lr_backbone", "lr_head", "warmup_epochs", "warmup_steps", "max_steps", "eval_every",
                     "max_steps_per_epoch", "train_pairs", "holdout_pairs", "summarize_words",
                     "early_stopping_rounds", "lambda_l1", "lambda_l2", "min_sum_hessian_in_leaf", "grad_clip",
                     "ls_eps", "margin", "m", "m_warmup", "chisel_window", "num_threads", "bagging_freq"),
                    NON_NEGATIVE),
    **dict.fromkeys(("dropout", "hflip", "color_jitter", "blur", "warmup", "min_lr_ratio", "grid_min",
                     "holdout_items", "unseen_share", "feature_fraction", "bagging_fraction", "target_recall"),
                    SHARE),
    **dict.fromkeys(("num_leaves", "n_folds", "select_folds"), Range(ge=2)),
    "pretrain.epochs": NON_NEGATIVE,  # 0: no pre-training (KDD's sentence loss)
}


def setting_problem(name: str, value, where: str | None = None) -> str | None:
    """Why `value` is no valid `name` (not finite, or outside its SETTING_RANGES entry: the one of its
    dotted path `where` when the table has one, else `name`'s), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    allowed = (range_of(where) if where else None) or range_of(name)
    if allowed is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
            and not allowed.admits(value):
        return f"must be {allowed}, got {value!r}"
    return None


def range_of(path: str) -> Range | None:
    """The range of a setting at dotted `path` ("methods[2].options.pretrain.epochs"): its last two
    names when the table has them ("pretrain.epochs"), else its own name ("epochs")."""
    names = re.sub(r"\[\d+\]", "", path).split(".")
    return SETTING_RANGES.get(".".join(names[-2:])) or SETTING_RANGES.get(names[-1])


def check_setting(name: str, value, where: str | None = None):
    """`value` if it is finite and inside its range (SETTING_RANGES, by `where`'s dotted path or
    `name`), else a DataError naming it."""
    problem = setting_problem(name, value, where)
    if problem:
        raise DataError(f"{where or name}: {problem}")
    return value


def setting(name: str, kind: type = int):
    """An argparse `type` for flag `name`: the number, checked against SETTING_RANGES like a config key."""
    import argparse

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        problem = setting_problem(name, value)
        if problem:  # argparse prints "prodmatch <cmd>: error: argument --flag: <problem>", exit 2
            raise argparse.ArgumentTypeError(problem)
        return value
    parse.__name__ = name
    return parse


def check_settings(value, where: str):
    """Check every named number in a nested mapping / list (members' options, LightGBM parameters)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            check_settings(inner, f"{where}.{key}")
            check_setting(str(key), inner, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            check_settings(inner, f"{where}[{i}]")
    elif isinstance(value, float):
        check_setting("", value, where)
    return value


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a registered kind that takes none (a member, method or sampler)."""


def shipped_configs() -> list[str]:
    """Names of the configs that ship with the package (``configs/<name>.yaml``)."""
    folder = resources.files("prodmatch") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-3`` is a number (YAML 1.1 reads it as text)."""


_Loader.yaml_implicit_resolvers = {first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:float"]
                                   for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"""^(?:
     [-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))


def load_yaml(text: str):
    """YAML text -> Python data (`_Loader`); a value that contains itself through an alias is refused."""
    data = yaml.load(text, Loader=_Loader)
    _refuse_cycles(data, ())
    return data


def _refuse_cycles(obj, inside: tuple) -> None:
    if isinstance(obj, (dict, list)):
        if id(obj) in inside:
            raise DataError("a YAML alias makes a value contain itself")
        for value in obj.values() if isinstance(obj, dict) else obj:
            _refuse_cycles(value, (*inside, id(obj)))


def read_yaml(path_or_name) -> dict:
    """A YAML mapping from a file path, or from a shipped config by bare name."""
    path = Path(str(path_or_name))
    if path.is_dir():
        raise DataError(f"config {path} is a folder, not a config file")
    if not path.is_file():
        shipped = resources.files("prodmatch") / "configs" / f"{path_or_name}.yaml"
        if not shipped.is_file():
            close = difflib.get_close_matches(str(path_or_name), shipped_configs(), n=3, cutoff=0.4)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; shipped: {', '.join(shipped_configs())}"
            raise FileNotFoundError(f"config {path_or_name!r} is neither a file nor a shipped config{hint}")
        text = shipped.read_text(encoding="utf-8")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"config {path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})") from None
        except OSError as err:
            raise DataError(f"config {path}: cannot read it ({err.strerror})") from None
    try:
        data = load_yaml(text) or {}
    except DataError as err:
        raise DataError(f"config {path_or_name}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise DataError(f"config {path_or_name}: not valid YAML{where}: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise DataError(f"config {path_or_name}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(source, cls: type[T]) -> T:
    """`cls` filled from a YAML path, a shipped config name, a dict, or an instance (returned as is)."""
    if isinstance(source, cls):
        return source
    data = source if isinstance(source, dict) else read_yaml(source)
    return from_dict(cls, data)


def with_overrides(source, assignments=()):
    """`source` (a YAML path, a shipped name, a dict or None: ``{}``) as a dict with ``KEY=VALUE``
    `assignments` applied (`apply_overrides`); `source` itself when there are none."""
    if not assignments:
        return source
    data = {} if source is None else source if isinstance(source, dict) else read_yaml(source)
    return apply_overrides(data, assignments)


def apply_overrides(data: dict, assignments) -> dict:
    """A copy of config mapping `data` with each ``KEY=VALUE`` assignment (the ``--set`` flag) applied.

    KEY is a dotted path (``train.epochs``, ``methods[1].options.lr``; missing mappings are made),
    VALUE is parsed as YAML (``2``, ``1e-3``, ``null``, ``[a, b]``, ``{s: 30}``). Numbers are checked
    against SETTING_RANGES by their path, as `load_config` checks a file's; unknown keys are left
    to the typed config, which names the close ones when it is built from the result.
    """
    out = copy.deepcopy(data)
    for text in assignments:
        path, value = parse_assignment(text)
        node, where = out, ""
        for i, key in enumerate(path):
            last = i == len(path) - 1
            if isinstance(key, int):
                if not isinstance(node, list) or not -len(node) <= key < len(node):
                    raise DataError(f"--set {text}: {where or 'the config'} has no item [{key}]")
                where = f"{where}[{key}]"
            else:
                if not isinstance(node, dict):
                    raise DataError(f"--set {text}: {where} is {type(node).__name__}, not a mapping")
                where = f"{where}.{key}" if where else key
                if not last and node.get(key) is None:
                    node[key] = {} if isinstance(path[i + 1], str) else []
            if last:
                node[key] = value
            else:
                node = node[key]
        problem = setting_problem(str(path[-1]), value, where) if isinstance(value, (int, float)) else None
        if problem:
            raise DataError(f"--set {text}: {where} {problem}")
        try:
            check_settings(value, where)
        except DataError as err:
            raise DataError(f"--set {text}: {err}") from None
    return out


_KEY = re.compile(r"[A-Za-z_][\w-]*((\[-?\d+\])*)")


def parse_assignment(text: str) -> tuple[list, Any]:
    """``"train.arcface.m=0.4"`` -> (["train", "arcface", "m"], 0.4); DataError when malformed."""
    key, sep, raw = str(text).partition("=")
    parts = key.strip().split(".")
    if not sep or not all(_KEY.fullmatch(p) for p in parts):
        raise DataError(f"--set {text}: expected KEY=VALUE with a dotted KEY (train.epochs=2, methods[0].lr=0.1)")
    path: list = []
    for part in parts:
        name, _, rest = part.partition("[")
        path += [name, *(int(i) for i in re.findall(r"-?\d+", "[" + rest if rest else ""))]
    try:
        value = load_yaml(raw)
    except DataError as err:
        raise DataError(f"--set {text}: {err}") from None
    except yaml.YAMLError as err:
        raise DataError(f"--set {text}: the value is not valid YAML ({getattr(err, 'problem', None) or err})") from None
    return path, value


def override_argument(parser) -> None:
    """Add the repeatable ``--set KEY=VALUE`` flag (`apply_overrides`) to an argparse parser."""
    import argparse

    def assignment(text: str) -> str:
        try:
            parse_assignment(text)
        except DataError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix(f"--set {text}: ")) from None
        return text

    assignment.__name__ = "KEY=VALUE"
    parser.add_argument("--set", dest="set", action="append", default=[], type=assignment, metavar="KEY=VALUE",
                        help="override a config setting (dotted key, YAML value: --set train.epochs=2); repeatable")


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
    values = {k: _coerced_setting(k, hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**values)


def _coerced_setting(name: str, tp, value, where: str):
    value = _coerce(tp, value, where)
    return check_setting(name, value, where) if isinstance(value, (int, float)) else check_settings(value, where)


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
