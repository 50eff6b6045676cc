"""Synthetic KDD Cup 2020 Multimodalities Recall data in the competition's exact file formats.

Box classes have names (multimodal_labels.txt) and feature prototypes; attribute words (colour,
material, style) have prototypes too. A product's main box is labelled with its class and its
feature is class + attribute prototypes + noise; extra boxes carry other classes. Queries are noun
phrases: attribute words + the class name or a synonym (+ "with <second object>" now and then).
Each valid/test query lists ~30 candidates: 5 answers, hard negatives of the same class with other
attributes (same box labels, only the features tell them apart), and others, so random < box-label
overlap < a model of the features. Train rows are (product, its query) positives.
"""
from __future__ import annotations

import base64
import csv
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from prodmatch.io import write_json, write_text

from ._registry import SynthReport

COLUMNS = ("product_id", "image_h", "image_w", "num_boxes", "boxes", "features", "class_labels", "query", "query_id")

# class name (the label file's), then query nouns that do not name the label (synonyms)
CLASSES = (
    ("others", ()), ("tops", ("shirt", "blouse", "sweater")), ("trousers", ("pants", "jeans", "leggings")),
    ("bag", ("backpack", "handbag", "purse")), ("shoes", ("sneakers", "boots", "sandals")),
    ("accessories", ("belt", "scarf")), ("skirt", ("miniskirt",)), ("dress", ("gown", "frock")),
    ("coat", ("jacket", "parka")), ("makeup", ("lipstick", "eyeshadow")), ("stationery", ("pen", "notebook")),
    ("jewelry", ("necklace", "earrings", "ring")), ("toy", ("doll", "puzzle")), ("home appliance", ("blender", "kettle")),
    ("bottle", ("flask", "thermos")), ("furniture", ("table", "chair")), ("phone", ("smartphone", "mobile")),
    ("watch", ("wristwatch", "smartwatch")), ("hat", ("cap", "beanie")), ("glasses", ("sunglasses", "eyeglasses")),
    ("bedding", ("pillow", "quilt")), ("lamp", ("lantern", "light")), ("cup", ("mug", "tumbler")),
    ("snacks", ("cookies", "chips")), ("fruit", ("apple", "mango")), ("sofa", ("couch", "loveseat")),
    ("plant", ("succulent", "flowers")), ("book", ("novel", "comic")), ("pet supplies", ("collar", "leash")),
    ("baby products", ("diaper", "stroller")), ("sports equipment", ("dumbbell", "racket")),
    ("underwear", ("bra", "briefs")), ("cosmetics bottle", ("serum", "lotion")),
)
ATTRIBUTES = (
    ("red", "black", "white", "blue", "pink", "green", "grey", "yellow", "brown", "purple"),
    ("cotton", "leather", "wool", "plastic", "metal", "wooden", "silk", "denim", "glass", "canvas"),
    ("women", "men", "kids", "vintage", "korean", "casual", "summer", "winter", "slim", "cute"),
)
FILLERS = ("new", "fashion", "2020", "style", "hot", "sale", "genuine", "quality")


@dataclass(frozen=True)
class _Preset:
    feature_dim: int
    n_classes: int
    train_queries: int
    valid_queries: int
    test_queries: int
    candidates: tuple[int, int] = (25, 35)  # per valid/test query, inclusive
    answers: int = 5
    hard: tuple[int, int] = (6, 10)  # same class, other attributes
    synonym_rate: float = 0.3  # query noun not the label name
    second_object_rate: float = 0.3  # "... with <noun>": answers hold that object's box too
    missed_label_rate: float = 0.1  # an answer's main box labelled "others" (detector miss)
    noise: float = 1.0
    attribute_weight: float = 0.8


PRESETS = {
    "test": _Preset(feature_dim=32, n_classes=12, train_queries=150, valid_queries=24, test_queries=12),
    # noise 2.0: a ridge map from query words to box features reaches valid NDCG@5 ~0.81 here (1.0: ~0.97),
    # leaving trained models room to differ
    "demo": _Preset(feature_dim=64, n_classes=len(CLASSES), train_queries=4000, valid_queries=500, test_queries=300,
                    noise=2.0),
}
PRESET_STREAM = {"test": 0, "demo": 1}  # fixed per preset: adding one never changes another's data


