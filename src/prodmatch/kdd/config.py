"""The KDD stage's typed config: reader settings, test splits and the ranking methods to score."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import DataError
from ..registry import check_named_kind, name_problems
from ._registry import builtin_methods

RESERVED = ("split", "query_id", "product_id")


@dataclass(frozen=True)
class MethodConfig:
    """One method: `name` (its compare.csv row and scores column), a registered `kind`, kind `options`."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_named_kind("method", self.name, self.kind, builtin_methods(), RESERVED)


@dataclass(frozen=True)
class KddRunConfig:
    """The KDD stage (`prodmatch.kdd.run`): `feature_dim` of the box features (2048 in the real data;
    None: read from valid.tsv, and a stated one must match it), `chunk_rows` per streamed .tsv chunk,
    the `test_splits` to write submissions for when present."""

    name: str = "kdd"
    seed: int = 0
    feature_dim: int | None = None
    chunk_rows: int = 10_000
    test_splits: tuple[Literal["testA", "testB"], ...] = ("testA", "testB")
    methods: tuple[MethodConfig, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if (self.feature_dim is not None and self.feature_dim < 1) or self.chunk_rows < 1:
            problems.append("feature_dim and chunk_rows must be >= 1")
        problems += name_problems("method", [m.name for m in self.methods])
        if problems:
            raise DataError("KddRunConfig: " + "; ".join(problems))
        for spec in self.methods:  # every method's options checked when the config is loaded
            builtin_methods()[spec.kind](spec, self)
