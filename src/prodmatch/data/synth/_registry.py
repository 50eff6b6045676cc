"""Leaf registry of synthetic data generators: task name -> generator (declared here, filled by shopee.py, ccks.py, kdd.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...registry import Registry


@dataclass
class SynthReport:
    """What a generator wrote: the folder, its files, a few counts for the log and, where a generator
    times them, the seconds of its phases (Shopee: plan, images)."""

    out: Path
    files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


GENERATORS = Registry("synthetic data set", builtins={
    "shopee": "prodmatch.data.synth.shopee:generate_shopee",
    "ccks": "prodmatch.data.synth.ccks:generate_ccks",
    "kdd": "prodmatch.data.synth.kdd:generate_kdd",
})
"""Task name -> generator ``fn(out, *, seed, preset, overwrite) -> SynthReport``; the names are
known without importing the generators (~1.6 s), each generator module is imported when first used."""
_GENERATORS = GENERATORS  # its earlier name

register = GENERATORS.register
"""Decorator ``@register(name)``: add a generator.

A generator refuses (FileExistsError) to write over files it would produce unless
``overwrite=True``, so two runs never silently clobber each other's data.
"""
