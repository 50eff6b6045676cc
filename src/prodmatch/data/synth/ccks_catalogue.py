"""The synthetic CCKS world (categories, brands, models, products, sellers) and its listings
(title, pvs, sku of one seller's item of a product); `synth.ccks` builds the tables from it."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .vocab_ccks import (_COLOURS, _COLOUR_SYNONYMS, _KINDS, _LINE_PREFIXES, _LINE_SUFFIXES, _MODEL_SUFFIXES,
                         _ORIGINS, _PROMO, _SERIES_LETTERS, _SHOE_SIZES, _SPECS, _SYLLABLES, _TAXONOMY,
                         _UNIT_VARIANTS, _WEAR_SHAPES, _YEAR_WORDS)

# ----------------------------------------------------------------------------------------------
# Small deterministic random helpers (numpy Generator only; never Python's hash or set order).
# ----------------------------------------------------------------------------------------------
def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _sample(rng: np.random.Generator, seq, k: int) -> list:
    k = max(0, min(k, len(seq)))
    return [seq[int(i)] for i in rng.choice(len(seq), size=k, replace=False)]


def _coin(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _words(s: str) -> tuple[str, ...]:
    return tuple(s.split())


# ----------------------------------------------------------------------------------------------
# The world: categories, brands, models, products (model x spec variant), sellers.
# ----------------------------------------------------------------------------------------------
@dataclass
class _Leaf:
    index: int
    industry: str
    kind: str
    names: tuple[str, str, str]
    ids: tuple[str, str, str]
    nouns: tuple[str, ...]
    shape: str
    spec: str


@dataclass
class _Brand:
    cn: str
    en: str
    hue: float
    palette: tuple[str, ...]
    origin: str
    aspect: tuple[float, float]
    series: tuple[str, ...]


@dataclass
class _Product:
    index: int
    leaf: _Leaf
    brand: _Brand
    group: int  # (leaf, brand) id
    model: int  # (leaf, brand, model) id
    model_name: str  # Latin model number ("X20 Pro") or Chinese line ("云朵系列")
    code: str  # 货号
    spec: str  # "" when the leaf has no spec variants
    colours: tuple[str, ...]
    words: tuple[str, ...]  # core title attribute words
    noun: str  # preferred product noun
    pvs: dict  # model-level pvs values (key -> value)
    design: dict  # image parameters
    look: int = 0  # 0: the model's first look; 1: its look variant (texts identical, image not)
    image_colour: str | None = None  # the drawing's main colour when it differs from colours[0]
    unseen: bool = False
    split: str = "train"


@dataclass
class _Seller:
    sep: str
    brand_style: int
    promo_rate: float
    bracket: bool
    shuffle_rate: float
    flagship: bool = False
    generic: bool = False  # title: noun + generic words; no pvs


def _build_leaves(rng: np.random.Generator) -> list[_Leaf]:
    """Every leaf of the taxonomy with random but seed-fixed Taobao-like category ids."""
    n_level2 = sum(len(level2) for _, _, level2 in _TAXONOMY)
    n_leaves = sum(len(leaves) for _, _, level2 in _TAXONOMY for _, leaves in level2)
    ids1 = rng.choice(np.arange(10, 100), size=len(_TAXONOMY), replace=False)
    ids2 = rng.choice(np.arange(1000, 10000), size=n_level2, replace=False)
    ids3 = rng.choice(np.arange(50000000, 50999999), size=n_leaves, replace=False)
    leaves, j2 = [], 0
    for i1, (industry, kind, level2) in enumerate(_TAXONOMY):
        for name2, leaf_defs in level2:
            for name3, nouns, shape, spec in leaf_defs:
                ids = (str(ids1[i1]), str(ids2[j2]), str(ids3[len(leaves)]))
                leaves.append(_Leaf(len(leaves), industry, kind, (industry, name2, name3), ids, _words(nouns), shape, spec))
            j2 += 1
    return leaves


def _make_brands(rng: np.random.Generator, n: int, taken: dict) -> list[_Brand]:
    """`n` new brands with unique Chinese names, a pinyin/Latin name, colour palette and look."""
    brands = []
    colour_names = list(_COLOURS)
    while len(brands) < n:
        parts = _sample(rng, _SYLLABLES, 3 if _coin(rng, 0.2) else 2)
        cn = "".join(p[0] for p in parts)
        if cn in taken:
            continue
        taken[cn] = True
        en = "".join(p[1:] for p in parts)
        en = en.upper() if _coin(rng, 0.6) else en.capitalize()
        series = tuple(_sample(rng, _SERIES_LETTERS, int(rng.integers(1, 3))))
        brands.append(_Brand(cn, en, float(rng.random()), tuple(_sample(rng, colour_names, 5)),
                             _pick(rng, _ORIGINS), (float(rng.uniform(0.45, 0.8)), float(rng.uniform(0.55, 0.9))), series))
    return brands


def _model_names(rng: np.random.Generator, brand: _Brand, kind: str, n: int, taken: dict) -> list[str]:
    """`n` distinct model names for a brand; siblings share series letters and numbers."""
    names = []
    for _ in range(200):
        if len(names) == n:
            break
        if _KINDS[kind]["latin"]:
            step = _pick(rng, (1, 10, 100))
            name = f"{_pick(rng, brand.series)}{int(rng.integers(1, 10)) * step}{_pick(rng, _MODEL_SUFFIXES)}"
        else:
            name = _pick(rng, _LINE_PREFIXES) + _pick(rng, _LINE_SUFFIXES)
        if (brand.cn, name) not in taken:
            taken[(brand.cn, name)] = True
            names.append(name)
    return names


def _model_code(rng: np.random.Generator) -> str:
    letters = "".join(_sample(rng, "ABCDEFGHJKLMNPQRSTWXYZ", int(rng.integers(1, 3))))
    digits = "".join(str(int(d)) for d in rng.integers(0, 10, size=int(rng.integers(3, 6))))
    return _pick(rng, (f"{letters}{digits}", f"{letters}-{digits}", f"{letters}{digits[:2]}-{digits[2:]}"))


def _build_products(rng: np.random.Generator, leaf: _Leaf, budget: int, brand_pool: list[_Brand],
                    counters: dict, taken: dict, look_rate: float) -> list[_Product]:
    """Brands x models x spec variants (x looks) for one leaf, about budget/3 products, at most `budget`."""
    kind = _KINDS[leaf.kind]
    target = max(2, round(budget / 3.0))
    spec_values = _words(_SPECS[leaf.spec][1]) if leaf.spec else ("",)
    brands = _sample(rng, brand_pool, len(brand_pool))
    products: list[_Product] = []
    for bi, brand in enumerate(brands):
        if len(products) >= target and bi >= 2:
            break
        group = counters["group"]
        counters["group"] += 1
        style_words = _sample(rng, _words(kind["attrs"]), 2)
        for model_name in _model_names(rng, brand, leaf.kind, int(rng.integers(2, 5)), taken):
            model = counters["model"]
            counters["model"] += 1
            n_var = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2])) if leaf.spec else 1
            start = int(rng.integers(0, len(spec_values) - n_var + 1))
            colours = tuple(_sample(rng, brand.palette, int(rng.integers(2, 5))))
            pvs = {key: _pick(rng, _words(values)) for key, values in kind["pvs"].items()}
            words = tuple(style_words + _sample(rng, _words(kind["attrs"]), 2))
            noun = _pick(rng, leaf.nouns)
            design = _model_design(rng, brand, model_name)
            code = _model_code(rng)
            looks = [(design, None)]
            if _coin(rng, look_rate):
                looks.append(_look_variant(rng, design, colours))
            for spec in spec_values[start:start + n_var]:
                for look, (drawn, image_colour) in enumerate(looks):
                    products.append(_Product(len(products), leaf, brand, group, model, model_name, code, spec,
                                             colours, words, noun, pvs, drawn, look, image_colour))
    # looks multiply the products: cap them so a product still has ~2.5 listings on average
    return products[:max(1, round(budget / 2.5))]


def _model_design(rng: np.random.Generator, brand: _Brand, model_name: str) -> dict:
    """Image look of a model: the brand's hue and aspect with a small per-model twist."""
    hue = (brand.hue + rng.normal(0, 0.04)) % 1.0
    return dict(hue=float(hue), sat=float(rng.uniform(0.35, 0.85)), val=float(rng.uniform(0.45, 0.9)),
                aspect=(brand.aspect[0] * float(rng.uniform(0.92, 1.08)), brand.aspect[1] * float(rng.uniform(0.92, 1.08))),
                pattern=_pick(rng, ("none", "none", "stripes", "dots", "band")))


