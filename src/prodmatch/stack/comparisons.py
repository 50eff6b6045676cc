"""Named pair comparisons of product offers, Splink's comparison library as registered classes.

A comparison is fitted on the whole items table (corpus statistics only: TF-IDF vocabularies, idf,
known model codes; never labels) and turns two tables of offers aligned with the pairs into float64
feature arrays, NaN where it does not apply (an attribute empty on either side). `compare_pairs`
gathers the offers of (src, tgt) id pairs and names each feature ``"<comparison>:<feature>"``.
Per-text work (regexes, tokenising) runs once per distinct text and is gathered by index; the
per-pair work is numpy, scipy.sparse or `rapidfuzz.process.cpdist`.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import ClassVar, Iterable, Sequence

import numpy as np
import pandas as pd
import regex
import scipy.sparse as sp

from ..errors import DataError, preview
from ..post.units import conflicts, parse_number
from ..registry import Registry, name_problems
from .offer_fields import (binary_rows, column, flag, joined, per_text, row_max, row_sums, safe_divide, set_features,
                           set_matrices, text_fields, text_ids, unique_texts, words)

COMPARISONS = Registry("comparison", attribute="name")
register_comparison = COMPARISONS.register

MAX_CHARS = 500  # strings: descriptions are long and edit-distance scorers grow with length
PARTIAL_MAX_MEAN = 200  # strings: partial_ratio only on fields shorter than this on average

_CODE_TOKEN = re.compile(r"[^\W_]+(?:[-/._][^\W_]+)*")
_SEPARATOR = re.compile(r"[-/._]")
_NUMBER = regex.compile(r"(?<![\p{L}\p{N}_])(?<!\p{N}[.,])\d+(?:[.,]\d+)*", regex.V1)
_PRICE = re.compile(r"\d[\d,]*(?:\.\d+)?")


class Comparison:
    """One named group of pair features; subclasses register with ``@register_comparison(name)``."""

    name: ClassVar[str]

    def fit(self, items: pd.DataFrame) -> "Comparison":
        """Learn what needs a corpus from all items (no labels); nothing by default."""
        return self

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        """Feature -> float64 array of len(a) for the offers a[k], b[k]; NaN where it does not apply."""
        raise NotImplementedError

    def _fitted(self, attribute: str):
        value = getattr(self, attribute, None)
        if value is None:
            raise RuntimeError(f"comparison {self.name!r}: call fit(items) before compute")
        return value


# ---------------------------------------------------------------------------------------------
# model codes


def model_codes(text: str, known: set[str] | None = None) -> set[str]:
    """Model-number-like tokens of a text, lower case: tokens with a letter and a digit, at least
    3 characters without separators, as written and without ``-/._`` ("dsc-w120", "dscw120"); plus
    two consecutive tokens joined ("sl 330" -> "sl330") when one of them is no code by itself and
    the join is a code in `known` (any join when `known` is None)."""
    tokens = _CODE_TOKEN.findall(text.lower())
    plain = [_SEPARATOR.sub("", t) for t in tokens]
    is_code = [_is_code(p) for p in plain]
    codes = set()
    for token, bare, code in zip(tokens, plain, is_code):
        if code:
            codes.update((token, bare))
    for k in range(len(tokens) - 1):
        join = plain[k] + plain[k + 1]
        if not (is_code[k] and is_code[k + 1]) and _is_code(join) and (known is None or join in known):
            codes.add(join)
    return codes


def _is_code(token: str) -> bool:
    return len(token) >= 3 and any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


class _FieldsComparison(Comparison):
    """A comparison over the items' text fields (`text_fields` at fit; the pair tables' own otherwise)."""

    fields: list[str] | None = None

    def fit(self, items: pd.DataFrame) -> "Comparison":
        self.fields = text_fields(items)
        return self

    def _fields(self, a: pd.DataFrame) -> list[str]:
        return self.fields if self.fields is not None else text_fields(a)


@register_comparison("codes")
class Codes(_FieldsComparison):
    """Shared model numbers in the title (``title_*``) and in the whole offer (``all_*``)."""

    known: set[str] | None = None

    def fit(self, items: pd.DataFrame) -> "Comparison":
        super().fit(items)
        # joins of two tokens count only when some offer writes them as one token: "sl 330" is
        # a model when "sl330" exists, "with 3" from a description is noise
        self.known = set()
        for field in self.fields:
            for text in pd.unique(column(items, field)):
                self.known |= model_codes(text, known=set())
        return self

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        def extract(text: str) -> set[str]:
            return model_codes(text, self.known)

        out = {}
        for scope, fields in (("title", ["title"]), ("all", self._fields(a) or ["title"])):
            ma, mb, vocab = set_matrices([column(a, f) for f in fields], [column(b, f) for f in fields], extract)
            lengths = np.array([len(c) for c in vocab] or [0], np.float64)
            out.update({f"{scope}_{k}": v for k, v in set_features(ma, mb, lengths).items()})
        return out


# ---------------------------------------------------------------------------------------------
# numbers, brand, price, length


def title_numbers(text: str) -> set[str]:
    """Numbers standing at a token start in a text ("500ml" -> 500, not the 120 of "w120"), as keys."""
    values = (parse_number(m) for m in _NUMBER.findall(text))
    return {f"{v:.9g}" for v in values if v is not None}


@register_comparison("numbers")
class Numbers(Comparison):
    """Stated quantities (`prodmatch.post.units`) and plain numbers of the titles."""

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        ta, tb = column(a, "title"), column(b, "title")
        ma, mb, _ = set_matrices([ta], [tb], title_numbers)
        return {"conflict": conflicts(ta, tb).astype(np.float64),
                "num_jaccard": set_features(ma, mb, np.zeros(ma.shape[1]))["jaccard"]}


def _brand_phrase(text: str) -> str:
    return " ".join(words(text))


def _phrases_in(titles: list[str], phrases: dict[str, int], width: int) -> np.ndarray:
    """Keys title * width + phrase id of every phrase occurring as consecutive words of a title."""
    longest = max((p.count(" ") + 1 for p in phrases), default=0)
    keys = []
    for t, title in enumerate(titles):
        tokens = words(title)
        for n in range(1, longest + 1):
            for s in range(len(tokens) - n + 1):
                p = phrases.get(" ".join(tokens[s : s + n]))
                if p is not None:
                    keys.append(t * width + p)
    return np.array(keys, np.int64)


@register_comparison("brand")
class Brand(Comparison):
    """First title word, and the brand attribute (NaN features when the table has none)."""

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        ta, tb = column(a, "title"), column(b, "title")
        fa, fb = per_text(ta, tb, lambda t: (words(t) or [""])[0], dtype=object)
        first_a, first_b = text_ids(fa, fb)
        out = {"first_token_equal": flag(first_a == first_b, (fa != "") & (fb != ""))}
        ba, bb = per_text(column(a, "brand"), column(b, "brand"), _brand_phrase, dtype=object)
        has_a, has_b = ba != "", bb != ""
        brand_a, brand_b = text_ids(ba, bb)
        out["attr_equal"] = flag(brand_a == brand_b, has_a & has_b)
        out["brand_in_other_title"] = flag(self._in_other_title(ta, tb, ba, bb), has_a | has_b)
        return out

    @staticmethod
    def _in_other_title(ta, tb, ba, bb) -> np.ndarray:
        """Whether a's brand occurs in b's title or b's brand in a's title (as whole words)."""
        title_a, title_b, titles = unique_texts(ta, tb)
        phrase_codes, phrases = pd.factorize(np.concatenate([ba, bb]).astype(object))
        index = {p: k for k, p in enumerate(phrases) if p}
        if not index:
            return np.zeros(len(ta), bool)
        found = _phrases_in(titles, index, len(phrases))
        pa, pb = phrase_codes[: len(ba)], phrase_codes[len(ba) :]
        hit_ab = (ba != "") & np.isin(title_b * len(phrases) + pa, found)
        hit_ba = (bb != "") & np.isin(title_a * len(phrases) + pb, found)
        return hit_ab | hit_ba


def parse_price(text: str) -> float:
    """The first number of a price string ("$1,299.00" -> 1299.0), NaN when there is none."""
    m = _PRICE.search(text)
    return float(m.group().replace(",", "")) if m else math.nan


@register_comparison("price")
class Price(Comparison):
    """Price ratio (min / max) and absolute log difference; NaN where either price is missing or <= 0
    (and everywhere when the table has no price column)."""

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        pa, pb = per_text(column(a, "price"), column(b, "price"), parse_price)
        ok = np.isfinite(pa) & np.isfinite(pb) & (pa > 0) & (pb > 0)
        pa, pb = np.where(ok, pa, 1.0), np.where(ok, pb, 1.0)
        return {"ratio": np.where(ok, np.minimum(pa, pb) / np.maximum(pa, pb), np.nan),
                "log_diff": np.where(ok, np.abs(np.log(pa) - np.log(pb)), np.nan)}


@register_comparison("length")
class Length(Comparison):
    """Title lengths in word tokens: ratio (NaN when either is 0) and absolute difference."""

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        na, nb = per_text(column(a, "title"), column(b, "title"), lambda t: len(words(t)))
        shorter = np.minimum(na, nb)
        return {"title_len_ratio": safe_divide(shorter, np.where(shorter > 0, np.maximum(na, nb), 0.0)),
                "title_len_diff": np.abs(na - nb)}


# ---------------------------------------------------------------------------------------------
# string similarity, TF-IDF, rare tokens


@register_comparison("strings")
class Strings(_FieldsComparison):
    """rapidfuzz scores per text field in [0, 1] (``<field>_token_set``, ``_ratio``, ``_partial``),
    on the first 500 characters; ``_partial`` only for fields whose mean length is under 200."""

    partial: set[str] | None = None

    def fit(self, items: pd.DataFrame) -> "Comparison":
        super().fit(items)
        self.partial = {f for f in self.fields if _mean_length(column(items, f)) < PARTIAL_MAX_MEAN}
        return self

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        from rapidfuzz import fuzz

        partial = self.partial
        out = {}
        for field in self._fields(a):
            va, vb = _truncated(column(a, field)), _truncated(column(b, field))
            scorers = {"token_set": fuzz.token_set_ratio, "ratio": fuzz.ratio}
            if partial is None or field in partial:
                scorers["partial"] = fuzz.partial_ratio
            for suffix, scorer in scorers.items():
                out[f"{field}_{suffix}"] = _scores(va, vb, scorer)
        return out


def _truncated(values: np.ndarray) -> np.ndarray:
    return pd.Series(values, dtype=object).str.slice(0, MAX_CHARS).to_numpy(object)


def _mean_length(values: np.ndarray) -> float:
    lengths = [min(len(v), MAX_CHARS) for v in values if v]
    return float(np.mean(lengths)) if lengths else 0.0


def _scores(va: np.ndarray, vb: np.ndarray, scorer) -> np.ndarray:
    """scorer(va[k], vb[k]) / 100 (case and punctuation ignored), NaN where either is empty."""
    from rapidfuzz import utils
    from rapidfuzz.process import cpdist

    out = np.full(len(va), np.nan)
    both = np.flatnonzero((va != "") & (vb != ""))
    if len(both):
        out[both] = cpdist(list(va[both]), list(vb[both]), scorer=scorer, processor=utils.default_process,
                           dtype=np.float64, workers=1) / 100.0
    return out


class _Vectors:
    """A TF-IDF vectoriser fitted on the items' texts; keeps their rows so compute transforms only
    texts it has not seen."""

    def __init__(self, texts: np.ndarray, **options):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(sublinear_tf=True, **options)
        try:
            self.matrix = sp.csr_matrix(self.vectorizer.fit_transform(list(texts)))
        except ValueError:  # no token in any text: every similarity is 0
            self.vectorizer, self.matrix = None, sp.csr_matrix((len(texts), 1))
        self.row = {t: k for k, t in enumerate(texts)}

    def cosine(self, texts_a: np.ndarray, texts_b: np.ndarray) -> np.ndarray:
        """Cosine of the L2-normalised rows of texts_a[k] and texts_b[k] (0 for empty texts)."""
        ca, cb, uniques = unique_texts(texts_a, texts_b)
        rows = self._rows(uniques)
        return np.minimum(row_sums(rows[ca].multiply(rows[cb])), 1.0)

    def _rows(self, texts: list[str]) -> sp.csr_matrix:
        at = np.array([self.row.get(t, -1) for t in texts], np.int64)
        new = at < 0
        if not new.any():
            return self.matrix[at]
        unseen = [t for t, n in zip(texts, new) if n]
        extra = (self.vectorizer.transform(unseen) if self.vectorizer is not None
                 else sp.csr_matrix((len(unseen), self.matrix.shape[1])))
        at[new] = self.matrix.shape[0] + np.arange(len(unseen))
        return sp.csr_matrix(sp.vstack([self.matrix, extra]))[at]


@register_comparison("tfidf")
class Tfidf(_FieldsComparison):
    """Cosine of word and char_wb (2-5) TF-IDF vectors of the title and of the whole offer."""

    vectors: dict[str, _Vectors] | None = None

    def fit(self, items: pd.DataFrame) -> "Comparison":
        super().fit(items)
        texts = {"title": column(items, "title"), "all": joined(items, self.fields)}
        kinds = {"word": {"token_pattern": r"(?u)\b\w+\b"}, "char": {"analyzer": "char_wb", "ngram_range": (2, 5)}}
        self.vectors = {f"{scope}_{kind}": _Vectors(texts[scope], **options)
                        for scope in texts for kind, options in kinds.items()}
        return self

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        vectors = self._fitted("vectors")
        texts = {"title": (column(a, "title"), column(b, "title")),
                 "all": (joined(a, self.fields), joined(b, self.fields))}
        return {name: v.cosine(*texts[name.split("_")[0]]) for name, v in vectors.items()}


def idf_table(titles: Iterable[str]) -> tuple[dict[str, float], float]:
    """Smoothed idf of every title word, ln((1 + n) / (1 + df)) + 1 as sklearn's, and that of an unseen word."""
    titles = list(titles)
    df = Counter(w for t in titles for w in set(words(t)))
    n = len(titles)
    return {w: math.log((1 + n) / (1 + d)) + 1 for w, d in df.items()}, math.log(1 + n) + 1


