"""Synthetic Shopee "Price Match Guarantee" data in Kaggle's exact formats.

A catalogue category -> brand -> product -> variant is sampled; one variant is one label_group.
Quantity variants of a product (250ml vs 500ml) share the drawn picture but not the group, so
only a unit filter can split them; seller noise (promo words, typos, casing, Indonesian/English,
byte escapes) makes titles disagree within a group and agree across neighbouring products.
Long because it is mostly vocabulary and drawing rules, not logic.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ._registry import SynthReport, register
from . import draw
from .vocab_id import (ABBREVIATIONS, BRACKETS, BRAND_ENDINGS, BRAND_ONSETS, CATEGORIES, EMOJIS,
                       GENERIC_WORDS, INCH, LENGTH, MEMORY, PROMO_WORDS, VOLUME, WEIGHT)
from ...io import write_bytes, write_csv

# Group sizes of a real sample of 1,500 Shopee label groups (size: number of groups).
GROUP_SIZE_HIST = {2: 977, 3: 230, 4: 90, 5: 73, 6: 42, 7: 25, 8: 19, 9: 11, 10: 7, 11: 4, 12: 5, 13: 4,
                   14: 2, 15: 2, 18: 2, 19: 1, 20: 1, 21: 1, 22: 1, 26: 1, 33: 1, 49: 1}
_SIZES = np.array(sorted(GROUP_SIZE_HIST))
_SIZE_P = np.array([GROUP_SIZE_HIST[s] for s in _SIZES], float) / sum(GROUP_SIZE_HIST.values())

PRESETS = {
    # rows per split, brands per category, largest group (test preset only: keeps 40 rows varied), px
    "test": dict(train_rows=150, test_rows=40, brands=3, max_group=12, image_size=112),
    "demo": dict(train_rows=3000, test_rows=600, brands=7, max_group=50, image_size=240),
    # Kaggle's sizes (34,250 train, ~70,000 hidden test): for scale runs, so images stay small
    "kaggle": dict(train_rows=34250, test_rows=70000, brands=30, max_group=50, image_size=32),
}
# Fixed per preset (not its position in PRESETS): adding a preset never changes another's data.
PRESET_STREAM = {"demo": 0, "test": 1, "kaggle": 2}
TRAIN_COLUMNS = ["posting_id", "image", "image_phash", "title", "label_group"]
TEST_COLUMNS = ["posting_id", "image", "image_phash", "title"]

# Calibration knobs (see bench/baselines.py for what they produce).
P_FAMILY = 0.14         # product sold in 2-3 quantity variants (separate groups, one picture)
P_MULTIPACK = 0.25      # a family has a "2x250ml" variant
P_GENERIC_GROUP = 0.10  # one posting of the group has a generic, unrelated-looking title
P_ALT_GROUP = 0.15      # some postings of the group use a different photo
P_BANNER = 0.025        # posting shows a promo banner instead of the product
P_DUP_IMAGE = 0.12      # posting reuses an earlier posting's photo (identical bytes)
P_STOCK_PHOTO = 0.6     # otherwise: a light edit of the product's stock photo (else an own photo)
P_COPY_TITLE = 0.40     # posting copies an earlier posting's title with small edits
P_ESCAPE = 0.010        # non-ASCII characters written as literal \xNN byte escapes
P_BYTES_REPR = 0.25     # title with an apostrophe written as b"..." (Python bytes repr)


# ---------------------------------------------------------------- group sizes

def sample_group_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """`n` group sizes drawn from the real size histogram (all >= 2, at most 49)."""
    return rng.choice(_SIZES, size=n, p=_SIZE_P)


def _next_size(rng: np.random.Generator, left: int, max_group: int) -> int:
    """One group size that fits the rows left and never strands a single row."""
    size = min(int(sample_group_sizes(rng, 1)[0]), max_group, left)
    if left - size == 1:
        size += 1
    return size


# ---------------------------------------------------------------- catalogue

@dataclass(frozen=True)
class Quantity:
    """A variant's amount in base units (g, ml, mm, inch, pieces, GB); pack > 1 for '2x250ml'."""

    dim: str
    value: float
    pack: int = 1
    count_word: Optional[str] = None


@dataclass(frozen=True)
class Product:
    key: str
    category: str
    brand: str
    noun_id: str
    noun_en: str
    descriptors: tuple[str, ...]
    look: draw.Look
    stock: draw.Shot  # the product's stock photo, which most sellers reuse with light edits


