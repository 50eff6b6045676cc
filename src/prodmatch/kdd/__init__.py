"""KDD Cup 2020 Multimodalities Recall: rank each query's candidate products by their image box
features; metric NDCG@5. ``kdd_run(data_dir, "kdd-test", out)``; layout and protocol: kdd/README.md."""
from __future__ import annotations

from . import ensemble, lgbm_rerank, methods, two_tower  # noqa: F401  (register the built-in method kinds)
from . import sentence_match, word_match  # noqa: F401  (seed 003's trained kinds)
from ._registry import METHODS, register_method
from .config import KddRunConfig, MethodConfig
from .methods import KddContext, Method, build_methods
from .run import kdd_run
from .stacked import StackedMethod, StackedOptions, StackTable

__all__ = ["KddContext", "KddRunConfig", "METHODS", "Method", "MethodConfig", "build_methods", "kdd_run",
           "register_method", "StackedMethod", "StackedOptions", "StackTable"]
