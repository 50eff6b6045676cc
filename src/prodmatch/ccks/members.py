"""CCKS members: each scores the held-out and valid pairs (pair models trained here, or unsupervised).

A new member kind is one ``@register_member(kind)`` class in this module or any imported one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import pandas as pd

from ..config import NoOptions, from_dict
from ..errors import DataError
from ..pairs._registry import PAIR_MODELS
from ._registry import MEMBERS, register_member
from .config import TINY_MODEL, CcksRunConfig, MemberConfig
from .data import CcksData

log = logging.getLogger(__name__)

@dataclass
class MemberScores:
    """A member's held-out and valid scores, and facts for run.json."""

    holdout: np.ndarray
    valid: np.ndarray
    info: dict = field(default_factory=dict)

class Member:
    """A member kind: options are checked at construction (before any work), `score` does the work."""

    kind: ClassVar[str] = ""
    trainable: ClassVar[bool] = False
    reads_images: ClassVar[bool] = False  # its pair frames need the items' images
    options_class: ClassVar[type] = NoOptions

    def __init__(self, spec: MemberConfig, config: CcksRunConfig) -> None:
        self.spec, self.config = spec, config
        if spec.train and not self.trainable:
            raise DataError(f"member {spec.name!r}: kind {self.kind!r} is not trained; drop its train section")
        self.options = self.parse_options(spec, config)

    def parse_options(self, spec: MemberConfig, config: CcksRunConfig):
        return from_dict(self.options_class, dict(spec.options), f"member {spec.name!r} options")

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        raise NotImplementedError

def _split_scores(scores: np.ndarray, n_holdout: int) -> MemberScores:
    return MemberScores(scores[:n_holdout], scores[n_holdout:])

def _scored_pairs(data: CcksData) -> pd.DataFrame:
    return pd.concat([data.holdout, data.valid], ignore_index=True)

def _side_texts(pairs: pd.DataFrame, field: str) -> tuple[pd.Series, pd.Series]:
    """Each side's ``title``, or its whole ``offer`` (title + its own pvs text)."""
    if field == "title":
        return pairs["title_a"], pairs["title_b"]
    return pairs["title_a"] + " " + pairs["own_pvs_a"], pairs["title_b"] + " " + pairs["own_pvs_b"]

@dataclass(frozen=True)
class TfidfCosineOptions:
    """``char`` (2-4-grams within words) or ``word`` TF-IDF of the ``title`` or of the whole ``offer``."""

    analyzer: Literal["char", "word"] = "char"
    field: Literal["title", "offer"] = "title"

@register_member("tfidf_cosine")
class TfidfCosine(Member):
    """TF-IDF cosine, fitted on the texts of the held-out and valid pairs (texts only)."""

    options_class = TfidfCosineOptions

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        from ..encoders.tfidf import TfidfConfig
        from ..pairs.unsupervised import text_cosine

        config = {"char": TfidfConfig.char(), "word": TfidfConfig(stop_words=None)}[self.options.analyzer]
        a, b = _side_texts(_scored_pairs(data), self.options.field)
        return _split_scores(text_cosine(a, b, config), len(data.holdout))

@dataclass(frozen=True)
class EncoderCosineOptions:
    """A frozen local text encoder (None: the shipped MiniLM), mean-pooled over `max_length` tokens
    of the ``title`` or the whole ``offer``."""

    model: str | None = None
    max_length: int = 128
    field: Literal["title", "offer"] = "offer"
    batch_size: int = 64

@register_member("encoder_cosine")
class EncoderCosine(Member):
    """Zero-shot cosine of a frozen text encoder's item vectors; each distinct text is encoded once."""

    options_class = EncoderCosineOptions

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        import torch

        from ..backbones import load_hf_backbone, resolve_model_folder
        from ..pairs.item_tables import embed_texts

        a, b = _side_texts(_scored_pairs(data), self.options.field)
        texts, codes = np.unique(np.r_[a.to_numpy(str), b.to_numpy(str)], return_inverse=True)
        model = tiny_backbone(data) if self.options.model == TINY_MODEL else resolve_model_folder(self.options.model)
        backbone, tokenizer, _ = load_hf_backbone(model, what="encoder_cosine")
        vectors = torch.nn.functional.normalize(embed_texts(backbone, tokenizer, texts.tolist(), self.options.max_length,
                                                            self.options.batch_size, progress), dim=1).numpy()
        va, vb = vectors[codes[:len(a)]], vectors[codes[len(a):]]
        return _split_scores(np.einsum("ij,ij->i", va, vb).astype(np.float64), len(data.holdout))

