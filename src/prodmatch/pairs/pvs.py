"""Property-value (pvs) alignment of an item pair, the "v3.4" input of the CCKS pair models: a stable,
aligned key order helped the CCKS solution most; ordering rules and text format: pairs/README.md."""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

ENTRY_SEP = ";"
KV_SEP = ":"
PVS_FIELDS = ("item_pvs", "sku_pvs")

KeyOrder = Mapping[str, int] | Sequence[str] | None
Pvs = str | Mapping[str, Sequence[str]] | None


PVS_ENTRY_SEP = "#;#"
PVS_KV_SEP = "#:#"  # the raw files' separators


def parse_pvs(s: str | None) -> dict[str, list[str]]:
    """Parse a pvs string ``k#:#v#;#k#:#v`` into ``{key: [values in order]}``.

    Keys keep first-appearance order and may repeat (values are appended). Keys and values are
    whitespace-stripped; empty entries and entries with an empty value are skipped. A malformed
    entry without ``#:#`` is kept as a value under the key ``""`` (it is still text a model can
    use). None, NaN and "" give ``{}``.
    """
    if s is None or (isinstance(s, float) and math.isnan(s)) or s is pd.NA:
        return {}
    if not isinstance(s, str):
        raise TypeError(f"pvs must be a string, got {type(s).__name__}")
    out: dict[str, list[str]] = {}
    for entry in s.split(PVS_ENTRY_SEP):
        key, sep, value = entry.partition(PVS_KV_SEP)
        if not sep:
            key, value = "", key
        key, value = key.strip(), value.strip()
        if value:
            out.setdefault(key, []).append(value)
    return out


def pvs_dict(pvs: Pvs) -> dict[str, list[str]]:
    """``{key: [values]}`` from a raw pvs string (``parse_pvs``) or an already parsed mapping."""
    if pvs is None or isinstance(pvs, (str, float)) or pvs is pd.NA:
        return parse_pvs(pvs)
    return {str(k): [str(v) for v in values] for k, values in pvs.items()}


def merge_pvs(*parts: Pvs) -> dict[str, list[str]]:
    """Several pvs (``item_pvs`` then ``sku_pvs``) as one mapping; a (key, value) already seen is
    not repeated (the synthetic and real CCKS ``sku_pvs`` restate colours of ``item_pvs``)."""
    out: dict[str, list[str]] = {}
    for part in parts:
        for key, values in pvs_dict(part).items():
            have = out.setdefault(key, [])
            have.extend(v for v in values if v not in have)
    return out


def key_frequencies(items: pd.DataFrame, *, category: str = "cate_id",
                    fields: Sequence[str] = PVS_FIELDS) -> dict[str, dict[str, int]]:
    """``{category: {key: number of items of the category having the key}}`` from an items table.

    Uses no labels, so train + valid item tables may be combined. Missing columns count as
    empty pvs; a missing `category` column puts every item in category ``""``.
    """
    cats = items[category].fillna("").astype(str) if category in items.columns else pd.Series("", index=items.index)
    columns = [items[f] if f in items.columns else pd.Series(None, index=items.index, dtype=object) for f in fields]
    counts: dict[str, Counter] = {}
    for cat, *parts in zip(cats, *columns):
        counts.setdefault(cat, Counter()).update(merge_pvs(*parts).keys())
    return {cat: dict(sorted(c.items())) for cat, c in sorted(counts.items())}


def combined_order(freqs: Mapping[str, Mapping[str, int]], *categories: str) -> dict[str, int]:
    """Key counts of one or more categories summed (a cross-category pair uses both);
    an unknown category contributes nothing (keys then sort by their string)."""
    out: Counter = Counter()
    for cat in dict.fromkeys(categories):  # each category once, in the given order
        out.update(freqs.get(cat, {}))
    return dict(out)


def _sort_key(key_order: KeyOrder):
    """Sort key for pvs keys: by frequency (mapping) or by rank (sequence), then by the string."""
    if key_order is None:
        return lambda k: (0, k)
    if isinstance(key_order, Mapping):
        return lambda k: (-int(key_order.get(k, 0)), k)
    rank = {k: i for i, k in reversed(list(enumerate(key_order)))}  # first occurrence wins
    return lambda k: (rank.get(k, len(rank)), k)


def pvs_text(entries: Iterable[tuple[str, str]]) -> str:
    """``key:value;key:value`` (an empty key writes the value alone)."""
    return ENTRY_SEP.join(f"{k}{KV_SEP}{v}" if k else v for k, v in entries)