@dataclass(frozen=True)
class _Spec:
    """What a product (or a query) is: class, one attribute per type or -1, an optional second object."""

    cls: int
    attrs: tuple[int, ...]
    second: int = -1


class _World:
    """Prototypes and the id / text draws for one data set."""

    def __init__(self, rng: np.random.Generator, cfg: _Preset):
        self.rng, self.cfg = rng, cfg
        d = cfg.feature_dim
        self.class_proto = rng.standard_normal((cfg.n_classes, d)).astype(np.float32)
        self.attr_proto = [rng.standard_normal((len(words), d)).astype(np.float32) for words in ATTRIBUTES]
        self.pids = iter(rng.permutation(np.arange(100_000, 100_000 + 40 * (cfg.train_queries * 3 + (
            cfg.valid_queries + 2 * cfg.test_queries) * cfg.candidates[1]))))
        self.next_qid = 0

    def spec(self, cls: int | None = None) -> _Spec:
        rng = self.rng
        cls = int(rng.integers(1, self.cfg.n_classes)) if cls is None else cls
        attrs = [int(rng.integers(len(w))) if rng.random() < 0.6 else -1 for w in ATTRIBUTES]
        if all(a < 0 for a in attrs):
            t = int(rng.integers(len(ATTRIBUTES)))
            attrs[t] = int(rng.integers(len(ATTRIBUTES[t])))
        second = int(rng.integers(1, self.cfg.n_classes)) if rng.random() < self.cfg.second_object_rate else -1
        return _Spec(cls, tuple(attrs), second if second != cls else -1)

    def other_attrs(self, spec: _Spec) -> _Spec:
        """Same class, at least one stated attribute changed (a hard negative)."""
        rng = self.rng
        attrs = list(spec.attrs)
        stated = [t for t, a in enumerate(attrs) if a >= 0]
        for t in stated:
            if t == stated[0] or rng.random() < 0.5:
                attrs[t] = int((attrs[t] + rng.integers(1, len(ATTRIBUTES[t]))) % len(ATTRIBUTES[t]))
        second = spec.second if rng.random() < 0.3 else -1
        return _Spec(spec.cls, tuple(attrs), second)

    def query(self, spec: _Spec) -> str:
        rng = self.rng
        words = [ATTRIBUTES[t][a] for t, a in enumerate(spec.attrs) if a >= 0]
        rng.shuffle(words)
        name, synonyms = CLASSES[spec.cls]
        noun = str(rng.choice(synonyms)) if synonyms and rng.random() < self.cfg.synonym_rate else name
        if rng.random() < 0.3:
            words.insert(0, str(rng.choice(FILLERS)))
        text = " ".join(words + [noun])
        if spec.second >= 0:
            text += " with " + CLASSES[spec.second][0]
        return text

    def product(self, spec: _Spec, answer: bool = False) -> dict:
        """One row's product fields: boxes, features and labels drawn for `spec`."""
        rng, cfg = self.rng, self.cfg
        main = self.class_proto[spec.cls] + cfg.attribute_weight * sum(
            (self.attr_proto[t][a] for t, a in enumerate(spec.attrs) if a >= 0), np.zeros(cfg.feature_dim, np.float32))
        main_label = 0 if answer and rng.random() < cfg.missed_label_rate else spec.cls
        labels, feats = [main_label], [main]
        if spec.second >= 0:
            labels.append(spec.second)
            feats.append(self.class_proto[spec.second])
        for _ in range(int(rng.integers(0, 3))):
            extra = 0 if rng.random() < 0.5 else int(rng.integers(1, cfg.n_classes))
            labels.append(extra)
            feats.append(self.class_proto[extra])
        n = len(labels)
        order = rng.permutation(n)
        features = (np.stack(feats) + cfg.noise * rng.standard_normal((n, cfg.feature_dim))).astype(np.float32)[order]
        h, w = int(rng.integers(300, 801)), int(rng.integers(300, 801))
        y = np.sort(rng.uniform(0, h, (n, 2)), axis=1)
        x = np.sort(rng.uniform(0, w, (n, 2)), axis=1)
        boxes = np.column_stack([y[:, 0], x[:, 0], y[:, 1], x[:, 1]]).astype(np.float32)
        return {"product_id": int(next(self.pids)), "image_h": h, "image_w": w, "num_boxes": n,
                "boxes": _b64(boxes), "features": _b64(features), "class_labels": _b64(np.asarray(labels, np.int64)[order])}

    def qid(self) -> int:
        self.next_qid += 1
        return self.next_qid


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _train_rows(world: _World) -> list[dict]:
    rows = []
    for _ in range(world.cfg.train_queries):
        spec = world.spec()
        text, qid = world.query(spec), world.qid()
        for _ in range(int(world.rng.integers(1, 4))):
            rows.append({**world.product(spec, answer=True), "query": text, "query_id": qid})
    return rows


