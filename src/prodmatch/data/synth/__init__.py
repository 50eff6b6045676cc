"""Synthetic competition data, written in each competition's exact file formats.

A registry maps a task name to its generator, like timm's model registry: ``generate("shopee",
out, seed=0, preset="demo")``. Generators are deterministic: the same seed and preset give
byte-identical CSV/JSONL files.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict

PRESETS = ("test", "demo", "kaggle")  # a task may not offer every one (CCKS: test, demo)


@dataclass
class SynthReport:
    """What a generator wrote: the folder, its files and a few counts for the log."""

    out: Path
    files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


_GENERATORS: Dict[str, Callable[..., SynthReport]] = {}


def register(name: str):
    """Decorator: add a generator ``fn(out, *, seed, preset, overwrite) -> SynthReport``.

    A generator refuses (FileExistsError) to write over files it would produce unless
    ``overwrite=True``, so two runs never silently clobber each other's data.
    """

    def deco(fn):
        _GENERATORS[name] = fn
        return fn

    return deco


def list_generators() -> list[str]:
    _load_builtin()
    return sorted(_GENERATORS)


def generate(name: str, out, *, seed: int = 0, preset: str = "test", overwrite: bool = False,
             **options) -> SynthReport:
    """Write the synthetic data set `name` into folder `out`; `options` go to its generator
    (Shopee: ``images=False``, ``rows=(train, test)``)."""
    _load_builtin()
    if name not in _GENERATORS:
        raise KeyError(f"unknown synthetic data set {name!r}; known: {sorted(_GENERATORS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    return _GENERATORS[name](Path(out), seed=seed, preset=preset, overwrite=overwrite, **options)


def _load_builtin() -> None:
    from . import ccks, shopee  # noqa: F401  (importing registers them)