def align_pvs(pvs_a: Pvs, pvs_b: Pvs, key_order: KeyOrder = None) -> tuple[str, str]:
    """The two items' pvs as texts, shared keys first, then each side's own keys.

    `pvs_a`/`pvs_b`: raw pvs strings or ``{key: [values]}``; `key_order`: ``{key: count}``
    (higher first, e.g. ``key_frequencies(items)[cate]``), a sequence of keys (earlier first) or
    None; ties and unknown keys by the key string. Repeated keys keep all values in order.
    """
    a, b = pvs_dict(pvs_a), pvs_dict(pvs_b)
    sort_key = _sort_key(key_order)
    shared = sorted((k for k in a if k in b), key=sort_key)

    def side(d: dict[str, list[str]]) -> str:
        own = sorted((k for k in d if k not in shared_set), key=sort_key)
        return pvs_text((k, v) for k in [*shared, *own] for v in d[k])

    shared_set = frozenset(shared)
    return side(a), side(b)


def order_pvs(pvs: Pvs, key_order: KeyOrder = None) -> str:
    """One item's pvs text with keys by `key_order` (the v3 order; no partner to align with)."""
    return align_pvs(pvs, None, key_order)[0]


PAIR_TEXT_COLUMNS = ("title_a", "title_b", "pvs_a", "pvs_b", "own_pvs_a", "own_pvs_b", "cate_a", "cate_b")


def pair_frame(pairs: pd.DataFrame, items: pd.DataFrame, *, freqs: Mapping[str, Mapping[str, int]] | None = None,
               src: str = "src_item_id", tgt: str = "tgt_item_id", id_col: str | None = None,
               category: str = "cate_id", fields: Sequence[str] = PVS_FIELDS) -> pd.DataFrame:
    """`pairs` with both items' texts joined from `items`: what every pair model reads.

    Adds ``title_a/b`` (title, "" when missing), ``pvs_a/b`` (the pair's aligned pvs texts,
    :func:`align_pvs` with the summed key frequencies of both categories), ``own_pvs_a/b`` (each
    item's pvs alone in category-frequency order, for two-tower models whose item vector must not
    depend on the partner) and ``cate_a/b``, and ``image_a/b`` when `items` has ``image_path``
    ("" for an item without image); every column of `pairs` (``item_label``...) is kept.

    `id_col`: the items' id column (default ``item_id``, else ``posting_id`` for Shopee tables,
    which have titles only: their pvs texts are ""). `freqs` defaults to
    ``key_frequencies(items)``. Unknown ids raise DataError naming them; an empty `pairs` gives an
    empty frame with all columns.
    """
    from ..errors import DataError, preview

    if id_col is None:
        id_col = "item_id" if "item_id" in items.columns else "posting_id"
    for frame, cols, what in ((pairs, (src, tgt), "pairs"), (items, (id_col,), "items")):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(f"pair_frame: {what} lack column(s) {missing}; found {list(frame.columns)}")
    ids = items[id_col].astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise DataError(f"pair_frame: duplicate item id(s) in the items table: {preview(dup.unique().tolist())}")
    out = pairs.reset_index(drop=True).copy()
    a_ids, b_ids = out[src].astype(str), out[tgt].astype(str)
    index = pd.Index(ids)
    pos_a, pos_b = index.get_indexer(a_ids), index.get_indexer(b_ids)
    unknown = pd.unique(pd.concat([a_ids[pos_a < 0], b_ids[pos_b < 0]], ignore_index=True))
    if len(unknown):
        raise DataError(f"pair_frame: {len(unknown)} item id(s) not in the items table: {preview(unknown.tolist())}")
    if freqs is None:
        freqs = key_frequencies(items, category=category, fields=fields)

    def col(name: str) -> list:
        if name not in items.columns:
            return [""] * len(items)
        return [("" if v is None or (isinstance(v, float) and v != v) else str(v)) for v in items[name].tolist()]

    titles, cates = col("title"), col(category)
    merged = [merge_pvs(*parts) for parts in zip(*(col(f) for f in fields))] if fields else [{}] * len(items)
    text = {c: [] for c in PAIR_TEXT_COLUMNS}
    for i, j in zip(pos_a.tolist(), pos_b.tolist()):
        order = combined_order(freqs, cates[i], cates[j])
        pa, pb = align_pvs(merged[i], merged[j], order)
        row = (titles[i].strip(), titles[j].strip(), pa, pb, order_pvs(merged[i], freqs.get(cates[i], {})),
               order_pvs(merged[j], freqs.get(cates[j], {})),
               cates[i], cates[j])
        for c, v in zip(PAIR_TEXT_COLUMNS, row):
            text[c].append(v)
    for c in PAIR_TEXT_COLUMNS:
        out[c] = pd.Series(text[c], index=out.index, dtype=object)
    if "image_path" in items.columns:  # image-reading pair models
        paths = np.asarray(col("image_path"), dtype=object)
        out["image_a"], out["image_b"] = paths[pos_a], paths[pos_b]
    return out
