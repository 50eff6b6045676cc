"""KDD Cup 2020 Multimodalities Recall: rank each query's candidate products by their image box
features; metric NDCG@5. ``kdd_run(data_dir, "kdd-test", out)``, ``kdd_rescore(run, data_dir, out)``;
layout and protocol: kdd/README.md.

Names are served lazily (PEP 562) and the first one registers the built-in method kinds, so importing
``prodmatch.kdd.data`` (``prodmatch check kdd``) does not import torch."""
from __future__ import annotations

import importlib

_LAZY = {
    "kdd_run": "run", "kdd_rescore": "rescore", "KddRunConfig": "config", "MethodConfig": "config",
    "METHODS": "_registry", "register_method": "_registry", "KddContext": "methods", "Method": "methods",
    "build_methods": "methods", "StackedMethod": "stacked", "StackedOptions": "stacked", "StackTable": "stacked",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from ._registry import builtin_methods

        builtin_methods()
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
