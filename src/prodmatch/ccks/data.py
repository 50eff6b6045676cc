"""CCKS 2022 task 9.2 data: JSONL item/pair loaders with checks, and the stage's held-out split.

Files per split: ``item_{split}_info.jsonl`` (one item per line), ``item_{split}_pair.jsonl``
(``src_item_id, tgt_item_id[, item_label]``) and ``item_{split}_images/``. Loaders return flat
string frames and raise :class:`prodmatch.errors.DataError` naming the offending lines/ids.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pandas as pd

from ..data.images import enforce_image_policy
from ..errors import DataError, preview
from ..io import data_hashes

if TYPE_CHECKING:
    from .config import CcksRunConfig

log = logging.getLogger(__name__)

INFO_FIELDS = (
    "item_id",
    "industry_name",
    "cate_id",
    "cate_name",
    "cate_id_path",
    "cate_name_path",
    "item_image_name",
    "title",
    "item_pvs",
    "sku_pvs",
)
PAIR_FIELDS = ("src_item_id", "tgt_item_id", "item_label")


def read_ccks_items(path: str | os.PathLike) -> pd.DataFrame:
    """Load ``item_*_info.jsonl`` as a flat frame of strings, one row per item.

    Every field of :data:`INFO_FIELDS` is a column (missing, null -> "", an integer -> its digits;
    any other JSON type is a DataError naming the line and field); unknown extra fields are kept
    after them. ``item_id`` must be present, non-empty and unique.
    """
    frame, lines = _read_jsonl(path)
    frame = _as_text_columns(frame, INFO_FIELDS, lines, path)
    empty = frame["item_id"] == ""
    if empty.any():
        raise DataError(f"{path}: item_id missing or empty on line(s) {preview(lines[empty.to_numpy()].tolist())}")
    dup = frame["item_id"].duplicated()
    if dup.any():
        raise DataError(f"{path}: duplicate item_id(s) {preview(frame['item_id'][dup].unique().tolist())}")
    return frame


def read_ccks_pairs(path: str | os.PathLike, items: pd.DataFrame | None = None, *,
                    unique: bool = False) -> pd.DataFrame:
    """Load ``item_*_pair.jsonl``: string ``src_item_id``/``tgt_item_id``, int ``item_label`` if labelled.

    A file is labelled when any line has ``item_label``; then every line needs "0" or "1".
    With `items` given, every referenced id must be one of ``items.item_id``. A self pair
    (``src_item_id == tgt_item_id``) and a pair listed with both labels (either way round) are
    DataErrors; so is a repeated pair in an unlabelled file (its result would repeat the pair,
    which the task's scorer refuses) or, with `unique`, in any file (a truth file). A labelled
    file's same-label repeats are a warning.
    """
    frame, lines = _read_jsonl(path)
    has_label = "item_label" in frame.columns
    text_fields = PAIR_FIELDS[:2]
    labels = frame.pop("item_label") if has_label else None
    frame = _as_text_columns(frame, text_fields, lines, path)
    for col in text_fields:
        empty = frame[col] == ""
        if empty.any():
            raise DataError(f"{path}: {col} missing or empty on line(s) {preview(lines[empty.to_numpy()].tolist())}")
    if labels is not None:
        frame.insert(2, "item_label", _parse_labels(labels, lines, path))
    _check_pair_set(frame, lines, path, unique=unique or labels is None)
    if items is not None:
        _check_known_ids(frame, items, path)
    return frame


def check_ccks_images(items: pd.DataFrame, image_dir: str | os.PathLike, policy: str = "error",
                      decode: bool = False) -> list[str]:
    """Image names of `items` missing or unreadable in `image_dir`, under an image policy.

    Items with an empty ``item_image_name`` have no image by design and are not reported.
    See `prodmatch.data.images` for the policies; ``decode=True`` also catches truncated files.
    """
    names = [n for n in pd.unique(items["item_image_name"].fillna("").astype(str)) if n]
    return enforce_image_policy(names, image_dir, policy, what="CCKS items", decode=decode)


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(1-based line number, object) for each non-blank line; a line that is not a JSON object
    is a DataError naming it."""
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path}: line {number} is not UTF-8 (byte {raw[exc.start]:#04x} at column "
                                f"{exc.start + 1})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number} is not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}: line {number} is not a JSON object")
            yield number, obj


def _read_jsonl(path: str | os.PathLike) -> tuple[pd.DataFrame, "pd.Index"]:
    """Parse a JSONL file into a frame (object dtype) plus each row's 1-based line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    records, line_numbers = [], []
    for number, obj in iter_jsonl(path):
        records.append(obj)
        line_numbers.append(number)
    if not records:
        raise DataError(f"{path}: file is empty")
    # dtype=object keeps ints as ints (no 123 -> 123.0 through a float column with gaps)
    return pd.DataFrame(records, dtype=object), pd.Index(line_numbers)


def _json_type(value) -> str | None:
    """None for a value a text field takes (a string, an integer, null / absent), else its JSON type."""
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else f"the number {value!r}"  # NaN: pandas' mark of an absent field
    if isinstance(value, bool):
        return "true" if value else "false"
    return {dict: "a JSON object", list: "a JSON array"}.get(type(value), type(value).__name__)


def _as_text_columns(frame: pd.DataFrame, fields, lines: "pd.Index", path) -> pd.DataFrame:
    """Ensure `fields` exist (first, in order) as stripped strings; null/absent -> "", an integer -> its
    digits; any other JSON type (object, array, true/false, a fraction) is a DataError naming the file,
    the field and its lines, never the value's Python repr."""
    frame = frame.reindex(columns=list(fields) + [c for c in frame.columns if c not in fields])
    for col in fields:
        kinds = frame[col].map(_json_type)
        bad = kinds.notna().to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: line {lines[first]}: {col} must be a string, got {kinds.iloc[first]}"
                            f" ({int(bad.sum())} such line(s): {preview(lines[bad].tolist())})")
        frame[col] = frame[col].where(frame[col].notna(), "").astype(str).str.strip()
    return frame.reset_index(drop=True)