@register_comparison("rare_tokens")
class RareTokens(Comparison):
    """Title words weighted by idf: idf_overlap (shared / union; NaN when both have no words),
    max_shared_idf (0 when none is shared), and max_unshared_idf / unshared_idf (largest / summed idf
    of the words only one side has; 0 when none): rare shared words identify a product, a rare word on
    one side only (another model, a variant) tells two near twins apart."""

    idf: dict[str, float] | None = None
    unseen_idf: float = 1.0

    def fit(self, items: pd.DataFrame) -> "Comparison":
        self.idf, self.unseen_idf = idf_table(column(items, "title"))
        return self

    def compute(self, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, np.ndarray]:
        idf = self._fitted("idf")
        ma, mb, vocab = set_matrices([column(a, "title")], [column(b, "title")], lambda t: set(words(t)))
        weights = np.array([idf.get(w, self.unseen_idf) for w in vocab] or [0.0])
        shared = sp.csr_matrix(ma.multiply(mb))
        union = binary_rows(ma + mb)
        only_one = binary_rows(union - shared)
        shared.data, only_one.data = weights[shared.indices], weights[only_one.indices]
        return {"idf_overlap": safe_divide(row_sums(shared), union @ weights), "max_shared_idf": row_max(shared),
                "max_unshared_idf": row_max(only_one), "unshared_idf": row_sums(only_one)}