@dataclass(frozen=True)
class ComparisonsLgbmOptions:
    """The named pair comparisons (`stack.comparisons`; () = all) and the LightGBM settings; `folds`
    out-of-fold folds of the training pairs (connected pair components kept whole where possible)."""

    comparisons: tuple[str, ...] = ()
    folds: int = 5
    num_leaves: int = 31

    def __post_init__(self) -> None:
        from ..stack.comparisons import comparison_names

        comparison_names(self.comparisons or None)
    learning_rate: float = 0.05
    n_estimators: int = 2000
    min_child_samples: int = 20

@register_member("comparisons_lgbm")
class ComparisonsLgbm(Member):
    """LightGBM over the named pair comparisons, fitted on the training pairs (rounds from their
    out-of-fold fits, `stack.lgbm.fit_with_oof`); saved as LightGBM text in ``members/<name>/``."""

    options_class = ComparisonsLgbmOptions

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        from ..metrics import best_pair_threshold
        from ..stack.comparisons import build_comparisons
        from ..stack.lgbm import LgbmParams, fit_with_oof, save_booster
        from ..data.folds import pair_components
        from .select import selection_folds

        o = self.options
        comparisons = build_comparisons(o.comparisons or None, data.items)
        x = [pair_comparisons(data.items, frame, comparisons) for frame in (data.train, data.holdout, data.valid)]
        y = data.train["item_label"].to_numpy(np.int64)
        groups = pair_components(data.train["src_item_id"], data.train["tgt_item_id"])
        folds = selection_folds(y, groups, max(3, o.folds), self.config.seed)
        params = LgbmParams(num_leaves=o.num_leaves, learning_rate=o.learning_rate, n_estimators=o.n_estimators,
                            min_child_samples=o.min_child_samples, seed=self.config.seed)
        fit = fit_with_oof(x[0], y, folds.fold, params, progress=progress)
        folder.mkdir(parents=True, exist_ok=True)
        save_booster(fit.booster, folder / "model.txt")
        oof = best_pair_threshold(y, fit.prob)[1]
        info = {"train_oof_f1": round(float(oof.f1), 4), "rounds": fit.rounds, "features": len(fit.features),
                "oof_folds": folds.to_dict(), "top_features": fit.importance["feature"].head(10).tolist()}
        return MemberScores(fit.predict(x[1]), fit.predict(x[2]), info)

def pair_comparisons(items: pd.DataFrame, pairs: pd.DataFrame, comparisons) -> pd.DataFrame:
    """The comparisons' features of a pair frame's rows."""
    from ..stack.comparisons import compare_pairs

    return compare_pairs(items, pairs["src_item_id"].to_numpy(), pairs["tgt_item_id"].to_numpy(), comparisons)

@register_member("pvs_jaccard")
class PvsJaccard(Member):
    """Jaccard of the aligned pvs ``key:value`` entry sets."""

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        from ..pairs.unsupervised import pvs_jaccard

        pairs = _scored_pairs(data)
        return _split_scores(pvs_jaccard(pairs["pvs_a"], pairs["pvs_b"]), len(data.holdout))

def _moved_loss_keys(spec: MemberConfig, options: dict) -> dict:
    """`loss` / `margin` popped from a member's model options (where configs before the loss moved
    to the training settings put them), with a warning; `train` wins where both name one."""
    from ..pairs.pair_train import LEGACY_LOSS_KEYS

    moved = {key: options.pop(key) for key in LEGACY_LOSS_KEYS if key in options}
    if moved:
        log.warning("member %r: %s belong in `train:`, not `options:`; read as training settings",
                    spec.name, ", ".join(moved))
    return moved