def _shown_pairs(frame: pd.DataFrame, mask: np.ndarray, lines: "pd.Index", limit: int = 3) -> str:
    """The first few pairs under `mask` with their lines, for an error message."""
    rows = np.flatnonzero(mask)
    shown = [f"line {lines[i]} ({frame['src_item_id'].iloc[i]}, {frame['tgt_item_id'].iloc[i]})"
             for i in rows[:limit]]
    return "; ".join(shown) + (f" (+{len(rows) - limit} more)" if len(rows) > limit else "")


def _check_pair_set(frame: pd.DataFrame, lines: "pd.Index", path, *, unique: bool) -> None:
    """Self pairs and pairs listed with both labels (either way round) are DataErrors; repeated pairs too
    when `unique`, else a warning."""
    src, tgt = frame["src_item_id"], frame["tgt_item_id"]
    self_pairs = (src == tgt).to_numpy()
    if self_pairs.any():
        raise DataError(f"{path}: {int(self_pairs.sum())} self pair(s) (src_item_id == tgt_item_id): "
                        f"{_shown_pairs(frame, self_pairs, lines)}")
    if "item_label" in frame.columns:
        ordered = src <= tgt  # either way round is one pair
        key = [src.where(ordered, tgt), tgt.where(ordered, src)]
        both = (frame["item_label"].groupby(key).transform("nunique") > 1).to_numpy()
        if both.any():
            n_pairs = len(pd.MultiIndex.from_arrays([k[both] for k in key]).unique())
            raise DataError(f"{path}: {n_pairs} pair(s) listed with both labels 0 and 1: "
                            f"{_shown_pairs(frame, both, lines, limit=4)}")
    repeated = frame.duplicated(["src_item_id", "tgt_item_id"]).to_numpy()
    if repeated.any():
        message = (f"{path}: {int(repeated.sum())} repeated pair(s) (listed more than once): "
                   f"{_shown_pairs(frame, repeated, lines)}")
        if unique:
            raise DataError(message)
        log.warning("%s", message)


def _parse_labels(labels: pd.Series, lines: pd.Index, path) -> pd.Series:
    """Labels "0"/"1" (or ints 0/1) -> int64; anything else is a DataError naming the line."""
    text = labels.where(labels.notna(), "<missing>").astype(str).str.strip()
    bad = ~text.isin(["0", "1"])
    if bad.any():
        shown = [f"line {n}: {v!r}" for n, v in zip(lines[bad.to_numpy()][:5].tolist(), text[bad][:5].tolist())]
        raise DataError(f"{path}: item_label must be \"0\" or \"1\"; {int(bad.sum())} bad: {'; '.join(shown)}")
    return text.astype("int64").reset_index(drop=True)


