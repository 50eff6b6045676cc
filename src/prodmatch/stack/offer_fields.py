"""What the pair comparisons (`stack.comparisons`) read of offers: their fields as stripped strings,
per-distinct-text work gathered by index, and set-overlap features of token sets as sparse rows."""
from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

NOT_COMPARED = ("item_id", "item_pvs", "cate_id", "image_path")
WORD = re.compile(r"\w+")  # the TF-IDF token pattern r"(?u)\b\w+\b"

def column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """`frame[name]` as an object array of stripped strings ("" for missing values or a missing column)."""
    if name not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    values = frame[name]
    return values.where(values.notna(), "").astype(str).str.strip().to_numpy(object)


def text_fields(items: pd.DataFrame) -> list[str]:
    """The columns compared as text: title first, then every attribute holding text; ids, pvs and
    image columns, numeric columns (price), all-empty columns and copies of the title are left out."""
    title = column(items, "title") if "title" in items.columns else None
    fields = []
    for name in items.columns:
        if name in NOT_COMPARED:
            continue
        if name != "title" and not _is_text(items[name]):
            continue
        if name != "title" and title is not None and (column(items, name) == title).all():
            continue  # abt_buy's name restates the title: the same features twice
        fields.append(name)
    return sorted(fields, key=lambda f: f != "title")


def _is_text(values: pd.Series) -> bool:
    if not pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return False
    text = pd.Series(column(values.to_frame("v"), "v"), dtype=object)
    text = text[text != ""]
    if text.empty:
        return False
    numeric = pd.to_numeric(text.str.replace(r"[\s$€£,]", "", regex=True), errors="coerce")
    return bool(numeric.isna().any())


def joined(frame: pd.DataFrame, fields: Sequence[str]) -> np.ndarray:
    """Each row's fields joined by spaces: the whole offer as one text."""
    out = np.full(len(frame), "", dtype=object)
    for k, field in enumerate(fields):
        out = column(frame, field) if k == 0 else out + " " + column(frame, field)
    return out


def words(text: str) -> list[str]:
    """Lower-cased word tokens (the TF-IDF token pattern)."""
    return WORD.findall(text.lower())


def unique_texts(values_a: np.ndarray, values_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """(codes of a, codes of b, distinct values) of a and b stacked, so per-text work runs once a text."""
    codes, uniques = pd.factorize(np.concatenate([values_a, values_b]).astype(object))
    return codes[: len(values_a)], codes[len(values_a) :], list(uniques)


def per_text(values_a, values_b, fn: Callable, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """`fn` of every value of a and b, evaluated once per distinct value."""
    ca, cb, uniques = unique_texts(values_a, values_b)
    out = np.array([fn(v) for v in uniques], dtype=dtype) if uniques else np.zeros(0, dtype)
    return out[ca], out[cb]


def text_ids(values_a, values_b) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids of a and b's values in one space (equal values, equal ids)."""
    ca, cb, _ = unique_texts(values_a, values_b)
    return ca, cb


def set_matrices(columns_a: Sequence[np.ndarray], columns_b: Sequence[np.ndarray],
                 extract: Callable[[str], Iterable[str]]) -> tuple[sp.csr_matrix, sp.csr_matrix, list[str]]:
    """Binary (rows, vocabulary) matrices of a and b: row k holds the union over the columns of
    `extract(value)`, each distinct value extracted once; and the vocabulary."""
    vocab: dict[str, int] = {}
    parts = []
    for va, vb in zip(columns_a, columns_b):
        ca, cb, uniques = unique_texts(va, vb)
        indptr, indices = [0], []
        for text in uniques:
            indices += sorted({vocab.setdefault(t, len(vocab)) for t in extract(text)})
            indptr.append(len(indices))
        parts.append((ca, cb, indptr, indices))
    width = max(1, len(vocab))
    total_a = sp.csr_matrix((len(columns_a[0]) if columns_a else 0, width))
    total_b = sp.csr_matrix(total_a.shape)
    for ca, cb, indptr, indices in parts:
        bag = sp.csr_matrix((np.ones(len(indices)), indices, indptr), shape=(len(indptr) - 1, width))
        total_a, total_b = total_a + bag[ca], total_b + bag[cb]
    return binary_rows(total_a), binary_rows(total_b), list(vocab)


def binary_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.data[:] = 1.0
    return matrix


def row_sums(matrix: sp.spmatrix) -> np.ndarray:
    return np.asarray(matrix.sum(1), dtype=np.float64).ravel()


def row_max(matrix: sp.csr_matrix) -> np.ndarray:
    """Largest stored value of each row, 0 for empty rows."""
    out = np.zeros(matrix.shape[0])
    filled = np.diff(matrix.indptr) > 0
    if filled.any():
        out[filled] = np.maximum.reduceat(matrix.data, matrix.indptr[:-1][filled])
    return out


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where den is 0."""
    return np.divide(num, den, out=np.full(len(num), np.nan), where=den != 0)


def flag(condition: np.ndarray, applies: np.ndarray | None = None) -> np.ndarray:
    """1.0 / 0.0 of a condition, NaN where it does not apply."""
    out = condition.astype(np.float64)
    if applies is not None:
        out[~applies] = np.nan
    return out


def set_features(a: sp.csr_matrix, b: sp.csr_matrix, lengths: np.ndarray) -> dict[str, np.ndarray]:
    """shared, jaccard (NaN when either set is empty), any, conflict, missing, longest_shared."""
    both = sp.csr_matrix(a.multiply(b))
    shared, na, nb = row_sums(both), row_sums(a), row_sums(b)
    present = (na > 0) & (nb > 0)
    both.data = lengths[both.indices].astype(np.float64)
    return {
        "shared": shared,
        "jaccard": np.where(present, safe_divide(shared, na + nb - shared), np.nan),
        "any": flag(shared > 0),
        "conflict": flag(present & (shared == 0)),
        "missing": flag(~present),
        "longest_shared": row_max(both),
    }