@dataclass
class Variant:
    """One label_group: a product at one quantity."""

    product: Product
    quantity: Optional[Quantity]
    label_group: int
    split: str
    size: int
    family: bool = False  # one of 2-3 quantity variants of its product


@dataclass
class Posting:
    split: str
    posting_id: str
    image: str
    title: str
    label_group: int
    variant: Variant
    shot: draw.Shot


@dataclass
class Plan:
    """Everything but the pixels: tests read it to check the catalogue (e.g. quantity families)."""

    postings: list[Posting]
    variants: list[Variant]
    image_size: int
    counts: dict[str, int] = field(default_factory=dict)


def _brand_names(rng: np.random.Generator, n: int, taken: set) -> list[str]:
    """`n` new invented brand names (syllables + ending), unique across the catalogue."""
    names = []
    while len(names) < n:
        sy = rng.choice(BRAND_ONSETS, size=int(rng.integers(2, 4)))
        name = ("".join(sy) + BRAND_ENDINGS[rng.integers(len(BRAND_ENDINGS))]).capitalize()
        if name not in taken and 4 <= len(name) <= 10:
            taken.add(name)
            names.append(name)
    return names


class Catalogue:
    """Samples new products; brands, nouns and descriptors repeat within a category (hard negatives)."""

    def __init__(self, rng: np.random.Generator, brands_per_category: int):
        self.rng = rng
        self.categories = list(CATEGORIES)
        taken: set = set()
        self.brands = {c: _brand_names(rng, brands_per_category, taken) for c in self.categories}
        self.keys: set = set()

    def new_product(self) -> tuple[Product, tuple]:
        """A product never sampled before, with its noun record (dimension, ladder, count word)."""
        rng = self.rng
        while True:
            cat = self.categories[rng.integers(len(self.categories))]
            spec = CATEGORIES[cat]
            brand = self.brands[cat][rng.integers(len(self.brands[cat]))]
            noun = spec["nouns"][rng.integers(len(spec["nouns"]))]
            n_desc = 1 if rng.random() < 0.6 else 2
            idx = np.sort(rng.choice(len(spec["descriptors"]), size=n_desc, replace=False))
            descriptors = tuple(spec["descriptors"][i] for i in idx)
            key = "/".join((cat, brand, noun[0], "+".join(descriptors)))
            if key in self.keys:
                continue
            self.keys.add(key)
            initials = (brand[0] + brand[int(rng.integers(1, len(brand)))]).upper()
            look = draw.sample_look(rng, spec["shapes"], spec["palette"], initials)
            stock = draw.sample_shot(rng, "main")
            return Product(key, cat, brand, noun[0], noun[1], descriptors, look, stock), noun

    def quantities(self, noun: tuple, family: bool) -> list[Optional[Quantity]]:
        """Quantities of the product's variants: 2-3 for a family, else one (or none)."""
        rng = self.rng
        _, _, dim, ladder, count_word = noun
        if dim is None:
            return [None]
        n = min(len(ladder), 3 if rng.random() < 0.3 else 2) if family else 1
        values = [ladder[i] for i in np.sort(rng.choice(len(ladder), size=n, replace=False))]
        out = [Quantity(dim, float(v), 1, count_word) for v in values]
        if family and dim in (WEIGHT, VOLUME) and rng.random() < P_MULTIPACK:
            out[-1] = Quantity(dim, out[0].value, int(rng.integers(2, 4)), count_word)  # 250ml and 2x250ml
        return out


# ---------------------------------------------------------------- quantities as sellers write them

def _num(x: float, comma: bool = False) -> str:
    s = f"{x:g}"
    return s.replace(".", ",") if comma else s


