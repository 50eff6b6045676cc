"""Negative samplers for the trained kinds: for each positive train row (a query and its product) draw
train rows whose products serve as that query's negatives. Registry-based (``@register_negatives``):
``random``; ``box_label`` (products sharing a box class label with the positive, seed 001's hard
negatives); ``tfidf`` (products of TF-IDF-similar train queries, the KDD 2020 winners'). Draws are
vectorised and seeded per (run seed, epoch, sampler), so each epoch sees new negatives (seed 001)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..config import NoOptions, from_dict
from ..errors import DataError
from ..registry import Registry
from .train_data import TrainSet

NEGATIVES = Registry("kind", attribute="kind")
register_negatives = NEGATIVES.register
"""Class decorator ``@register_negatives(kind)``: a :class:`NegativeSampler` a config can name."""
ROUNDS = 32  # redraws of the draws that hit the positive's own query or product, before falling back to random


@dataclass(frozen=True)
class NegativeSpec:
    """One sampler: a registered `kind`, `ratio` negatives per positive, kind `options`."""

    kind: str
    ratio: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        NEGATIVES.get(self.kind, where="negatives")
        if self.ratio < 1:
            raise DataError(f"negatives {self.kind!r}: ratio must be >= 1, got {self.ratio}")
        from_dict(NEGATIVES[self.kind].options_class, dict(self.options), f"negatives {self.kind!r} options")


class NegativeSampler:
    """Draws negatives among `train`'s rows. A kind implements :meth:`draw` (one candidate per given
    positive, possibly invalid); :meth:`sample` redraws the invalid ones (the positive's own product,
    or a row of the same query text, whose product is a positive too)."""

    kind: ClassVar[str] = ""
    options_class: ClassVar[type] = NoOptions

    def __init__(self, train: TrainSet, options=None) -> None:
        self.train = train
        self.options = options if options is not None else self.options_class()
        self.products = train.product_ids

    def draw(self, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def invalid(self, rows: np.ndarray, negatives: np.ndarray) -> np.ndarray:
        codes = self.train.query_codes
        return (self.products[negatives] == self.products[rows]) | (codes[negatives] == codes[rows])

    def sample(self, rows, count: int, rng: np.random.Generator) -> np.ndarray:
        """(len(rows), count) int64 train rows: negatives for each positive row in `rows`."""
        rows = np.repeat(np.asarray(rows, np.int64), count)
        out = self.draw(rows, rng)
        for attempt in range(2 * ROUNDS):
            bad = np.flatnonzero(self.invalid(rows, out))
            if not len(bad):
                return out.reshape(-1, count)
            uniform = attempt >= ROUNDS  # this kind found no valid one: any other product will do
            out[bad] = rng.integers(0, len(self.train), len(bad)) if uniform else self.draw(rows[bad], rng)
        raise DataError(f"{self.train.path}: no negative found for {len(bad)} positive(s): the train rows "
                        "hold too few distinct queries and products")


@register_negatives("random")
class RandomNegatives(NegativeSampler):
    """Uniform over the train rows."""

    def draw(self, rows, rng):
        return rng.integers(0, len(self.train), len(rows))


def _groups(keys: np.ndarray, values: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`values` grouped by `keys` (0..n_keys-1): (values sorted by key, each key's start, count)."""
    order = np.argsort(keys, kind="stable")
    counts = np.bincount(keys, minlength=n_keys)
    return values[order], np.cumsum(counts) - counts, counts


