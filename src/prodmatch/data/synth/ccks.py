"""Synthetic CCKS 2022 task 9.2 data ("same item" pairs) in the competition's exact JSONL formats.

A small world of industries -> 3-level categories -> brands -> models -> spec variants (products)
is listed by several sellers each (items). Titles are Chinese-like word soups with Latin model
numbers, specs, promo words and per-seller noise; pvs strings share and differ in keys; images are
drawn products with per-listing perturbations. Pairs mix positives (same product), hard negatives
(same category and brand: other model, other spec, or other look) and easy ones, and the valid split
holds leaf categories never seen in train, so models can be tested for generalisation without the
real data. Each modality sees something the others cannot: look variants (same model and spec, other
colour and pattern) differ only in the image, spec variants share one image and differ only in text,
and generic sellers' listings (no brand, model, spec or pvs) match their product only by image.
The world and its listings live in `ccks_catalogue`, the words in `vocab_ccks`, the drawings in
`ccks_images`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.io import write_text

from ._registry import SynthReport

INFO_KEYS = ("item_id", "industry_name", "cate_id", "cate_name", "cate_id_path", "cate_name_path",
             "item_image_name", "title", "item_pvs", "sku_pvs")
PAIR_KEYS = ("src_item_id", "tgt_item_id", "item_label")
NEGATIVE_KINDS = ("hard_look", "hard_spec", "hard_model", "same_cate", "easy")
HARD_KINDS = ("hard_look", "hard_spec", "hard_model")
IMAGE_ONLY_KINDS = ("hard_look",)  # negatives whose texts come from one product description
TEXT_ONLY_KINDS = ("hard_spec",)  # negatives whose images are one drawing


@dataclass(frozen=True)
class _Preset:
    n_items: int
    n_leaves: int | None  # None: every leaf of the taxonomy
    train_pairs: int
    valid_pairs: int
    image_px: tuple[int, int]
    valid_item_share: float = 0.27  # of all items
    unseen_item_share: float = 0.08  # of all items, in leaf categories only valid has
    unseen_pair_share: float = 0.25  # of valid pairs
    positive_rate: float = 0.35
    negative_mix: tuple[float, ...] = (0.15, 0.15, 0.3, 0.2, 0.2)  # NEGATIVE_KINDS shares
    look_rate: float = 0.4  # share of models sold in a second look (colour + pattern) with the same texts
    generic_seller_rate: float = 0.12  # sellers whose titles name only the product noun, without pvs


PRESET_CONFIG = {
    "test": _Preset(n_items=150, n_leaves=10, train_pairs=200, valid_pairs=80, image_px=(96, 96),
                    unseen_item_share=0.12),
    "demo": _Preset(n_items=3000, n_leaves=None, train_pairs=4000, valid_pairs=1000, image_px=(160, 224)),
}

from .ccks_images import _write_images
from .ccks_catalogue import (_Product, _Seller, _build_leaves, _build_products, _coin, _make_brands,
                             _make_record, _make_sellers)
from .vocab_ccks import _TAXONOMY


# ----------------------------------------------------------------------------------------------
# World -> items (with hidden truth columns) -> pairs.
# ----------------------------------------------------------------------------------------------
def _leaf_budgets(rng: np.random.Generator, n: int, k: int, minimum: int = 4) -> np.ndarray:
    weights = rng.dirichlet(np.full(k, 4.0))
    return minimum + rng.multinomial(max(0, n - minimum * k), weights)


def _assign_valid_groups(rng: np.random.Generator, products: list[_Product], counts: np.ndarray, target: int) -> None:
    """Move whole (leaf, brand) groups of seen leaves to valid until `target` items; leaves keep a train group."""
    groups: dict[int, list[_Product]] = {}
    for p in products:
        if not p.unseen:
            groups.setdefault(p.group, []).append(p)
    train_groups_per_leaf: dict[int, int] = {}
    for members in groups.values():
        train_groups_per_leaf[members[0].leaf.index] = train_groups_per_leaf.get(members[0].leaf.index, 0) + 1
    moved = 0
    order = list(groups)
    for gi in rng.permutation(len(order)):
        members = groups[order[int(gi)]]
        leaf = members[0].leaf.index
        if moved >= target or train_groups_per_leaf[leaf] <= 1:
            continue
        for p in members:
            p.split = "valid"
        train_groups_per_leaf[leaf] -= 1
        moved += int(sum(counts[p.index] for p in members))


def build_ccks_tables(seed: int, preset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the synthetic world: (items, pairs) with public fields plus hidden truth columns.

    items: ``record`` (the JSON object), ``split``, ``product``, ``model``, ``group``, ``leaf``,
    ``brand``, ``spec``, ``unseen``, ``design`` (image parameters), ``look`` and ``generic`` (a
    generic seller's listing). pairs: ``src_item_id``, ``tgt_item_id``, ``item_label`` (int),
    ``kind`` (positive/hard_look/hard_spec/hard_model/same_cate/easy),
    ``split`` and ``unseen`` (pair touches a leaf category absent from train). Tests use the
    hidden columns to check what the generator promises.
    """
    cfg = PRESET_CONFIG[preset]
    rng = np.random.default_rng(seed)
    all_leaves = _build_leaves(rng)
    n_leaves = cfg.n_leaves or len(all_leaves)
    leaves = [all_leaves[int(i)] for i in np.sort(rng.choice(len(all_leaves), size=n_leaves, replace=False))]
    n_unseen = max(2, round(0.1 * n_leaves))
    unseen_leaves = {leaves[int(i)].index for i in rng.choice(n_leaves, size=n_unseen, replace=False)}
    n_unseen_items = round(cfg.unseen_item_share * cfg.n_items)
    seen_budget = _leaf_budgets(rng, cfg.n_items - n_unseen_items, n_leaves - n_unseen)
    unseen_budget = _leaf_budgets(rng, n_unseen_items, n_unseen)

    taken: dict = {}
    brand_pools = {industry: _make_brands(rng, 12 if cfg.n_leaves else 24, taken) for industry, _, _ in _TAXONOMY}
    counters = {"group": 0, "model": 0}
    products: list[_Product] = []
    counts: list[int] = []
    budgets = iter(seen_budget), iter(unseen_budget)
    for leaf in leaves:
        unseen = leaf.index in unseen_leaves
        budget = int(next(budgets[unseen]))
        leaf_products = _build_products(rng, leaf, budget, brand_pools[leaf.industry], counters, taken,
                                        cfg.look_rate)
        extra = rng.multinomial(budget - len(leaf_products), rng.dirichlet(np.full(len(leaf_products), 0.8)))
        for p, e in zip(leaf_products, extra):
            p.index, p.unseen, p.split = len(products), unseen, "valid" if unseen else "train"
            products.append(p)
            counts.append(1 + int(e))
    counts = np.array(counts)
    valid_target = round(cfg.valid_item_share * cfg.n_items) - n_unseen_items
    _assign_valid_groups(rng, products, counts, valid_target)

    sellers = _make_sellers(rng, max(20, cfg.n_items // 5), cfg.generic_seller_rate)
    rows = []
    for p in products:
        flagship = _Seller(sep=" ", brand_style=2, promo_rate=0.3, bracket=False, shuffle_rate=0.1, flagship=True)
        chosen = [sellers[int(i)] for i in rng.choice(len(sellers), size=int(counts[p.index]), replace=False)]
        if _coin(rng, 0.25):
            chosen[0] = flagship
        for seller in chosen:
            rows.append(dict(record=_make_record(rng, p, seller), split=p.split, product=p.index, model=p.model,
                             group=p.group, leaf=p.leaf.index, brand=p.brand.cn, spec=p.spec, unseen=p.unseen,
                             design=p.design, shape=p.leaf.shape, brand_en=p.brand.en, model_name=p.model_name,
                             colours=p.colours, look=p.look, image_colour=p.image_colour, generic=seller.generic))
    items = pd.DataFrame(rows)
    items.insert(0, "item_id", [r["item_id"] for r in items["record"]])
    items = items.iloc[rng.permutation(len(items))].reset_index(drop=True)
    pairs = pd.concat([
        _sample_pairs(rng, items[items["split"] == "train"], cfg.train_pairs, cfg, "train"),
        _sample_valid_pairs(rng, items[items["split"] == "valid"], cfg),
    ], ignore_index=True)
    return items, pairs


class _PairPool:
    """Index of one split's items by product/model/group/leaf to draw pairs of each kind."""

    def __init__(self, items: pd.DataFrame):
        self.items = items.reset_index(drop=True)
        self.by = {col: self._index(col) for col in ("product", "model", "group", "leaf")}
        self.leaf_of = self.items["leaf"].to_numpy()

    def _index(self, col: str) -> dict[int, np.ndarray]:
        return {int(k): np.asarray(v) for k, v in self.items.groupby(col, sort=True).indices.items()}

    def partners(self, kind: str, a: int) -> np.ndarray:
        """Rows that make a pair of `kind` with row `a` (label follows from the kind)."""
        row = self.items.iloc[a]
        if kind == "positive":
            cand = self.by["product"][int(row["product"])]
        elif kind in ("hard_look", "hard_spec"):  # same model: same spec, other look / other spec, same look
            cand = self.by["model"][int(row["model"])]
            same_spec = self.items["spec"].to_numpy()[cand] == row["spec"]
            same_look = self.items["look"].to_numpy()[cand] == row["look"]
            cand = cand[(same_spec & ~same_look) if kind == "hard_look" else (~same_spec & same_look)]
        elif kind == "hard_model":
            cand = self.by["group"][int(row["group"])]
            cand = cand[self.items["model"].to_numpy()[cand] != row["model"]]
        elif kind == "same_cate":
            cand = self.by["leaf"][int(row["leaf"])]
            cand = cand[self.items["group"].to_numpy()[cand] != row["group"]]
        else:
            cand = np.flatnonzero(self.leaf_of != row["leaf"])
        return cand[cand != a]


def _sample_kind(rng, pool: _PairPool, kind: str, n: int, anchors: np.ndarray, easy_partners: np.ndarray | None,
                 taken: dict) -> list[tuple[int, int, str]]:
    """Up to `n` new (a, b, kind) pairs with `a` drawn from `anchors`; `taken` dedupes across kinds."""
    out = []
    for _ in range(40 * n):
        if len(out) >= n or not len(anchors):
            break
        a = int(anchors[int(rng.integers(len(anchors)))])
        cand = pool.partners(kind, a)
        if kind == "easy" and easy_partners is not None:
            cand = cand[np.isin(cand, easy_partners)]
        if not len(cand):
            continue
        b = int(cand[int(rng.integers(len(cand)))])
        ida, idb = pool.items.at[a, "item_id"], pool.items.at[b, "item_id"]
        key = (ida, idb) if ida < idb else (idb, ida)
        if key in taken:
            continue
        taken[key] = True
        out.append((a, b, kind) if _coin(rng, 0.5) else (b, a, kind))
    return out


def _sample_pairs(rng, items: pd.DataFrame, n: int, cfg: _Preset, split: str, anchor_mask=None,
                  easy_mask=None, taken: dict | None = None) -> pd.DataFrame:
    """`n` pairs of `items`: positive_rate positives, the rest split by negative_mix (shortfalls roll on)."""
    pool = _PairPool(items)
    taken = {} if taken is None else taken
    anchors = np.arange(len(pool.items)) if anchor_mask is None else np.flatnonzero(anchor_mask)
    easy_partners = None if easy_mask is None else np.flatnonzero(easy_mask)
    n_pos = round(cfg.positive_rate * n)
    quotas = [n_pos] + list(np.round(np.array(cfg.negative_mix) * (n - n_pos)).astype(int))
    quotas[-1] = n - sum(quotas[:-1])
    drawn, carry = [], 0
    for kind, quota in zip(("positive",) + NEGATIVE_KINDS, quotas):
        got = _sample_kind(rng, pool, kind, int(quota) + carry, anchors, easy_partners, taken)
        carry = int(quota) + carry - len(got)
        drawn += got
    a = np.array([d[0] for d in drawn], dtype=int)
    b = np.array([d[1] for d in drawn], dtype=int)
    kinds = np.array([d[2] for d in drawn], dtype=object)
    ids = pool.items["item_id"].to_numpy()
    unseen = pool.items["unseen"].to_numpy()
    return pd.DataFrame({"src_item_id": ids[a], "tgt_item_id": ids[b], "item_label": (kinds == "positive").astype(int),
                         "kind": kinds, "split": split, "unseen": unseen[a] | unseen[b]})


def _sample_valid_pairs(rng, items: pd.DataFrame, cfg: _Preset) -> pd.DataFrame:
    """Valid pairs: unseen_pair_share anchored in train-absent leaves, the rest among seen-leaf items."""
    items = items.reset_index(drop=True)
    unseen = items["unseen"].to_numpy()
    n_unseen = round(cfg.unseen_pair_share * cfg.valid_pairs)
    taken: dict = {}
    part_unseen = _sample_pairs(rng, items, n_unseen, cfg, "valid", anchor_mask=unseen, taken=taken)
    part_seen = _sample_pairs(rng, items, cfg.valid_pairs - len(part_unseen), cfg, "valid", anchor_mask=~unseen,
                              easy_mask=~unseen, taken=taken)
    both = pd.concat([part_unseen, part_seen], ignore_index=True)
    return both.iloc[rng.permutation(len(both))].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Writing.
# ----------------------------------------------------------------------------------------------
def _jsonl(objs) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)


def _pair_objs(pairs: pd.DataFrame, labelled: bool) -> list[dict]:
    cols = list(PAIR_KEYS if labelled else PAIR_KEYS[:2])
    frame = pairs[cols].astype({"item_label": str}) if labelled else pairs[cols]
    return frame.to_dict("records")


def _output_files(out: Path) -> dict[str, Path]:
    names = ("item_train_info.jsonl", "item_train_pair.jsonl", "item_valid_info.jsonl", "item_valid_pair.jsonl",
             "item_valid_pair_truth.jsonl")
    return {name: out / name for name in names}


def _refuse_existing(out: Path) -> None:
    """FileExistsError naming the first output (JSONL file or non-empty image folder) already there."""
    targets = list(_output_files(out).values()) + [out / "item_train_images", out / "item_valid_images"]
    for path in targets:
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")


def generate_ccks(out: Path, *, seed: int, preset: str, overwrite: bool = False) -> SynthReport:
    """Write the synthetic CCKS 2022 task 9.2 set into `out`: train/valid info, pairs, truth, images.

    Deterministic: the same seed and preset give byte-identical JSONL. Images are written first and
    the JSONL files last (atomically), so a crash never leaves item files pointing at missing images.
    With overwrite=True, images of an earlier run that the new item files no longer name are left.
    """
    if preset not in PRESET_CONFIG:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESET_CONFIG)}")
    out = Path(out)
    if not overwrite:
        _refuse_existing(out)
    cfg = PRESET_CONFIG[preset]
    items, pairs = build_ccks_tables(seed, preset)
    n_images = _write_images(items, out, seed, cfg)
    files = _output_files(out)
    train_pairs, valid_pairs = pairs[pairs["split"] == "train"], pairs[pairs["split"] == "valid"]
    contents = {
        "item_train_info.jsonl": list(items.loc[items["split"] == "train", "record"]),
        "item_train_pair.jsonl": _pair_objs(train_pairs, labelled=True),
        "item_valid_info.jsonl": list(items.loc[items["split"] == "valid", "record"]),
        "item_valid_pair.jsonl": _pair_objs(valid_pairs, labelled=False),
        "item_valid_pair_truth.jsonl": _pair_objs(valid_pairs, labelled=True),
    }
    for name, objs in contents.items():
        write_text(files[name], _jsonl(objs))
    return SynthReport(out=out, files=list(files.values()), counts=_counts(items, pairs, n_images))