def _pick(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _unit_forms(q: Quantity, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(natural, alternative) spellings of one unit of `q`; both name the same amount."""
    v, c = q.value, bool(rng.random() < 0.5)
    if q.dim == WEIGHT:
        grams = [f"{_num(v, c)}{u}" for u in ("g", " g", "gr", " gr", "gram", " gram", "GR", " Gram")]
        kilos = [f"{_num(v / 1000, c)}{u}" for u in ("kg", " kg", " Kg", "KG")]
        milli = [f"{_num(v * 1000)}{u}" for u in ("mg", " mg", " MG")]
        return (milli, grams) if v < 1 else (grams, kilos) if v < 1000 else (kilos, grams)
    if q.dim == VOLUME:
        ml = [f"{_num(v)}{u}" for u in ("ml", " ml", " mL", "ML", " ML", "Ml")]
        litre = [f"{_num(v / 1000, c)}{u}" for u in ("L", " L", " liter", " Liter", "ltr", " litre")]
        return (ml, litre + [f"{_num(v)}cc"]) if v < 1000 else (litre, ml)
    if q.dim == LENGTH:
        mm = [f"{_num(v)}{u}" for u in ("mm", " mm", "MM")]
        cm = [f"{_num(v / 10, c)}{u}" for u in ("cm", " cm", " CM", "Cm")]
        m = [f"{_num(v / 1000, c)}{u}" for u in ("m", " m", " meter", " Meter", "M")]
        return (m, cm) if v >= 1000 else (cm, mm) if v >= 10 and v % 10 == 0 else (mm, cm)
    if q.dim == INCH:
        return [f"{_num(v)}{u}" for u in (" inch", "inch", " Inch", " INCH")], [f"{_num(v)} inci"]
    if q.dim == MEMORY:
        gb = [f"{_num(v)}{u}" for u in ("GB", " GB", "gb", " Gb")]
        tb = [f"{_num(v / 1000, c)}{u}" for u in ("TB", " TB", "tb")]
        mb = [f"{_num(v * 1024)}{u}" for u in ("MB", " MB", "mb")]
        return (mb, mb) if v < 1 else (tb, gb) if v >= 1000 else (gb, gb)
    n, w = _num(v), q.count_word or "pcs"
    words = [f"{n} {w}", f"{n}{w}", f"isi {n}", f"isi {n} {w}", f"{n} {w.upper()}", f"({n} {w})"]
    alt = [f"{n} pc", f"{n}pcs", f"isi {n}pcs"] if w == "pcs" else [f"{n} {w}"]
    return words, alt


def spell_quantity(q: Quantity, rng: np.random.Generator) -> str:
    """One seller's spelling of `q`: '30g', '30 gr', '0,03kg', '2x250ml', 'isi 3 pcs' ..."""
    natural, alternative = _unit_forms(q, rng)
    one = _pick(rng, natural if rng.random() < 0.8 else alternative)
    if q.pack == 1:
        return one
    p = str(q.pack)
    return _pick(rng, (f"{p}x{one.replace(' ', '')}", f"{p} x {one}", f"{one} x{p}", f"{one} x {p}",
                       f"isi {p} x {one}"))


def canonical_quantity(q: Optional[Quantity]) -> str:
    """A spelling-free key of a quantity, e.g. 'volume:250x2' (for tests and checks)."""
    return "" if q is None else f"{q.dim}:{q.value:g}x{q.pack}"


# ---------------------------------------------------------------- titles

def _typo(word: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(3)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def _noisy_words(text: str, rng: np.random.Generator, p_typo: float = 0.02, p_abbrev: float = 0.3) -> str:
    """Typos and seller abbreviations on the words of one title part."""
    out = []
    for w in text.split():
        low = w.lower()
        if low in ABBREVIATIONS and rng.random() < p_abbrev:
            w = ABBREVIATIONS[low]
        elif w.isalpha() and len(w) >= 4 and rng.random() < p_typo:
            w = _typo(w, rng)
        out.append(w)
    return " ".join(out)


def _case(title: str, rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.2:
        return title.upper()
    if r < 0.38:
        return title.lower()
    if r < 0.6:
        return " ".join(w[:1].upper() + w[1:].lower() for w in title.split(" "))
    return title


def _promo(rng: np.random.Generator) -> str:
    k = int(rng.choice(4, p=(0.5, 0.28, 0.15, 0.07)))
    if k == 0:
        return ""
    words = [PROMO_WORDS[i] for i in rng.choice(len(PROMO_WORDS), size=k, replace=False)]
    text = " ".join(words)
    if rng.random() < 0.3:
        left, right = BRACKETS[int(rng.integers(len(BRACKETS)))]
        text = f"{left}{text}{right}"
    if rng.random() < 0.12:
        e = EMOJIS[int(rng.integers(len(EMOJIS)))]
        text = f"{e}{text}{e}" if rng.random() < 0.5 else f"{e} {text}"
    return text


def _noun(p: Product, rng: np.random.Generator, p_indonesian: float) -> str:
    r = rng.random()
    if r < 0.08:
        return f"{p.noun_id} / {p.noun_en}" if rng.random() < 0.5 else f"{p.noun_id} {p.noun_en}"
    return p.noun_id if r < 0.08 + 0.92 * p_indonesian else p.noun_en


def seller_title(v: Variant, rng: np.random.Generator, p_indonesian: float = 0.65) -> str:
    """A noisy seller title for one posting of variant `v` (no byte artefacts yet).

    `p_indonesian` is the group's leaning to the Indonesian product noun over the English one.
    """
    p = v.product
    spec = CATEGORIES[p.category]
    parts: list[tuple[str, str]] = []  # (kind, text); kind "q" is kept out of word noise
    if rng.random() < 0.85:
        brand = p.brand.upper() if rng.random() < 0.2 else p.brand
        parts.append(("w", brand + ("®" if rng.random() < 0.04 else "")))
    if rng.random() < 0.95:
        parts.append(("w", _noun(p, rng, p_indonesian)))
    for d in p.descriptors:
        if rng.random() < 0.85:
            parts.append(("w", d))
    if rng.random() < 0.1:
        parts.append(("w", _pick(rng, spec["descriptors"])))
    if v.quantity is not None and rng.random() < (0.85 if v.family else 0.55):
        parts.append(("q", spell_quantity(v.quantity, rng)))
    n_fill = int(rng.choice(4, p=(0.5, 0.33, 0.13, 0.04)))
    for i in rng.choice(len(spec["fillers"]), size=n_fill, replace=False):
        parts.append(("w", spec["fillers"][i]))
    if rng.random() < 0.3:
        order = rng.permutation(len(parts))
        parts = [parts[i] for i in order]
    texts = [t if k == "q" else _noisy_words(t, rng) for k, t in parts if k == "q" or rng.random() > 0.03]
    texts = texts or [p.noun_id]
    title = (" - " if rng.random() < 0.08 else " ").join(texts)
    promo = _promo(rng)
    if promo:
        title = f"{promo} {title}" if rng.random() < 0.6 else f"{title} {promo}"
    return _case(title, rng).strip()


def generic_title(p: Product, rng: np.random.Generator) -> str:
    """A throwaway title that shares almost nothing with the product's usual titles."""
    spec = CATEGORIES[p.category]
    words = [GENERIC_WORDS[i] for i in rng.choice(len(GENERIC_WORDS), size=int(rng.integers(2, 4)), replace=False)]
    words.append(_pick(rng, spec["fillers"]))
    if rng.random() < 0.5:
        words.append(p.noun_en if rng.random() < 0.5 else p.noun_id.split()[0])
    order = rng.permutation(len(words))
    title = " ".join(words[i] for i in order)
    promo = _promo(rng)
    return _case(f"{promo} {title}".strip(), rng)


def retouch_title(title: str, rng: np.random.Generator) -> str:
    """A copied title with small edits: new casing, a promo word more or less."""
    words = title.split()
    if len(words) > 3 and rng.random() < 0.4:
        del words[int(rng.integers(len(words)))]
    title = " ".join(words)
    if rng.random() < 0.5:
        title = f"{_pick(rng, PROMO_WORDS)} {title}"
    return _case(title, rng)


def escape_bytes(text: str) -> str:
    """Non-ASCII characters as literal UTF-8 byte escapes: '✔' -> '\\xe2\\x9c\\x94' (12 chars)."""
    return "".join(ch if ord(ch) < 128 else "".join(f"\\x{b:02x}" for b in ch.encode("utf-8")) for ch in text)


def byte_artefacts(title: str, rng: np.random.Generator) -> str:
    """Rarely mangle a title the way the real train.csv is mangled: byte escapes or a b"..." repr."""
    if "'" in title and '"' not in title and "\\" not in title and rng.random() < P_BYTES_REPR:
        return repr(title.encode("utf-8"))
    if rng.random() < P_ESCAPE:
        if title.isascii():
            ch = _pick(rng, EMOJIS + ("é", "®", "【", "】"))
            title = f"{ch} {title}" if rng.random() < 0.5 else f"{title} {ch}"
        return escape_bytes(title)
    return title


def posting_title(v: Variant, rng: np.random.Generator, p_indonesian: float = 0.65) -> str:
    """seller_title plus the rare byte artefacts: what ends up in the CSV."""
    return byte_artefacts(seller_title(v, rng, p_indonesian), rng)


# ---------------------------------------------------------------- the plan

def _unique_ints(rng: np.random.Generator, n: int, lo: int, hi: int, taken: set) -> list[int]:
    out = []
    while len(out) < n:
        x = int(rng.integers(lo, hi))
        if x not in taken:
            taken.add(x)
            out.append(x)
    return out


def _variants_for_split(cat: Catalogue, rng: np.random.Generator, split: str, n_rows: int,
                        max_group: int, taken_groups: set) -> list[Variant]:
    """Products (and their quantity families) until the split has `n_rows` postings."""
    variants: list[Variant] = []
    left = n_rows
    while left >= 2:
        product, noun = cat.new_product()
        family = noun[2] is not None and len(noun[3]) >= 2 and rng.random() < P_FAMILY
        qs = cat.quantities(noun, family)
        for q in qs:
            if left < 2:
                break
            size = _next_size(rng, left, max_group)
            left -= size
            group = _unique_ints(rng, 1, 100_000_000, 4_294_967_295, taken_groups)[0]
            variants.append(Variant(product, q, group, split, size, family))
    return variants


def _postings_for_variant(v: Variant, rt: np.random.Generator, rs: np.random.Generator) -> list[tuple[str, draw.Shot]]:
    """(title, shot) for each posting of one group, with the group-level oddities."""
    n = v.size
    generic_at = int(rt.integers(n)) if rt.random() < P_GENERIC_GROUP else -1
    p_indonesian = float(rt.choice((0.92, 0.7, 0.1)))
    alt = set()
    if rs.random() < P_ALT_GROUP:
        alt = {int(i) for i in rs.choice(n, size=int(rs.integers(1, max(1, n // 2) + 1)), replace=False)}
    clean: list[str] = []  # titles before byte artefacts; copies are made from these
    titles: list[str] = []
    shots: list[draw.Shot] = []
    for i in range(n):
        if i == generic_at:
            title = generic_title(v.product, rt)
        elif clean and rt.random() < P_COPY_TITLE:
            title = retouch_title(clean[int(rt.integers(len(clean)))], rt)
        else:
            title = seller_title(v, rt, p_indonesian)
        clean.append(title)
        titles.append(byte_artefacts(title, rt))
        photos = [s for s in shots if s.kind != "banner"]
        if rs.random() < P_BANNER:
            shot = draw.sample_shot(rs, "banner")
        elif i in alt:
            shot = draw.sample_shot(rs, "alt")
        elif photos and rs.random() < P_DUP_IMAGE:
            shot = photos[int(rs.integers(len(photos)))]
        elif rs.random() < P_STOCK_PHOTO:
            shot = draw.edit_shot(rs, v.product.stock)
        else:
            shot = draw.sample_shot(rs, "main")
        shots.append(shot)
    return list(zip(titles, shots))


def plan_dataset(seed: int, preset: str, rows: tuple[int, int] | None = None) -> Plan:
    """Sample the whole data set except pixels: catalogue, groups, titles, photo settings, ids."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    cfg = dict(PRESETS[preset])
    if rows is not None:  # the preset's catalogue and pictures at another size
        if min(rows) < 2:
            raise ValueError(f"rows must be two counts >= 2 (train, test), got {rows}")
        cfg["train_rows"], cfg["test_rows"] = (int(r) for r in rows)
    streams = np.random.SeedSequence([int(seed), PRESET_STREAM[preset]]).spawn(5)
    r_cat, r_size, r_title, r_shot, r_id = (np.random.default_rng(s) for s in streams)
    cat = Catalogue(r_cat, cfg["brands"])
    groups: set = set()
    variants = (_variants_for_split(cat, r_size, "train", cfg["train_rows"], cfg["max_group"], groups)
                + _variants_for_split(cat, r_size, "test", cfg["test_rows"], cfg["max_group"], groups))
    ids: set = set()
    postings: list[Posting] = []
    for v in variants:
        for title, shot in _postings_for_variant(v, r_title, r_shot):
            pid = _unique_ints(r_id, 1, 100_000_000, 4_294_967_295, ids)[0]
            postings.append(Posting(v.split, f"{v.split}_{pid}", r_id.bytes(16).hex() + ".jpg", title,
                                    v.label_group, v, shot))
    order = r_id.permutation(len(postings))
    postings = [postings[i] for i in order]
    postings.sort(key=lambda p: p.split != "train")  # stable: train first, each split shuffled
    counts = {
        "train_rows": sum(p.split == "train" for p in postings),
        "test_rows": sum(p.split == "test" for p in postings),
        "train_groups": sum(v.split == "train" for v in variants),
        "test_groups": sum(v.split == "test" for v in variants),
    }
    return Plan(postings, variants, cfg["image_size"], counts)


# ---------------------------------------------------------------- writing

def _output_paths(out: Path, plan: Plan) -> tuple[list[Path], list[Path]]:
    csvs = [out / "train.csv", out / "test.csv", out / "test_truth.csv"]
    images = [out / f"{p.split}_images" / p.image for p in plan.postings]
    return csvs, images


def _render_images(out: Path, plan: Plan) -> dict[str, str]:
    """Write every posting's JPEG; return image name -> phash of the bytes as written.

    Works product by product so only one product's drawings and photos are held in memory.
    """
    by_product: dict[str, list[Posting]] = {}
    for p in plan.postings:
        by_product.setdefault(p.variant.product.key, []).append(p)
    hashes: dict[str, str] = {}
    for postings in tqdm(by_product.values(), desc="shopee images", unit="product", disable=None):
        photos: dict[draw.Shot, tuple[bytes, str]] = {}  # equal shots: identical bytes, rendered once
        for p in postings:
            if p.shot not in photos:
                jpeg = draw.render_jpeg(p.variant.product.look, p.shot, plan.image_size)
                photos[p.shot] = (jpeg, draw.phash_hex(jpeg))
            jpeg, hashes[p.image] = photos[p.shot]
            write_bytes(out / f"{p.split}_images" / p.image, jpeg)
    return hashes


def _frames(plan: Plan, hashes: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = [dict(posting_id=p.posting_id, image=p.image, image_phash=hashes[p.image], title=p.title,
                 label_group=p.label_group, split=p.split) for p in plan.postings]
    df = pd.DataFrame(rows)
    train = df[df.split == "train"][TRAIN_COLUMNS].reset_index(drop=True)
    test = df[df.split == "test"].reset_index(drop=True)
    return train, test[TEST_COLUMNS], test[["posting_id", "label_group"]]


def _drawn_phashes(plan: Plan) -> dict[str, str]:
    """Image name -> a phash drawn without pixels, for `images=False` (scale runs, memory tests).

    A product has one random 64-bit code; its main shots flip 0-5 bits of it (a light edit), its
    alt / banner shots get unrelated codes; equal shots of a product get equal hashes, as equal
    photos would.
    """
    import hashlib

    def h64(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    hashes: dict[str, str] = {}
    for p in plan.postings:
        product, shot = p.variant.product.key, repr(p.shot)
        if p.shot.kind == "main":
            code, noise = h64(product), h64(product + shot)
            for b in range(noise % 6):
                code ^= 1 << ((noise >> (8 * b + 8)) % 64)
        else:
            code = h64(product + shot)
        hashes[p.image] = f"{code:016x}"
    return hashes


@register("shopee")
def generate_shopee(out: Path, *, seed: int, preset: str, overwrite: bool = False, images: bool = True,
                    rows: tuple[int, int] | None = None) -> SynthReport:
    """Write train.csv, test.csv, test_truth.csv and the two image folders into `out`.

    `images=False` writes the CSVs only, with phashes drawn instead of computed from JPEGs (the
    image column still names files that do not exist: use image policy text-only); `rows`
    replaces the preset's (train, test) posting counts.
    """
    out = Path(out)
    plan = plan_dataset(seed, preset, rows)
    csvs, image_paths = _output_paths(out, plan)
    if not overwrite:
        for path in csvs + (image_paths if images else []):
            if path.exists():
                raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    # images first: a crash never leaves a CSV without its images
    hashes = _render_images(out, plan) if images else _drawn_phashes(plan)
    train, test, truth = _frames(plan, hashes)
    write_csv(out / "train.csv", train)
    write_csv(out / "test.csv", test)
    write_csv(out / "test_truth.csv", truth)
    return SynthReport(out, files=csvs, counts=dict(plan.counts))
