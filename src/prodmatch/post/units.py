"""Unit-mismatch filter: title quantities ("250ml", "2x250ml", "64GB") as base-unit values, so pairs that
state different quantities of one dimension can be dropped; parsing rules: post/README.md."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import regex

DIMENSIONS = ("weight", "volume", "length", "pieces", "memory")

# spelling (lower case) -> (dimension, factor to the base unit: g, ml, mm, piece, MB)
UNITS: dict[str, tuple[str, float]] = {
    **{u: ("weight", 1.0) for u in ("g", "gr", "grs", "grm", "gm", "gram", "grams", "gramm")},
    **{u: ("weight", 1000.0) for u in ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms", "kilogramm")},
    "mg": ("weight", 0.001),
    "ons": ("weight", 100.0),  # Indonesian ons = 100 g
    **{u: ("volume", 1.0) for u in ("ml", "mls", "mililiter", "milliliter", "millilitre", "cc")},
    **{u: ("volume", 1000.0) for u in ("l", "lt", "ltr", "liter", "litre", "liters", "litres")},
    "mm": ("length", 1.0),
    "cm": ("length", 10.0),
    **{u: ("length", 1000.0) for u in ("m", "meter", "metre", "meters", "mtr")},
    **{u: ("length", 25.4) for u in ("inch", "inches", "inci")},
    **{
        u: ("pieces", 1.0)
        for u in (
            "pc", "pcs", "piece", "pieces", "pack", "packs", "pak", "lembar", "lbr",
            "biji", "butir", "btr", "buah", "isi", "sachet", "sachets",
        )
    },
    "mb": ("memory", 1.0),
    "gb": ("memory", 1024.0),
    "tb": ("memory", 1024.0**2),
}
_DIM_BIT = {d: 1 << i for i, d in enumerate(DIMENSIONS)}
_UNIT_ALT = "|".join(sorted(map(regex.escape, UNITS), key=len, reverse=True))
_NUM = r"\d+(?:[.,]\d+)*"
_START = r"(?<![\p{L}\p{N}_])(?<!\p{N}[.,])"
_QUANTITY = regex.compile(
    rf"{_START}(?:(?P<mult>{_NUM})\s*[x×*]\s*)*(?P<num>{_NUM})(?P<space>\s*)(?P<unit>{_UNIT_ALT})(?![\p{{L}}\p{{N}}])"
    rf"(?:\s*[x×*]\s*(?P<after>\d{{1,3}})(?![\p{{L}}\p{{N}}]|[.,]\d))?",
    regex.IGNORECASE | regex.V1,
)
_ISI = regex.compile(
    rf"(?<![\p{{L}}\p{{N}}_])isi\s*(?P<num>\d{{1,4}})(?![\p{{L}}\p{{N}}]|[.,]\d|\s*(?:{_UNIT_ALT})(?![\p{{L}}\p{{N}}]))",
    regex.IGNORECASE | regex.V1,
)
_THOUSANDS = regex.compile(r"[1-9]\d{0,2}(?:([.,])\d{3})(?:\1\d{3})*")


def parse_number(text: str) -> float | None:
    """A title number by the module's rules, or None when it is not readable as one."""
    seps = [c for c in text if c in ".,"]
    if not seps:
        return float(text)
    if _THOUSANDS.fullmatch(text):
        return float(text.replace(seps[0], ""))
    if len(seps) == 1:
        return float(text.replace(",", "."))
    if len(set(seps)) == 2 and seps[-1] != seps[-2]:  # "1.234,5" or "1,234.5"
        whole, frac = text[: text.rfind(seps[-1])], text[text.rfind(seps[-1]) + 1 :]
        if _THOUSANDS.fullmatch(whole):
            return float(whole.replace(seps[0], "") + "." + frac)
    return None