# ---------------------------------------------------------------------------------------------
# building and applying


def comparison_names(names: Sequence[str] | None) -> list[str]:
    """The registered comparisons `names` (None: all, in registration order); DataError naming an unknown
    or repeated one (a config checks its names with this when it loads, before any work)."""
    chosen = list(COMPARISONS) if names is None else list(names)
    problems = name_problems("comparison", chosen)
    if problems:
        raise DataError("; ".join(problems))
    for name in chosen:
        COMPARISONS.get(name)
    return chosen


def build_comparisons(names: Sequence[str] | None, items: pd.DataFrame) -> list[Comparison]:
    """Comparisons by registered name (None: all, in registration order), each fitted on `items`."""
    return [COMPARISONS.get(name)().fit(items) for name in comparison_names(names)]


def pair_rows(items: pd.DataFrame, src, tgt) -> tuple[np.ndarray, np.ndarray]:
    """Row positions in `items` of the pairs' item ids; DataError for unknown or repeated ids."""
    if "item_id" not in items.columns:
        raise DataError("items table has no item_id column")
    ids = pd.Index(items["item_id"])
    if not ids.is_unique:
        raise DataError(f"items table repeats item ids {preview(ids[ids.duplicated()].unique())}")
    src, tgt = pd.Index(np.asarray(src)), pd.Index(np.asarray(tgt))
    if len(src) != len(tgt):
        raise DataError(f"src and tgt differ in length: {len(src)} != {len(tgt)}")
    rows_a, rows_b = ids.get_indexer(src), ids.get_indexer(tgt)
    if (rows_a < 0).any() or (rows_b < 0).any():
        unknown = pd.unique(np.concatenate([src[rows_a < 0].to_numpy(), tgt[rows_b < 0].to_numpy()]))
        raise DataError(f"{len(unknown)} pair item id(s) not in the items table: {preview(unknown)}")
    return rows_a, rows_b


def compare_pairs(items: pd.DataFrame, src, tgt, comparisons: list[Comparison]) -> pd.DataFrame:
    """One row per pair (src[k], tgt[k]) in pair order, one float64 column ``"<comparison>:<feature>"``
    per feature of the (fitted) comparisons."""
    rows_a, rows_b = pair_rows(items, src, tgt)
    a = items.iloc[rows_a].reset_index(drop=True)
    b = items.iloc[rows_b].reset_index(drop=True)
    columns: dict[str, np.ndarray] = {}
    for comparison in comparisons:
        for feature, values in comparison.compute(a, b).items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (len(a),):
                raise ValueError(f"comparison {comparison.name!r} gave {values.shape} values of {feature!r} "
                                 f"for {len(a)} pairs")
            columns[f"{comparison.name}:{feature}"] = values
    return pd.DataFrame(columns, index=pd.RangeIndex(len(a)))
