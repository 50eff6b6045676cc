"""The task seam: what the package needs of a task (Shopee, CCKS pairs, KDD recall, or a new one),
so `prodmatch synth / check / folds / run` and the leaderboard serve every task alike.

A task is a package with four functions, named here as ``"module:function"`` so that listing the
tasks (CLI choices) imports none of them:

- `generate(out, *, seed, preset, overwrite, **options)`: a synthetic data set in the task's files;
- `check(path, **options)`: its data read and checked, one line on what it holds; `check_options`
  names the ``prodmatch check`` flags it reads;
- `folds(path, n_folds, seed)`: a fold table (a ``fold`` column), or None where folds are the run's own;
- `run(data, config, out, *, overwrite, progress)`: the task's training / scoring stage writing
  ``out/`` and its ``summary.json`` (`prodmatch.summary`), returning a dict.

Adding a task is that package plus one registration: ``TASKS.register("name", Task(...))``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

from .errors import DataError
from .registry import Registry


@dataclass(frozen=True)
class Task:
    about: str
    generate: str | Callable
    check: str | Callable
    run: str | Callable
    folds: str | Callable | None = None
    check_options: tuple[str, ...] = ()
    default_config: str | None = None

    def function(self, part: str) -> Callable:
        """The task's `part` ("generate", "check", "folds", "run"), imported on first use."""
        ref = getattr(self, part)
        if ref is None:
            raise DataError(f"this task has no {part}")
        if callable(ref):
            return ref
        module, _, name = ref.partition(":")
        return getattr(importlib.import_module(module), name)


TASKS = Registry("task", {
    "shopee": Task(
        "Shopee Price Match Guarantee: every posting's set of same-product postings (mean row-F1)",
        generate="prodmatch.data.synth.shopee:generate_shopee", check="prodmatch.data.shopee:check_file",
        folds="prodmatch.data.folds:shopee_folds_file", run="prodmatch.shopee:run",
        check_options=("image_dir", "image_policy"), default_config="shopee-tiny"),
    "ccks": Task(
        "CCKS 2022 task 9.2 and labelled product pairs: is a pair the same product? (F1 of label 1)",
        generate="prodmatch.data.synth.ccks:generate_ccks", check="prodmatch.ccks.task:check",
        folds="prodmatch.ccks.task:folds", run="prodmatch.ccks.task:run",
        check_options=("pairs", "image_dir", "image_policy"), default_config="ccks-cpu"),
    "kdd": Task(
        "KDD Cup 2020 Multimodalities Recall: rank a query's candidate products (NDCG@5)",
        generate="prodmatch.data.synth.kdd:generate_kdd", check="prodmatch.kdd.task:check",
        run="prodmatch.kdd.task:run", check_options=("feature_dim",), default_config="kdd"),
})