class PairMember(Member):
    """A pair model of the member's kind, any registered pair model kind (`pairs._registry.PAIR_MODELS`;
    options: the config fields of that kind) trained with ``fit_pair_model`` on the training part;
    the held-out part picks checkpoint and threshold."""

    trainable = True

    def __init__(self, spec: MemberConfig, config: CcksRunConfig) -> None:
        self.kind = spec.kind  # one class serves every pair model kind
        super().__init__(spec, config)

    def parse_options(self, spec: MemberConfig, config: CcksRunConfig):
        from ..pairs.base import pair_model_class
        from ..pairs.losses import make_loss
        from ..pairs.pair_train import PairTrainConfig

        options = {"seed": config.seed, **spec.options}
        if options.setdefault("kind", self.kind) != self.kind:
            raise DataError(f"member {spec.name!r}: options.kind {options['kind']!r} contradicts kind {self.kind!r}")
        train = {"seed": config.seed, **_moved_loss_keys(spec, options), **spec.train}
        self.train_config = from_dict(PairTrainConfig, train, f"member {spec.name!r} train")
        model_config = from_dict(pair_model_class(self.kind).config_class, options, f"member {spec.name!r} options")
        try:
            make_loss(self.train_config.loss, self.train_config.margin).check(model_config)
        except DataError as err:
            raise DataError(f"member {spec.name!r}: {err}") from None
        return model_config

    @property
    def reads_images(self) -> bool:
        from ..pairs.base import pair_model_class

        return pair_model_class(self.kind).reads_images

    def score(self, data: CcksData, folder: Path, progress: bool) -> MemberScores:
        from ..layers import device_for
        from ..pairs.base import build_pair_model
        from ..pairs.pair_train import fit_pair_model, predict_pairs

        assets = tiny_backbone(data) if getattr(self.options, "model", None) == TINY_MODEL else None
        model = build_pair_model(self.options, assets=assets)
        model.bind_items(data.items, progress=progress)
        model = model.to(device_for(self.config.device))
        train = dataclasses.replace(self.train_config, progress=progress)
        fit = fit_pair_model(model, data.train, data.holdout, train, folder)
        scores = [predict_pairs(model, f, train.eval_batch_size, progress=progress) for f in (data.holdout, data.valid)]
        info = {"fit_f1": fit.best_f1, "fit_threshold": fit.best_threshold, "best_step": fit.best_step,
                "steps": fit.steps, "fit_seconds": round(fit.seconds, 2)}
        return MemberScores(scores[0], scores[1], info)

for _kind in PAIR_MODELS:  # the declared pair model kinds (and any registered before this import)
    register_member(_kind, PairMember, tag=False)

def build_members(config: CcksRunConfig) -> list[Member]:
    """Every member of the config, its options checked."""
    return [MEMBERS.get(spec.kind)(spec, config) for spec in config.members]

@dataclass
class ScoreBook:
    """The members' scores as they finish (held-out, valid, facts), so a failure later keeps them."""

    hold: dict = field(default_factory=dict)
    valid: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def add(self, name: str, result: MemberScores, info: dict) -> None:
        self.hold[name] = np.asarray(result.holdout, np.float64)
        self.valid[name] = np.asarray(result.valid, np.float64)
        self.info[name] = info

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return pd.DataFrame(self.hold), pd.DataFrame(self.valid)

def score_members(members: list[Member], data: CcksData, progress: bool,
                  reused: dict[str, MemberScores] | None = None, book: ScoreBook | None = None) -> ScoreBook:
    """Each member's held-out and valid scores and facts into `book` (a new one by default); members
    named in `reused` (an earlier run's scores, `ccks.reuse`) are not scored again."""
    from tqdm.auto import tqdm

    book, reused = book if book is not None else ScoreBook(), reused or {}
    for member in tqdm(members, desc="ccks members", disable=not progress):
        name, started = member.spec.name, time.time()
        if name in reused:
            log.info("ccks member %s: scores reused from %s", name, reused[name].info["reused_from"])
            book.add(name, reused[name], reused[name].info)
            continue
        result = member.score(data, data.folder / "members" / name, progress)
        book.add(name, result, {"kind": member.kind, **result.info, "seconds": round(time.time() - started, 2)})
        log.info("ccks member %s (%s): %.1f s", name, member.kind, book.info[name]["seconds"])
    return book

def tiny_backbone(data: CcksData) -> Path:
    """The tiny random BERT (``backbones.tiny_text_model``) with the data's ASCII words, built
    once per run under ``backbones/tiny-random``."""
    from ..backbones import tiny_text_model

    folder = data.folder / "backbones" / TINY_MODEL
    if not (folder / "config.json").is_file():
        texts = pd.concat([data.items[c] for c in ("title", "item_pvs", "sku_pvs") if c in data.items.columns])
        words = texts.fillna("").astype(str).str.split(r"[\s#:;]+", regex=True).explode().dropna().unique()
        with quiet_transformers():
            tiny_text_model(folder, sorted(words), seed=data.seed)
    return folder

@contextlib.contextmanager
def quiet_transformers():
    """No transformers progress bars (its one-shard "Writing model shards" bar) inside the block."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