def _check_known_ids(pairs: pd.DataFrame, items: pd.DataFrame, path) -> None:
    """Every pair id must be an item id of `items`."""
    ids = pd.concat([pairs["src_item_id"], pairs["tgt_item_id"]], ignore_index=True)
    unknown = ids[~ids.isin(items["item_id"].astype(str))]
    if len(unknown):
        names = pd.unique(unknown).tolist()
        raise DataError(f"{path}: {len(names)} item id(s) not in the item file: {preview(names)}")


FILES = {"train_info": "item_train_info.jsonl", "valid_info": "item_valid_info.jsonl",
         "train_pairs": "item_train_pair.jsonl", "valid_pairs": "item_valid_pair.jsonl",
         "valid_truth": "item_valid_pair_truth.jsonl"}

CCKS_SPLITS = ("held-out", "valid")  # what the stage calls its choosing and its scored pairs, per protocol
BENCHMARK_SPLITS = ("valid", "test")


@dataclass
class CcksData:
    """Pair frames (``pair_frame``) of the training, held-out (choosing) and valid (scored) pairs, plus
    masks. `valid` carries no labels; `y_valid` holds the truth's (None without it). `split_names` say
    what the protocol calls the held-out and the scored pairs (a benchmark's own valid and test
    splits); `lines` are the scored pairs' file lines (benchmarks); `hashes` the files read."""

    items: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame
    valid: pd.DataFrame
    y_valid: np.ndarray | None
    unseen_holdout: np.ndarray
    unseen_valid: np.ndarray
    pseudo_unseen: list[str]
    folder: Path
    seed: int
    split_names: tuple[str, str] = CCKS_SPLITS
    lines: np.ndarray | None = None
    hashes: dict = field(default_factory=dict)
    facts: dict = field(default_factory=dict)

def read_items(data_dir: Path) -> pd.DataFrame:
    """Train + valid items of a CCKS folder, with ``image_path``: the item's image under
    ``item_{split}_images/`` ("" when the item names none)."""
    paths = {split: data_dir / FILES[f"{split}_info"] for split in ("train", "valid")}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise DataError(f"{data_dir}: not a CCKS folder, missing {', '.join(missing)}")
    frames = []
    for split, path in paths.items():
        items = read_ccks_items(path)
        folder = data_dir / f"item_{split}_images"
        items["image_path"] = [str(folder / name) if name else "" for name in items["item_image_name"]]
        frames.append(items)
    return pd.concat(frames, ignore_index=True)

def read_valid(data_dir: Path, items: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray | None]:
    """(valid pairs without labels, their truth labels or None): item_valid_pair.jsonl, else the truth's pairs.
    Each file lists a pair once (a repeat is a DataError, before any member trains: the result file
    would repeat the pair, which the task's scorer refuses)."""
    pairs_path, truth_path = data_dir / FILES["valid_pairs"], data_dir / FILES["valid_truth"]
    if not pairs_path.is_file() and not truth_path.is_file():
        raise DataError(f"{data_dir}: no {pairs_path.name} (nor {truth_path.name}); nothing to predict")
    truth = read_ccks_pairs(truth_path, items, unique=True) if truth_path.is_file() else None
    valid = read_ccks_pairs(pairs_path, items, unique=True) if pairs_path.is_file() else truth
    valid = valid[["src_item_id", "tgt_item_id"]].reset_index(drop=True)
    if not len(valid):
        raise DataError(f"{data_dir}: the valid pair set is empty")
    return valid, None if truth is None else truth_labels(valid, truth, truth_path)

def truth_labels(valid: pd.DataFrame, truth: pd.DataFrame, where: Path) -> np.ndarray:
    """The truth's label of each valid pair; the truth must hold exactly the valid pairs."""
    if "item_label" not in truth.columns:
        raise DataError(f"{where}: no item_label; a truth file labels every pair")
    key = ["src_item_id", "tgt_item_id"]
    merged = valid.merge(truth[key + ["item_label"]].drop_duplicates(key), on=key, how="left")
    if merged["item_label"].isna().any() or len(truth) != len(valid):
        raise DataError(f"{where}: holds {len(truth)} pairs, {int(merged['item_label'].notna().sum())} of the "
                        f"{len(valid)} valid pairs; the truth must label exactly the valid pairs")
    return merged["item_label"].to_numpy(np.int64)