def _counts(items: pd.DataFrame, pairs: pd.DataFrame, n_images: int) -> dict[str, int]:
    counts = {"images": n_images}
    for split in ("train", "valid"):
        sp = pairs[pairs["split"] == split]
        counts[f"{split}_items"] = int((items["split"] == split).sum())
        counts[f"{split}_pairs"] = len(sp)
        counts[f"{split}_positive"] = int(sp["item_label"].sum())
        counts[f"{split}_hard_negative"] = int(sp["kind"].isin(HARD_KINDS).sum())
        counts[f"{split}_easy_negative"] = int((sp["kind"] == "easy").sum())
        counts.update(_modality_counts(items, sp, split))
    counts["valid_unseen_cate_pairs"] = int(pairs.loc[pairs["split"] == "valid", "unseen"].sum())
    counts["unseen_leaf_categories"] = int(items.loc[items["unseen"], "leaf"].nunique())
    counts["leaf_categories"] = int(items["leaf"].nunique())
    return counts


def _modality_counts(items: pd.DataFrame, pairs: pd.DataFrame, split: str) -> dict[str, int]:
    """Pairs that one modality alone decides: image-only negatives (look variants), text-only
    negatives (spec variants: one drawing), image-only positives (a generic seller's listing on
    one side), text-only positives (an item without an image on one side)."""
    by_id = items.set_index("item_id")
    generic = by_id["generic"].to_numpy(bool)
    has_image = np.array([bool(r.get("item_image_name")) for r in by_id["record"]])
    index = by_id.index
    a, b = index.get_indexer(pairs["src_item_id"]), index.get_indexer(pairs["tgt_item_id"])
    positive = pairs["item_label"].to_numpy() == 1
    kinds = pairs["kind"].to_numpy()
    return {f"{split}_image_only_negative": int(np.isin(kinds, IMAGE_ONLY_KINDS).sum()),
            f"{split}_text_only_negative": int(np.isin(kinds, TEXT_ONLY_KINDS).sum()),
            f"{split}_image_only_positive": int((positive & (generic[a] | generic[b])).sum()),
            f"{split}_text_only_positive": int((positive & ~(has_image[a] & has_image[b])).sum())}
