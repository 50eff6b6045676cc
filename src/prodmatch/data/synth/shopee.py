"""Synthetic Shopee "Price Match Guarantee" data in Kaggle's exact formats.

A catalogue category -> brand -> product -> variant is sampled; one variant is one label_group.
Quantity variants of a product (250ml vs 500ml) share the drawn picture but not the group, so
only a unit filter can split them; seller noise (promo words, typos, casing, Indonesian/English,
byte escapes) makes titles disagree within a group and agree across neighbouring products.
The catalogue and its titles live in `shopee_catalogue`, the words in `vocab_id`, the drawings in `draw`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ._registry import SynthReport
from . import draw
from .shopee_catalogue import (P_ALT_GROUP, P_BANNER, P_COPY_TITLE, P_DUP_IMAGE, P_FAMILY, P_GENERIC_GROUP, P_STOCK_PHOTO,
                               Catalogue, Plan, Posting, Variant, byte_artefacts, generic_title, retouch_title,
                               seller_title)
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


def _render_images(out: Path, plan: Plan, workers: int = 1) -> dict[str, str]:
    """Write every posting's JPEG; return image name -> phash of the bytes as written.

    Works product by product so only one product's drawings and photos are held in memory; with
    `workers` > 1, products are rendered in that many processes (the same bytes: a photo depends on
    its product's look and its shot only).
    """
    by_product: dict[str, list[Posting]] = {}
    for p in plan.postings:
        by_product.setdefault(p.variant.product.key, []).append(p)
    jobs = [(str(out), plan.image_size, postings[0].variant.product.look, [(p.shot, p.split, p.image) for p in postings])
            for postings in by_product.values()]
    hashes: dict[str, str] = {}
    bar = tqdm(total=len(jobs), desc="shopee images", unit="product", disable=None)
    if workers <= 1:
        for job in jobs:
            hashes.update(_render_product(job))
            bar.update()
    else:
        import multiprocessing

        with multiprocessing.get_context().Pool(workers) as pool:
            for done in pool.imap_unordered(_render_product, jobs, chunksize=max(1, len(jobs) // (8 * workers))):
                hashes.update(done)
                bar.update()
    bar.close()
    return hashes


def _render_product(job) -> dict[str, str]:
    """Render and write one product's photos (equal shots: identical bytes, rendered once)."""
    out, size, look, shots = job
    photos: dict[draw.Shot, tuple[bytes, str]] = {}
    hashes = {}
    for shot, split, image in shots:
        if shot not in photos:
            jpeg = draw.render_jpeg(look, shot, size)
            photos[shot] = (jpeg, draw.phash_hex(jpeg))
        jpeg, hashes[image] = photos[shot]
        write_bytes(Path(out) / f"{split}_images" / image, jpeg)
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


def generate_shopee(out: Path, *, seed: int, preset: str, overwrite: bool = False, images: bool = True,
                    rows: tuple[int, int] | None = None, workers: int = 1) -> SynthReport:
    """Write train.csv, test.csv, test_truth.csv and the two image folders into `out`.

    `images=False` writes the CSVs only, with phashes drawn instead of computed from JPEGs (the
    image column still names files that do not exist: use image policy text-only); `rows`
    replaces the preset's (train, test) posting counts; `workers` > 1 renders the JPEGs in that many
    processes (byte-identical files: the plan is sampled before, in this process).
    """
    out = Path(out)
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    started = time.perf_counter()
    plan = plan_dataset(seed, preset, rows)
    planned = time.perf_counter()
    csvs, image_paths = _output_paths(out, plan)
    if not overwrite:
        for path in csvs + (image_paths if images else []):
            if path.exists():
                raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    # images first: a crash never leaves a CSV without its images
    hashes = _render_images(out, plan, int(workers)) if images else _drawn_phashes(plan)
    seconds = {"plan": planned - started, "images": time.perf_counter() - planned}
    train, test, truth = _frames(plan, hashes)
    write_csv(out / "train.csv", train)
    write_csv(out / "test.csv", test)
    write_csv(out / "test_truth.csv", truth)
    return SynthReport(out, files=csvs, counts=dict(plan.counts), seconds=seconds)