def _look_variant(rng: np.random.Generator, design: dict, colours: tuple[str, ...]) -> tuple[dict, str]:
    """(design, main colour) of a model's second look: another pattern, an accent hue far from the
    first, and a main colour the texts never name (they describe the first look's colours)."""
    pattern = _pick(rng, tuple(p for p in ("none", "stripes", "dots", "band") if p != design["pattern"]))
    hue = (design["hue"] + float(rng.uniform(0.3, 0.7))) % 1.0
    colour = _pick(rng, tuple(c for c in _COLOURS if c not in colours))
    return {**design, "pattern": pattern, "hue": hue}, colour


def _make_sellers(rng: np.random.Generator, n: int, generic_rate: float) -> list[_Seller]:
    return [_Seller(sep=" " if _coin(rng, 0.45) else "", brand_style=int(rng.integers(0, 5)),
                    promo_rate=float(rng.uniform(0.0, 0.9)), bracket=_coin(rng, 0.3),
                    shuffle_rate=float(rng.uniform(0.0, 0.6)), generic=_coin(rng, generic_rate)) for _ in range(n)]


# ----------------------------------------------------------------------------------------------
# Listings: title, pvs, sku for one seller's item of a product.
# ----------------------------------------------------------------------------------------------
def _spec_text(rng: np.random.Generator, value: str, p_variant: float = 0.35) -> str:
    """A seller's spelling of a spec value: 256GB -> 256G, 5kg -> 5公斤 / 10斤, 55英寸 -> 55寸."""
    m = re.fullmatch(r"([\d.\-]+)(.*)", value)
    if not m or not _coin(rng, p_variant):
        return value
    number, unit = m.groups()
    if unit == "kg" and _coin(rng, 0.3):
        jin = float(number) * 2
        return f"{jin:g}斤"
    return number + _pick(rng, _UNIT_VARIANTS.get(unit, (unit,)))


