"""Synthetic competition data, written in each competition's exact file formats.

A registry maps a task name to its generator, like timm's model registry: ``generate("shopee",
out, seed=0, preset="demo")``. Generators are deterministic: the same seed and preset give
byte-identical CSV/JSONL files.
"""
from __future__ import annotations

from pathlib import Path

from ._registry import _GENERATORS, GENERATORS, SynthReport, register  # noqa: F401  (re-exported)

PRESETS = ("test", "demo", "kaggle")  # a task may not offer every one (CCKS, KDD: test, demo)


def list_generators() -> list[str]:
    return GENERATORS.names()


def generate(name: str, out, *, seed: int = 0, preset: str = "test", overwrite: bool = False,
             **options) -> SynthReport:
    """Write the synthetic data set `name` into folder `out`; `options` go to its generator
    (Shopee: ``images=False``, ``rows=(train, test)``)."""
    generator = GENERATORS.get(name)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    return generator(Path(out), seed=seed, preset=preset, overwrite=overwrite, **options)