def _candidate_rows(world: _World, n_queries: int) -> tuple[list[dict], dict[str, list[int]]]:
    """Each query's candidates in shuffled order (answers, hard negatives, others) and the answer file."""
    rng, cfg = world.rng, world.cfg
    rows, answers = [], {}
    for _ in range(n_queries):
        spec = world.spec()
        text, qid = world.query(spec), world.qid()
        n = int(rng.integers(cfg.candidates[0], cfg.candidates[1] + 1))
        n_hard = int(rng.integers(cfg.hard[0], cfg.hard[1] + 1))
        products = [world.product(spec, answer=True) for _ in range(cfg.answers)]
        products += [world.product(world.other_attrs(spec)) for _ in range(n_hard)]
        while len(products) < n:
            other = world.spec()
            products.append(world.product(other if other.cls != spec.cls else world.spec(0)))
        answers[str(qid)] = [p["product_id"] for p in products[: cfg.answers]]
        for i in rng.permutation(len(products)):
            rows.append({**products[i], "query": text, "query_id": qid})
    return rows, answers


def _tsv(rows: list[dict]) -> str:
    return pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(sep="\t", index=False, quoting=csv.QUOTE_NONE,
                                                            lineterminator="\n")


def output_names() -> tuple[str, ...]:
    return ("train.tsv", "valid.tsv", "valid_answer.json", "testA.tsv", "testA_answer.json", "testB.tsv",
            "testB_answer.json", "multimodal_labels.txt", "synth_report.json")


def generate_kdd(out: Path, *, seed: int, preset: str, overwrite: bool = False) -> SynthReport:
    """Write train/valid/testA/testB .tsv, valid_answer.json (+ held-out testA/testB_answer.json),
    multimodal_labels.txt and synth_report.json into `out`. Deterministic per seed and preset."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; the kdd task offers {tuple(PRESETS)}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    out = Path(out)
    files = [out / name for name in output_names()]
    if not overwrite:
        for path in files:
            if path.exists():
                raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    cfg = PRESETS[preset]
    world = _World(np.random.default_rng(np.random.SeedSequence([int(seed), PRESET_STREAM[preset]])), cfg)
    train = _train_rows(world)
    splits = {name: _candidate_rows(world, n) for name, n in
              (("valid", cfg.valid_queries), ("testA", cfg.test_queries), ("testB", cfg.test_queries))}
    labels = "category_id\tcategory_name\n" + "".join(f"{i}\t{CLASSES[i][0]}\n" for i in range(cfg.n_classes))
    write_text(out / "multimodal_labels.txt", labels)
    write_text(out / "train.tsv", _tsv(train))
    counts = {"train_rows": len(train), "train_queries": cfg.train_queries, "classes": cfg.n_classes,
              "feature_dim": cfg.feature_dim}
    for name, (rows, answers) in splits.items():
        write_text(out / f"{name}.tsv", _tsv(rows))
        write_text(out / f"{name}_answer.json", json.dumps(answers, indent=1) + "\n")
        counts[f"{name}_rows"], counts[f"{name}_queries"] = len(rows), len(answers)
    write_json(out / "synth_report.json", {"task": "kdd", "preset": preset, "seed": seed,
                                           "feature_dim": cfg.feature_dim, "counts": counts, "preset_config": asdict(cfg)})
    return SynthReport(out=out, files=files, counts=counts)
