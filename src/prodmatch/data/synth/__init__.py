"""Synthetic competition data, written in each competition's exact file formats.

Each task of `prodmatch.task.TASKS` names its generator: ``generate("shopee", out, seed=0,
preset="demo")``. Generators are deterministic: the same seed and preset give
byte-identical CSV/JSONL files.
"""
from __future__ import annotations

from pathlib import Path

from ._registry import SynthReport  # noqa: F401  (re-exported)

PRESETS = ("test", "demo", "kaggle")  # a task may not offer every one (CCKS, KDD: test, demo)


def list_generators() -> list[str]:
    from ...task import TASKS

    return TASKS.names()


def generate(name: str, out, *, seed: int = 0, preset: str = "test", overwrite: bool = False,
             **options) -> SynthReport:
    """Write the synthetic data set `name` into folder `out`; `options` go to its generator
    (Shopee: ``images=False``, ``rows=(train, test)``)."""
    from ...task import TASKS

    generator = TASKS.get(name).function("generate")  # the one table of tasks and their generators
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {PRESETS}")
    return generator(Path(out), seed=seed, preset=preset, overwrite=overwrite, **options)

