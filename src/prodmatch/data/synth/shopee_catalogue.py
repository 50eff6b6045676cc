"""The synthetic Shopee catalogue (category -> brand -> product -> variant, quantities) and how
sellers write its titles (quantity spellings, promo words, typos, casing, Indonesian/English, byte
escapes); `synth.shopee` plans and writes the dataset from it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from . import draw
from .vocab_id import (ABBREVIATIONS, BRACKETS, BRAND_ENDINGS, BRAND_ONSETS, CATEGORIES, EMOJIS,
                       GENERIC_WORDS, INCH, LENGTH, MEMORY, PROMO_WORDS, VOLUME, WEIGHT)

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