def extract(title) -> list[tuple[float, str]]:
    """Unique (value in base unit, dimension) quantities stated in a title, in order of appearance."""
    if not isinstance(title, str):
        return []
    found: list[tuple[float, str]] = []
    for m in _QUANTITY.finditer(title):
        unit = m["unit"]
        dim, factor = UNITS[unit.lower()]
        value = parse_number(m["num"])
        if value is None:
            continue
        if unit == "G" and not m["space"] and value in (2, 3, 4, 5) and not m.captures("mult"):
            continue  # "4G" / "5G": a network, not grams
        mults = [parse_number(x) for x in m.captures("mult")]
        if dim == "length":
            found += [(v * factor, dim) for v in mults if v is not None]
        elif len(mults) == 1 and mults[0] is not None and float(mults[0]).is_integer():
            found.append((mults[0], "pieces"))
        found.append((value * factor, dim))
        if m["after"]:
            found.append((float(m["after"]), "pieces"))
    found += [(float(m["num"]), "pieces") for m in _ISI.finditer(title)]
    out, seen = [], set()
    for value, dim in found:
        key = (_round(value), dim)
        if key not in seen and value > 0:
            seen.add(key)
            out.append(key)
    return out


def conflict(title_a, title_b) -> bool:
    """True when both titles state a quantity of one dimension and their values share nothing."""
    a, b = _by_dimension(extract(title_a)), _by_dimension(extract(title_b))
    return any(not (a[d] & b[d]) for d in a.keys() & b.keys())


def conflicts(titles_a, titles_b) -> np.ndarray:
    """`conflict` over aligned arrays of titles, extracting each distinct title once."""
    titles_a, titles_b = list(titles_a), list(titles_b)
    if len(titles_a) != len(titles_b):
        raise ValueError(f"titles_a and titles_b differ in length: {len(titles_a)} != {len(titles_b)}")
    codes, uniques = pd.factorize(pd.Series(titles_a + titles_b, dtype=object), use_na_sentinel=False)
    return _pair_conflicts(_Table(list(uniques)), codes[: len(titles_a)], codes[len(titles_a) :])


def pair_conflicts(titles, rows, cols) -> np.ndarray:
    """`conflict` of (titles[rows[e]], titles[cols[e]]) for index arrays, each title parsed once."""
    return _pair_conflicts(_Table(list(titles)), np.asarray(rows, np.int64), np.asarray(cols, np.int64))


class _Table:
    """Per-title quantities as flat arrays: dimension bit mask, and (dimension bit, value id) entries."""

    def __init__(self, titles):
        ids: dict[tuple[float, str], int] = {}
        self.mask = np.zeros(len(titles), np.int64)
        ptr, bits, vids = [0], [], []
        for t, title in enumerate(titles):
            for key in extract(title):
                vids.append(ids.setdefault(key, len(ids)))
                bits.append(_DIM_BIT[key[1]])
                self.mask[t] |= _DIM_BIT[key[1]]
            ptr.append(len(vids))
        self.ptr = np.array(ptr, np.int64)
        self.bits = np.array(bits, np.int64)
        self.vids = np.array(vids, np.int64)
        self.n_values = max(1, len(ids))


def _pair_conflicts(table: _Table, ta: np.ndarray, tb: np.ndarray) -> np.ndarray:
    shared = table.mask[ta] & table.mask[tb]
    out = np.zeros(len(ta), bool)
    cand = np.flatnonzero(shared)
    if not len(cand):
        return out
    pa, ea = _expand(table.ptr, ta[cand])
    pb, eb = _expand(table.ptr, tb[cand])
    key_a = pa * table.n_values + table.vids[ea]
    key_b = pb * table.n_values + table.vids[eb]
    hit = np.isin(key_a, key_b)
    same = np.zeros(len(cand), np.int64)
    np.bitwise_or.at(same, pa[hit], table.bits[ea[hit]])
    out[cand] = (shared[cand] & ~same) != 0
    return out


def _expand(ptr: np.ndarray, titles: np.ndarray):
    """(pair position, entry index) for every entry of every listed title."""
    counts = ptr[titles + 1] - ptr[titles]
    pos = np.repeat(np.arange(len(titles)), counts)
    starts = np.cumsum(counts) - counts
    return pos, ptr[titles][pos] + np.arange(counts.sum()) - starts[pos]


def _by_dimension(quantities) -> dict[str, set[float]]:
    out: dict[str, set[float]] = {}
    for value, dim in quantities:
        out.setdefault(dim, set()).add(value)
    return out


def _round(value: float) -> float:
    return float(f"{value:.9g}") if math.isfinite(value) else value