def _brand_text(rng: np.random.Generator, brand: _Brand, style: int) -> str:
    style = style if _coin(rng, 0.7) else int(rng.integers(0, 5))
    return (brand.cn, brand.en, f"{brand.cn}/{brand.en}", f"{brand.cn}（{brand.en}）", f"{brand.en}/{brand.cn}")[style]


def _model_text(rng: np.random.Generator, name: str) -> str:
    if not _coin(rng, 0.4):
        return name
    return _pick(rng, (name.replace(" ", ""), name.lower(), name.upper(), re.sub(r"^([A-Za-z]+)(\d)", r"\1-\2", name)))


def _colour_text(rng: np.random.Generator, colour: str) -> str:
    return _COLOUR_SYNONYMS.get(colour, colour) if _coin(rng, 0.25) else colour


def _generic_title(rng: np.random.Generator, p: _Product, seller: _Seller) -> str:
    """A generic seller's title: the kind's attribute words, a noun and promos; nothing that names
    the brand, model, spec or colour, so only the image ties the listing to its product."""
    kind = _KINDS[p.leaf.kind]
    tokens = _sample(rng, _words(kind["attrs"]), int(rng.integers(1, 3))) + [_pick(rng, p.leaf.nouns)]
    tokens += _sample(rng, _PROMO, int(rng.integers(1, 3)))
    return seller.sep.join(tokens)[:60]


def _make_title(rng: np.random.Generator, p: _Product, seller: _Seller) -> str:
    """Taobao-style title: promo, brand, model, year, attribute words, noun, spec; seller noise."""
    if seller.generic:
        return _generic_title(rng, p, seller)
    kind = _KINDS[p.leaf.kind]
    core = [w for w in p.words if _coin(rng, 0.75)] + _sample(rng, _words(kind["attrs"]), int(rng.integers(0, 3)))
    if _coin(rng, 0.3):
        core.append(_pick(rng, _YEAR_WORDS))
    if _has_colour(p) and _coin(rng, 0.25):
        core.append(_colour_text(rng, _pick(rng, p.colours)))
    core = list(dict.fromkeys(core))  # a word at most once (dict keeps order, unlike a set)
    core = _sample(rng, core, len(core)) if _coin(rng, seller.shuffle_rate) else core
    head = [_brand_text(rng, p.brand, seller.brand_style)] if _coin(rng, 0.9) else []
    if _coin(rng, 0.85 if kind["latin"] else 0.5):
        head.append(_model_text(rng, p.model_name))
    if not kind["latin"] and _coin(rng, 0.2):
        head.append(p.code)
    tail = [p.noun if _coin(rng, 0.6) else _pick(rng, p.leaf.nouns)]
    if p.spec and _coin(rng, 0.85):
        tail.append(_spec_text(rng, p.spec))
    tokens = head + core + tail if _coin(rng, 0.8) else core + head + tail
    if seller.flagship and _coin(rng, 0.5):
        tokens.append("官方旗舰店")
    promos = _sample(rng, _PROMO, int(rng.integers(1, 4))) if _coin(rng, seller.promo_rate) else []
    if promos and seller.bracket:
        tokens.insert(0, f"【{promos.pop()}】")
    tokens += promos
    return seller.sep.join(t for t in tokens if t)[:60]


