"""What seed 003's two match models share: options, the image-word core (box encoder + box and word
vectors in one space, the part pre-training trains), the train set with its word ids, and a trained
`Method` base whose `fit` pre-trains (optional), trains epoch by epoch on sampled negatives, and whose
`score` runs the model over a split's candidate rows in batches."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import DataError
from ..layers import device_for
from ..training.engine import Engine, StepPlan, deterministic
from ..training.optim import build_optimizer
from .boxes import BoxBatch, padded_boxes
from .data import BoxChunk, Candidates
from .methods import KddContext, Method, check_labels
from .negatives import NegativeSpec, build_samplers, draw_negatives
from .pretrain import PretrainOptions, pretrain
from .towers import PAD, BoxEncoder, BoxTowerConfig, WordVocab
from .saved import load_trained, save_trained, train_hashes
from .train_data import TrainSet, load_train

log = logging.getLogger(__name__)
DECODE = ("boxes", "features", "class_labels")


@dataclass(frozen=True)
class MatchOptions:
    """Shared by `word_match` and `sentence_match`: `boxes` tower sizes, `word_dim` of the word and
    box-match vectors, `max_words` per query, `max_boxes` per product, `min_count` of a vocabulary word,
    `max_rows` of train.tsv read (None: all; the real file has 3M), `epochs`, `batch_size` (positives per
    step), `lr` (Adam), `negatives` samplers, `pretrain` (seed 003's image-encoder pre-training),
    `device`, `seed` (None: the run's), `score_batch` candidate rows per scoring step."""

    boxes: BoxTowerConfig = BoxTowerConfig(hidden=64, dim=128)
    word_dim: int = 64
    max_words: int = 12
    max_boxes: int = 12
    min_count: int = 1
    max_rows: int | None = 200_000
    epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    negatives: tuple[NegativeSpec, ...] = (NegativeSpec("random"),)
    pretrain: PretrainOptions = PretrainOptions()
    device: str = "auto"
    seed: int | None = None
    score_batch: int = 1024

    def __post_init__(self) -> None:
        checks = (("word_dim", self.word_dim), ("max_words", self.max_words), ("max_boxes", self.max_boxes),
                  ("min_count", self.min_count), ("epochs", self.epochs), ("batch_size", self.batch_size),
                  ("score_batch", self.score_batch))
        problems = [f"{k} must be >= 1, got {v}" for k, v in checks if v < 1]
        if self.max_rows is not None and self.max_rows < 1:
            problems.append(f"max_rows must be >= 1 or null, got {self.max_rows}")
        if not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if not self.negatives:
            problems.append("negatives: at least one sampler")
        if problems:
            raise DataError("; ".join(problems))


class ImageWordCore(nn.Module):
    """Box encoder -> image vector (B, dim) and per-box vectors in the word space (B, M, word_dim);
    a word table (vocab, word_dim) in that same space (row 0 padding)."""

    def __init__(self, n_labels: int, feature_dim: int, n_words: int, options: MatchOptions) -> None:
        super().__init__()
        self.encoder = BoxEncoder(n_labels, feature_dim, options.boxes)
        self.box_proj = nn.Linear(2 * options.boxes.hidden, options.word_dim, bias=False)
        self.words = nn.Embedding(n_words, options.word_dim, padding_idx=PAD)
        nn.init.normal_(self.words.weight, std=options.word_dim ** -0.5)
        with torch.no_grad():
            self.words.weight[PAD].zero_()

    @property
    def image_dim(self) -> int:
        return self.encoder.config.dim

    def forward(self, batch: BoxBatch) -> tuple[Tensor, Tensor]:
        """(image vector (B, dim), box vectors (B, M, word_dim))."""
        image, sequence = self.encoder(batch)
        return image, self.box_proj(sequence)


@dataclass(frozen=True)
class MatchData:
    """The train rows, their vocabulary and each distinct query's word ids (queries x max_words)."""

    train: TrainSet
    vocab: WordVocab
    query_words: np.ndarray

    def row_words(self, rows: np.ndarray) -> Tensor:
        return torch.from_numpy(self.query_words[self.train.query_codes[rows]])


_PRETRAINED: dict[tuple, tuple[dict, dict]] = {}  # in-process: both kinds of one run share one pre-training
_KEEP_PRETRAINED = 2


def pretrained_core(method: "MatchMethod", data: MatchData, n_labels: int, context: KddContext) -> tuple[ImageWordCore, dict]:
    """A fresh seeded :class:`ImageWordCore`, pre-trained when ``options.pretrain.epochs`` > 0. The
    pre-trained weights are kept per (data, reader, vocabulary, core sizes, pre-training options, seed),
    so `word_match` and `sentence_match` with equal settings in one run pre-train once."""
    opts, cfg = method.options, method.config
    torch.manual_seed(method.seed)
    core = ImageWordCore(n_labels, cfg.feature_dim, len(data.vocab), opts)
    if opts.pretrain.epochs == 0:
        return core, {"epochs": 0}
    stat = data.train.path.stat()
    key = (str(data.train.path.resolve()), stat.st_size, stat.st_mtime_ns, cfg.feature_dim, opts.max_rows, opts.min_count,
           opts.max_words, opts.max_boxes, opts.boxes, opts.word_dim, opts.pretrain, method.seed, n_labels, str(method.device))
    if key not in _PRETRAINED:
        facts = pretrain(core, data, opts.pretrain, seed=method.seed, device=method.device,
                         boxes=lambda rows: method.boxes(data.train.chunk, rows), desc=f"kdd {method.spec.name} pretrain")
        while len(_PRETRAINED) >= _KEEP_PRETRAINED:
            _PRETRAINED.pop(next(iter(_PRETRAINED)))
        _PRETRAINED[key] = ({k: v.detach().cpu().clone() for k, v in core.state_dict().items()}, facts)
        return core, facts
    state, facts = _PRETRAINED[key]
    core.load_state_dict(state)
    return core, {**facts, "shared": True}


class MatchMethod(Method):
    """A trained seed-003 kind: `build` the model around an :class:`ImageWordCore`, `loss` of one batch
    of positive train rows and their negatives, `forward` scores of (word ids, boxes) pairs."""

    needs = DECODE
    options_class: ClassVar[type] = MatchOptions

    def build(self, core: ImageWordCore, n_words: int) -> nn.Module:
        raise NotImplementedError

    def loss(self, model: nn.Module, data: MatchData, pos: np.ndarray, neg: np.ndarray) -> Tensor:
        raise NotImplementedError

    def forward(self, model: nn.Module, words: Tensor, batch: BoxBatch) -> Tensor:
        raise NotImplementedError

    @property
    def seed(self) -> int:
        return self.config.seed if self.options.seed is None else self.options.seed

    def boxes(self, chunk: BoxChunk, rows: np.ndarray) -> BoxBatch:
        return padded_boxes(chunk, rows, self.options.max_boxes).to(self.device)

    def fit(self, context: KddContext) -> dict:
        opts, started = self.options, time.time()
        self.device = device_for(opts.device)
        train = load_train(context.data_dir, decode=DECODE, max_rows=opts.max_rows, feature_dim=self.config.feature_dim,
                           chunk_rows=self.config.chunk_rows)
        n_labels = self.n_labels = len(context.label_names)
        check_labels(train.chunk, n_labels, train.path)
        self.train_data = train_hashes(context.data_dir)
        vocab = WordVocab.build(train.queries, min_count=opts.min_count)
        data = MatchData(train, vocab, vocab.encode(train.queries, opts.max_words))
        self.vocab = vocab
        core, pre_facts = pretrained_core(self, data, n_labels, context)
        torch.manual_seed(self.seed)
        self.model = self.build(core, len(vocab)).to(self.device)
        steps = math.ceil(len(train) / opts.batch_size)
        engine = Engine(build_optimizer([("model", self.model.parameters(), opts.lr)], 0.0, kind="adam"),
                        StepPlan(total=steps * opts.epochs, schedule="constant"), self.device)
        samplers = build_samplers(opts.negatives, train)
        losses = []
        with deterministic(True, self.device):
            for epoch in range(opts.epochs):
                self.model.train()
                order = np.random.default_rng([self.seed, epoch]).permutation(len(train))
                negatives = draw_negatives(samplers, order, self.seed, epoch)
                batches = ((order[s:s + opts.batch_size], negatives[s:s + opts.batch_size])
                           for s in range(0, len(order), opts.batch_size))
                engine.run_epoch(batches, lambda b: self.loss(self.model, data, *b), steps,
                                 desc=f"kdd {self.spec.name} epoch {epoch + 1}", weight=lambda b: len(b[0]))
                losses.append(round(engine.history[-1], 5))
                log.info("kdd %s: epoch %d loss %.4f", self.spec.name, epoch + 1, losses[-1])
        self.model.eval()
        return {"train_rows": len(train), "train_queries": len(train.queries), "vocab": len(vocab),
                "pretrain": pre_facts, "epoch_loss": losses, "seconds": round(time.time() - started, 2)}

    def save(self, folder) -> list[str]:
        return save_trained(self, folder, self.model, self.vocab)

    def load(self, folder, context: KddContext) -> None:
        self.device = device_for(self.options.device)

        def build(config, vocab, _text):
            return self.build(ImageWordCore(config.n_labels, config.feature_dim, len(vocab), self.options), len(vocab))

        self.model, self.vocab = load_trained(self, folder, len(context.label_names), build)
        self.model.to(self.device)

    @torch.no_grad()
    def score(self, split: str, candidates: Candidates, context: KddContext) -> np.ndarray:
        if getattr(self, "model", None) is None:
            raise DataError(f"method {self.spec.name!r}: score before fit")
        check_labels(candidates.data, len(context.label_names), candidates.path)
        words = self.vocab.encode(candidates.queries, self.options.max_words)
        self.model.eval()
        n, step = len(candidates.codes), self.options.score_batch
        parts = [self.forward(self.model, torch.from_numpy(words[candidates.codes[s:s + step]]).to(self.device),
                              self.boxes(candidates.data, np.arange(s, min(s + step, n)))).float().cpu()
                 for s in range(0, n, step)]
        return torch.cat(parts).numpy().astype(np.float64) if parts else np.zeros(0)
