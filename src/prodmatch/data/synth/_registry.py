"""Leaf registry of synthetic data generators: task name -> generator (filled by shopee.py, ccks.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict


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
