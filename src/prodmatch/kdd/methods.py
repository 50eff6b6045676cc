"""KDD ranking methods: each gives every candidate row of a split a score (higher = ranked first).

A new method kind is one ``@register_method(kind)`` class here or in any module the package imports.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..config import NoOptions, from_dict
from ..errors import DataError
from ._registry import METHODS, register_method
from .config import KddRunConfig, MethodConfig
from .data import BoxChunk, Candidates


@dataclass(frozen=True)
class KddContext:
    """What a method may use besides the split: the data folder (train.tsv for trained kinds) and
    the box class names (multimodal_labels.txt, index = class id)."""

    data_dir: str
    label_names: tuple[str, ...]


class Method:
    """A level-1 method kind: options checked at construction (before any work); `fit` once, then `score`
    per split. `needs` names the box arrays (``boxes``, ``features``, ``class_labels``) the reader must decode."""

    kind: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()
    options_class: ClassVar[type] = NoOptions
    level: ClassVar[int] = 1  # 2: combines level-1 scores (stacked.StackedMethod)
    valid_kind: ClassVar[str] = "held_out"  # its valid score: fitted without valid's answers; "in_sample" never chosen

    def __init__(self, spec: MethodConfig, config: KddRunConfig) -> None:
        self.spec, self.config = spec, config
        try:
            self.options = from_dict(self.options_class, dict(spec.options), f"method {spec.name!r} options")
        except DataError as err:  # an options class's own check (__post_init__) knows no method name
            if str(err).startswith(("method ", "methods[")):
                raise
            raise DataError(f"method {spec.name!r} options: {err}") from None

    def fit(self, context: KddContext) -> dict:
        """Train on what `context` offers (nothing for the baselines); facts for run.json."""
        return {}

    def score(self, split: str, candidates: Candidates, context: KddContext) -> np.ndarray:
        raise NotImplementedError

    def save(self, folder) -> list[str]:
        """Write what `fit` learnt into `folder` (a trained kind: `kdd.saved`); the names written (none for
        a kind that learns nothing)."""
        return []

    def load(self, folder, context: KddContext) -> None:
        """Take back what `save` wrote, instead of `fit` (`kdd.rescore`); nothing for a kind that learns nothing."""


def build_methods(config: KddRunConfig) -> list[Method]:
    return [METHODS[spec.kind](spec, config) for spec in config.methods]


@dataclass(frozen=True)
class RandomOptions:
    """`seed`: None takes the run's seed."""

    seed: int | None = None


@register_method("random")
class RandomScores(Method):
    """Uniform random scores, seeded per run seed, method name and split: the floor to beat."""

    options_class = RandomOptions

    def score(self, split, candidates, context):
        seed = self.config.seed if self.options.seed is None else self.options.seed
        key = [seed, zlib.crc32(self.spec.name.encode()), zlib.crc32(split.encode())]
        return np.random.default_rng(np.random.SeedSequence(key)).random(len(candidates.codes))


def words(text: str, stem: bool = True) -> list[str]:
    """Lower-cased alphanumeric words; `stem` drops an English plural ending ("dresses", "shoes")."""
    found = re.findall(r"[a-z0-9]+", text.lower())
    return [_singular(w) for w in found] if stem else found


def _singular(word: str) -> str:
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us")) else word


@dataclass(frozen=True)
class OverlapOptions:
    """`stem`: match plural and singular words ("shoes" ~ "shoe")."""

    stem: bool = True


@register_method("box_label_overlap")
class BoxLabelOverlap(Method):
    """Share of the query's words that occur in the names of the product's box class labels."""

    needs = ("class_labels",)
    options_class = OverlapOptions

    def score(self, split, candidates, context):
        names = context.label_names
        vocab: dict[str, int] = {}
        label_words = [[vocab.setdefault(w, len(vocab)) for w in words(n, self.options.stem)] for n in names]
        label_matrix = _binary([np.array(ws, np.int64) for ws in label_words], len(vocab))
        data = candidates.data
        labels = data.class_labels
        check_labels(data, len(names), candidates.path)
        n_rows = len(data)
        boxes = sp.csr_matrix((np.ones(len(labels)), (data.box_rows(), labels)), shape=(n_rows, len(names)))
        product_words = (boxes @ label_matrix) > 0
        query_words = [words(q, self.options.stem) for q in candidates.queries]  # one per query, not per row
        known = _binary([np.array([vocab[w] for w in ws if w in vocab], np.int64) for ws in query_words], len(vocab))
        n_words = np.array([max(len(ws), 1) for ws in query_words], np.float64)
        matched = np.asarray(known[candidates.codes].multiply(product_words).sum(axis=1)).ravel()
        return matched / n_words[candidates.codes]


def check_labels(chunk: BoxChunk, n_labels: int, path) -> None:
    """DataError naming the lines of `chunk` whose box class labels are outside 0..n_labels-1."""
    labels = chunk.class_labels
    bad = (labels < 0) | (labels >= n_labels)
    if bad.any():
        lines = chunk.rows["line"].to_numpy()[chunk.box_rows()[bad]]
        raise DataError(f"{path}: class label outside 0..{n_labels - 1} (multimodal_labels.txt) "
                        f"on line(s) {lines[:5].tolist()}")


def _binary(lists: list[np.ndarray], width: int) -> sp.csr_matrix:
    """Rows of column-index lists as a 0/1 CSR matrix (repeats counted once)."""
    rows = np.repeat(np.arange(len(lists)), [len(x) for x in lists])
    cols = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    m = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(lists), max(width, 1)))
    m.data[:] = 1.0
    return m