def _make_item_pvs(rng: np.random.Generator, p: _Product, item_colours: list[str]) -> str:
    """Item properties ``k#:#v#;#...``: shared product facts, per-seller subsets, repeated colour keys."""
    kind = _KINDS[p.leaf.kind]
    entries = []
    if _coin(rng, 0.9):
        entries.append(("品牌", _pick(rng, (p.brand.cn, f"{p.brand.cn}/{p.brand.en}", p.brand.en))))
    if _coin(rng, 0.75 if kind["latin"] else 0.45):
        entries.append(("型号" if kind["latin"] else "系列", _model_text(rng, p.model_name)))
    if _coin(rng, 0.5):
        entries.append(("货号", p.code if _coin(rng, 0.8) else _model_code(rng)))
    if p.spec and _coin(rng, 0.85):
        entries.append((_SPECS[p.leaf.spec][0], _spec_text(rng, p.spec, 0.2)))
    for key, value in p.pvs.items():
        if _coin(rng, 0.6):
            entries.append((key, value if _coin(rng, 0.85) else _pick(rng, _words(kind["pvs"][key]))))
    if _coin(rng, 0.5):
        entries.append(("产地", p.brand.origin if _coin(rng, 0.85) else _pick(rng, _ORIGINS)))
    if _has_colour(p) and _coin(rng, 0.7):
        entries += [("颜色分类", _colour_text(rng, c)) for c in item_colours]
    if _coin(rng, 0.25):
        entries = _sample(rng, entries, len(entries))
    return "#;#".join(f"{k}#:#{v}" for k, v in entries)


def _make_sku_pvs(rng: np.random.Generator, p: _Product, item_colours: list[str]) -> str:
    """Sale attributes: one entry per colour plus the kind's SKU axis (尺码, 套餐类型, 口味, 规格)."""
    key, values = _KINDS[p.leaf.kind]["sku"]
    entries = [("颜色分类", c) for c in item_colours] if _has_colour(p) else []
    if p.leaf.shape == "shoe":
        values = _SHOE_SIZES
    elif key == "尺码" and p.leaf.shape not in _WEAR_SHAPES:
        values = ""
    if key == "规格":
        entries.append((key, p.spec or _pick(rng, ("标准装", "旅行装", "套装"))))
    elif values:
        opts = _words(values)
        start = int(rng.integers(0, max(1, len(opts) - 2)))
        entries += [(key, v) for v in opts[start:start + int(rng.integers(1, len(opts) - start + 1))]]
    return "#;#".join(f"{k}#:#{v}" for k, v in entries)


def _has_colour(p: _Product) -> bool:
    """Food and pet food are sold by flavour and weight, not colour."""
    return p.leaf.kind not in ("food", "pet") or p.leaf.shape == "box"


def _maybe_missing(rng: np.random.Generator, record: dict, keys, p: float) -> None:
    """With probability `p` blank `keys` out: removed, null or "" (all three occur in real data)."""
    if not _coin(rng, p):
        return
    how = int(rng.integers(0, 3))
    for key in keys:
        if how == 0:
            record.pop(key, None)
        else:
            record[key] = None if how == 1 else ""


def _make_record(rng: np.random.Generator, p: _Product, seller: _Seller) -> dict:
    """One item_info JSON object (keys in INFO_KEYS order) for a seller's listing of product `p`."""
    item_id = rng.bytes(16).hex()
    colours = _sample(rng, p.colours, int(rng.integers(1, len(p.colours) + 1)))
    leaf = p.leaf
    record = {
        "item_id": item_id, "industry_name": leaf.industry, "cate_id": leaf.ids[2], "cate_name": leaf.names[2],
        "cate_id_path": ",".join(leaf.ids), "cate_name_path": ",".join(leaf.names), "item_image_name": f"{item_id}.jpg",
        "title": _make_title(rng, p, seller),
        "item_pvs": "" if seller.generic else _make_item_pvs(rng, p, colours),
        "sku_pvs": "" if seller.generic else _make_sku_pvs(rng, p, colours),
    }
    _maybe_missing(rng, record, ("item_pvs",), 0.08)
    _maybe_missing(rng, record, ("sku_pvs",), 0.15)
    _maybe_missing(rng, record, ("item_image_name",), 0.03)
    _maybe_missing(rng, record, ("cate_id", "cate_name", "cate_id_path", "cate_name_path"), 0.02)
    _maybe_missing(rng, record, ("cate_name_path",), 0.01)
    _maybe_missing(rng, record, ("industry_name",), 0.01)
    _maybe_missing(rng, record, ("title",), 0.01)
    return record