def _pick(members: np.ndarray, starts: np.ndarray, counts: np.ndarray, groups: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """One uniform member of each of `groups` (every group non-empty)."""
    return members[starts[groups] + (rng.random(len(groups)) * counts[groups]).astype(np.int64)]


@dataclass(frozen=True)
class BoxLabelOptions:
    """`ignore_labels`: class ids never shared on purpose (e.g. 0 "others", on many unrelated boxes)."""

    ignore_labels: tuple[int, ...] = ()


@register_negatives("box_label")
class BoxLabelNegatives(NegativeSampler):
    """A random box of the positive (not an ignored class), then a random train row holding a box of
    that class: a product that looks partly alike (seed 001). Rows without such boxes: random."""

    options_class = BoxLabelOptions

    def __init__(self, train, options=None):
        super().__init__(train, options)
        chunk = train.chunk
        if chunk.class_labels is None:
            raise DataError("box_label negatives need the train rows' class_labels decoded")
        labels = chunk.class_labels
        keep = ~np.isin(labels, np.asarray(self.options.ignore_labels, np.int64))
        box_rows = chunk.box_rows()[keep]
        self.labels = labels[keep]  # the usable boxes, grouped by row (box_rows is sorted)
        self.row_boxes, self.row_start, self.row_count = _groups(box_rows, np.arange(len(box_rows)), len(chunk))
        n_labels = int(labels.max(initial=0)) + 1
        pairs = np.unique(np.stack([self.labels, box_rows]), axis=1)  # (label, row) once each
        self.label_rows, self.label_start, self.label_count = _groups(pairs[0], pairs[1], n_labels)

    def draw(self, rows, rng):
        out = rng.integers(0, len(self.train), len(rows))
        has = self.row_count[rows] > 0
        boxes = _pick(self.row_boxes, self.row_start, self.row_count, rows[has], rng)
        out[has] = _pick(self.label_rows, self.label_start, self.label_count, self.labels[boxes], rng)
        return out


@dataclass(frozen=True)
class TfidfOptions:
    """`neighbours`: how many of the most TF-IDF-similar other train queries a negative comes from."""

    neighbours: int = 20

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise DataError(f"tfidf negatives: neighbours must be >= 1, got {self.neighbours}")


@register_negatives("tfidf")
class TfidfNegatives(NegativeSampler):
    """A random one of the query's `neighbours` most similar other train queries (word TF-IDF
    cosine, sparse top-k), then a random row of that query: its product fits a similar text."""

    options_class = TfidfOptions

    def __init__(self, train, options=None):
        super().__init__(train, options)
        from ..encoders.tfidf import TfidfConfig, tfidf_embed
        from ..similarity import SparseModel

        n = len(train.queries)
        vectors = tfidf_embed(train.queries, TfidfConfig(stop_words=None))
        model = SparseModel.search(vectors, min(n, self.options.neighbours + 1))
        self.similar = model.idx[:, 1:] if n > 1 else model.idx  # self first: dropped
        codes = train.query_codes
        self.query_rows, self.query_start, self.query_count = _groups(codes, np.arange(len(codes)), n)

    def draw(self, rows, rng):
        similar = self.similar[self.train.query_codes[rows]]
        queries = similar[np.arange(len(rows)), rng.integers(0, similar.shape[1], len(rows))]
        return _pick(self.query_rows, self.query_start, self.query_count, queries, rng)


def build_samplers(specs, train: TrainSet) -> list[tuple[NegativeSampler, int]]:
    """(sampler, ratio) per :class:`NegativeSpec`, fitted on `train`."""
    built = []
    for spec in specs:
        cls = NEGATIVES[spec.kind]
        built.append((cls(train, from_dict(cls.options_class, dict(spec.options), f"negatives {spec.kind!r} options")),
                      spec.ratio))
    return built


def draw_negatives(samplers: list[tuple[NegativeSampler, int]], rows, seed: int, epoch: int) -> np.ndarray:
    """(len(rows), sum of ratios) int64: every sampler's negatives side by side, drawn from
    ``SeedSequence([seed, epoch, i])`` for sampler i: the same (seed, epoch) draws the same."""
    rows = np.asarray(rows, np.int64)
    parts = [sampler.sample(rows, ratio, np.random.default_rng(np.random.SeedSequence([seed, epoch, i])))
             for i, (sampler, ratio) in enumerate(samplers)]
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(rows), 0), np.int64)