def _subsample(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    if n and len(frame) > n:
        frame = frame.iloc[np.sort(rng.choice(len(frame), n, replace=False))]
    return frame.reset_index(drop=True)

def item_disjoint_split(pairs: pd.DataFrame, share: float, seed: int, n_train: int = 0,
                        n_holdout: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training part, held-out part): a seeded `share` of the items is held out; held-out pairs join
    two held-out items, training pairs none, pairs across are dropped; then each part is subsampled
    to `n_train` / `n_holdout` pairs (0 = all). Also the protocol of bench/ccks_pairs.py."""
    rng = np.random.default_rng(seed)
    items = pd.unique(pd.concat([pairs["src_item_id"], pairs["tgt_item_id"]]))
    held = set(rng.permutation(items)[:int(round(share * len(items)))].tolist())
    src, tgt = pairs["src_item_id"].isin(held), pairs["tgt_item_id"].isin(held)
    return _subsample(pairs[~src & ~tgt], n_train, rng), _subsample(pairs[src & tgt], n_holdout, rng)

def holdout_split(pairs: pd.DataFrame, config: CcksRunConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stage's (training part, held-out part) of the train pairs (`item_disjoint_split`)."""
    return item_disjoint_split(pairs, config.holdout_items, config.seed, config.train_pairs, config.holdout_pairs)

def check_split(train: pd.DataFrame, holdout: pd.DataFrame, n_pairs: int, config: CcksRunConfig) -> None:
    """Both parts must be usable: training pairs, and held-out pairs of both labels."""
    where = f"{n_pairs} train pairs split with holdout_items={config.holdout_items}, seed {config.seed}"
    if not len(train):
        raise DataError(f"no training pairs left ({where}); lower holdout_items or add train pairs")
    labels = set(holdout["item_label"].tolist())
    if labels != {0, 1}:
        raise DataError(f"the held-out part has {len(holdout)} pairs with labels {sorted(labels)} ({where}); "
                        "thresholds need both labels: raise holdout_items or holdout_pairs")

def pseudo_unseen(holdout: pd.DataFrame, config: CcksRunConfig) -> list[str]:
    """A seeded share `unseen_share` of the held-out pairs' categories (at least one; none for share 0)."""
    cats = np.array(sorted(set(holdout["cate_a"]) | set(holdout["cate_b"])), dtype=object)
    if config.unseen_share == 0 or not len(cats):
        return []
    size = max(1, int(len(cats) * config.unseen_share))
    return sorted(np.random.default_rng(config.seed).choice(cats, size=size, replace=False).tolist())

def check_item_images(items: pd.DataFrame, policy: str) -> None:
    """The images the items name, checked per image folder under `policy` (``error``: a DataError
    listing missing / unreadable files; ``placeholder``: a warning, grey images are used)."""
    paths = items.loc[items["image_path"] != "", "image_path"].map(Path)
    for folder, group in paths.groupby(paths.map(lambda p: p.parent)):
        enforce_image_policy([p.name for p in group], folder, policy, what="CCKS items")


def load_data(data_dir, config: CcksRunConfig, folder: Path, *, needs_images: bool = False,
              train_size: str | None = None) -> CcksData:
    """Read a CCKS folder, split the train pairs and build the pair frames and unseen masks; with
    `needs_images` (a member reads them) the items' images are checked under ``config.image_policy``.
    A benchmark folder of the entity-matching field (`formats`) is read by `load_benchmark`."""
    from ..pairs.pvs import pair_frame
    from ..stack.ensemble import unseen_mask
    from .formats import detect_format

    data_dir = Path(data_dir)
    if detect_format(data_dir) is not None:
        if needs_images:
            raise DataError(f"{data_dir}: a benchmark folder has no images; drop the image-reading members")
        return load_benchmark(data_dir, config, folder, train_size)
    if train_size is not None:
        raise DataError(f"{data_dir}: --train-size is for the field's benchmark folders (Ditto / DeepMatcher), "
                        "not a CCKS folder")
    items = read_items(data_dir)
    if needs_images:
        check_item_images(items, config.image_policy)
    if not (data_dir / FILES["train_pairs"]).is_file():
        raise DataError(f"{data_dir}: no {FILES['train_pairs']}")
    train_all = read_ccks_pairs(data_dir / FILES["train_pairs"], items)
    valid, y_valid = read_valid(data_dir, items)
    train, holdout = holdout_split(train_all, config)
    check_split(train, holdout, len(train_all), config)
    train_f, hold_f, valid_f = (pair_frame(p, items) for p in (train, holdout, valid))
    cate = items.set_index("item_id")["cate_id"]
    seen = pd.unique(pd.concat([train_all["src_item_id"], train_all["tgt_item_id"]]).map(cate))
    unseen_valid = unseen_mask(valid_f["cate_a"], seen) | unseen_mask(valid_f["cate_b"], seen)
    pseudo = pseudo_unseen(hold_f, config)
    unseen_hold = (hold_f["cate_a"].isin(pseudo) | hold_f["cate_b"].isin(pseudo)).to_numpy()
    return CcksData(items, train_f, hold_f, valid_f, y_valid, unseen_hold, unseen_valid, pseudo, folder, config.seed,
                    hashes=ccks_hashes(data_dir))


def load_benchmark(data_dir: Path, config: CcksRunConfig, folder: Path, train_size: str | None) -> CcksData:
    """A benchmark folder under the field's protocol: members fit on its train split, everything is
    chosen on its valid split (the stage's held-out part), its test split is scored once (its labels
    go to the scorer only). No item hold-out and no unseen categories."""
    from ..io import file_sha256
    from ..pairs.pvs import pair_frame
    from .formats import read_benchmark

    bench = read_benchmark(data_dir, train_size)
    check_label_counts(bench.train, bench.files["train"], 3, "out-of-fold fits need 3 folds")
    check_label_counts(bench.valid, bench.files["valid"], config.select_folds,
                       f"the choice is cross-validated on select_folds={config.select_folds} folds of it")
    items = summarize_values(bench.items, config.summarize_words)
    train, hold, valid = (pair_frame(split.drop(columns="line"), items)
                          for split in (bench.train, bench.valid, bench.test))
    y_test = valid.pop("item_label").to_numpy(np.int64)
    no = np.zeros
    facts = {"format": bench.format, "train_size": bench.train_size, "repeats": bench.repeats,
             "warnings": bench.warnings, "items": len(items), "attributes": list(bench.attributes)}
    return CcksData(items, train, hold, valid, y_test, no(len(hold), bool), no(len(valid), bool), [], folder,
                    config.seed, BENCHMARK_SPLITS, bench.test["line"].to_numpy(np.int64),
                    {path.name: file_sha256(path) for path in bench.files.values()}, facts)


def check_label_counts(pairs: pd.DataFrame, path: Path, least: int, why: str) -> None:
    """DataError unless `pairs` hold at least `least` pairs of each label (checked before any training)."""
    counts = np.bincount(pairs["item_label"].to_numpy(np.int64), minlength=2)
    if counts.min() < least:
        raise DataError(f"{path}: {counts[1]} positive and {counts[0]} negative pairs; at least {least} of each are "
                        f"needed ({why})")


def summarize_values(items: pd.DataFrame, words: int) -> pd.DataFrame:
    """`items` with each pvs value longer than `words` words cut to its `words` highest-idf words, in
    their order (Ditto's summariser: the rare tokens, model numbers, survive a pair model's
    truncation); idf over the items' pvs texts. `words` 0 leaves them."""
    import math
    from collections import Counter

    from ..pairs.pvs import PVS_ENTRY_SEP, PVS_KV_SEP, parse_pvs

    if not words:
        return items
    parsed = [parse_pvs(text) for text in items["item_pvs"]]
    tokens = [{k: [v.split() for v in values] for k, values in pvs.items()} for pvs in parsed]
    df = Counter(w for pvs in tokens for values in pvs.values() for value in values for w in set(value))
    idf = {w: math.log(len(items) / n) for w, n in df.items()}

    def cut(value: list[str]) -> str:
        if len(value) <= words:
            return " ".join(value)
        keep = set(sorted(range(len(value)), key=lambda i: (-idf[value[i]], i))[:words])
        return " ".join(w for i, w in enumerate(value) if i in keep)

    text = [PVS_ENTRY_SEP.join(f"{k}{PVS_KV_SEP}{cut(v)}" for k, values in pvs.items() for v in values)
            for pvs in tokens]
    return items.assign(item_pvs=text)

def ccks_hashes(data_dir) -> dict:
    """SHA-256 of each CCKS file present in `data_dir`."""
    return data_hashes(data_dir, names=tuple(FILES.values()))
