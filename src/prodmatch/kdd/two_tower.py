"""Seed 001's two-tower matcher (``two_tower``): a query tower (frozen text-encoder sentence vector +
word BiLSTM) and a box tower (label + feature + position BiLSTM) -> an MLP on [q, v, q*v, |q-v|] ->
a match logit; binary cross-entropy over each train positive and its sampled negatives, drawn anew
every epoch (kdd/negatives.py)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..errors import DataError
from ..layers import InteractionMlp, device_for
from ..training.engine import Engine, StepPlan, deterministic
from ..training.optim import build_optimizer
from ._registry import register_method
from .boxes import BoxBatch, padded_boxes
from .data import BoxChunk
from .methods import Method, check_labels
from .negatives import NegativeSpec, build_samplers, draw_negatives
from .towers import (BoxEncoder, BoxTowerConfig, QueryEncoder, QueryTowerConfig, SentenceFeatures, WordVocab,
                     text_model_folder)
from .saved import load_trained, save_trained, train_hashes
from .train_data import load_train

NEEDS = ("boxes", "features", "class_labels")


@dataclass(frozen=True)
class TwoTowerOptions:
    """Training: `epochs`, Adam `lr`, `batch_size` positives per step (each with its negatives),
    `negatives` (samplers and ratios), `max_rows` read from train.tsv (None: all; the real
    file has 3M), `seed` (None: the run's). Model: `box` / `query` tower sizes (equal `dim`),
    `hidden` and `dropout` of the MLP head, `max_boxes` / `max_words` per row / query. Text:
    `text_model` ``default`` (local all-MiniLM-L6-v2), ``tiny`` (random, tests), ``none`` or a
    folder; `text_layer` (-2: second-to-last, seed 001); `freeze_text` computes the sentence vectors
    once per distinct query (fast on CPU), else the encoder is fine-tuned with `text_lr`."""

    epochs: int = 4
    lr: float = 1e-3
    batch_size: int = 256
    negatives: tuple[NegativeSpec, ...] = (NegativeSpec("random", 1),)
    max_rows: int | None = 100_000
    seed: int | None = None
    box: BoxTowerConfig = field(default_factory=BoxTowerConfig)
    query: QueryTowerConfig = field(default_factory=QueryTowerConfig)
    hidden: int = 256
    dropout: float = 0.1
    max_boxes: int = 12
    max_words: int = 14
    text_model: str = "default"
    text_layer: int = -2
    freeze_text: bool = True
    text_lr: float = 2e-5
    score_batch: int = 2048
    device: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        for name in ("epochs", "batch_size", "hidden", "max_boxes", "max_words", "score_batch"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.text_lr <= 0:
            problems.append(f"lr and text_lr must be > 0, got {self.lr}, {self.text_lr}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.negatives:
            problems.append("negatives: at least one sampler")
        if self.max_rows is not None and self.max_rows < 1:
            problems.append(f"max_rows must be >= 1 or null, got {self.max_rows}")
        if self.box.dim != self.query.dim:
            problems.append(f"box.dim ({self.box.dim}) and query.dim ({self.query.dim}) must be equal")
        if problems:
            raise DataError("two_tower options: " + "; ".join(problems))


class TwoTowerNet(nn.Module):
    """(word ids (B, W), sentence vectors (B, T) or None, :class:`BoxBatch`) -> match logits (B,)."""

    def __init__(self, n_labels: int, feature_dim: int, vocab_size: int, text_dim: int, options: TwoTowerOptions):
        super().__init__()
        self.boxes = BoxEncoder(n_labels, feature_dim, options.box)
        self.query = QueryEncoder(vocab_size, text_dim, options.query)
        self.head = InteractionMlp(options.box.dim, options.hidden, options.dropout)

    def forward(self, word_ids: Tensor, text: Tensor | None, boxes: BoxBatch) -> Tensor:
        q = self.query(word_ids, text)
        v, _ = self.boxes(boxes)
        return self.head(q, v)


@register_method("two_tower")
class QueryBoxTwoTower(Method):
    """Seed 001's two-tower query / box matcher trained on train.tsv with sampled negatives."""

    needs = NEEDS
    options_class = TwoTowerOptions

    def fit(self, context):
        started = time.time()
        o = self.options
        seed = self.config.seed if o.seed is None else o.seed
        self.device = device_for(o.device)
        train = load_train(context.data_dir, decode=NEEDS, max_rows=o.max_rows,
                           feature_dim=self.config.feature_dim, chunk_rows=self.config.chunk_rows)
        n_labels = self.n_labels = len(context.label_names)
        check_labels(train.chunk, n_labels, train.path)
        self.train_data = train_hashes(context.data_dir)
        samplers = build_samplers(o.negatives, train)
        self.vocab = WordVocab.build(train.queries)
        self._keep = None
        self.text = None
        if o.text_model != "none":
            folder, self._keep = text_model_folder(o.text_model, self.vocab.tokens, seed)
            self.text = SentenceFeatures(folder, layer=o.text_layer).to(self.device)
            self.text.requires_grad_(not o.freeze_text)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = TwoTowerNet(n_labels, self.config.feature_dim, len(self.vocab),
                                   self.text.dim if self.text else 0, o).to(self.device)
            losses = self._train(train, samplers, seed)
        return {"train_rows": len(train), "train_queries": len(train.queries), "vocab": len(self.vocab),
                "negatives_per_positive": sum(r for _, r in samplers), "epoch_loss": losses,
                "seconds": round(time.time() - started, 2)}

    def _queries(self, texts) -> tuple[Tensor, Tensor | None]:
        """Word ids and (when frozen) sentence vectors of distinct query `texts`."""
        words = torch.from_numpy(self.vocab.encode(texts, self.options.max_words)).to(self.device)
        if self.text is None or not self.options.freeze_text:
            return words, None
        return words, self.text.encode(texts, device=self.device).to(self.device)

    def _logits(self, texts, words, vectors, codes: np.ndarray, chunk: BoxChunk, rows: np.ndarray) -> Tensor:
        """Logits of (query ``texts[codes[i]]``, product row ``rows[i]`` of `chunk`) pairs."""
        if self.text is not None and vectors is None:  # fine-tuned: each distinct query of the batch once
            distinct, inverse = np.unique(codes, return_inverse=True)
            tokens = {k: v.to(self.device) for k, v in self.text.tokens(texts[distinct]).items()}
            text = self.text(tokens)[torch.from_numpy(inverse).to(self.device)]
        else:
            text = None if vectors is None else vectors[torch.from_numpy(codes).to(self.device)]
        boxes = padded_boxes(chunk, rows, self.options.max_boxes).to(self.device)
        return self.net(words[torch.from_numpy(codes).to(self.device)], text, boxes)

    def _train(self, train, samplers, seed: int) -> list[float]:
        """Adam (net `lr`, a fine-tuned text encoder `text_lr`), no schedule, on the package's
        `training.Engine`; per epoch the positives in a seeded order, each with its drawn negatives."""
        o = self.options
        words, vectors = self._queries(train.queries)
        groups = [("net", self.net.parameters(), o.lr)]
        if self.text is not None and not o.freeze_text:
            groups.append(("text", self.text.parameters(), o.text_lr))
        steps = math.ceil(len(train) / o.batch_size)
        engine = Engine(build_optimizer(groups, 0.0, kind="adam"), StepPlan(total=steps * o.epochs, schedule="constant"),
                        self.device)
        loss_fn = nn.BCEWithLogitsLoss()
        self.net.train()
        losses = []

        def batch_loss(batch) -> Tensor:
            pos, neg = batch  # (b,) positives, (b, ratio) their negatives
            rows = np.concatenate([pos, neg.ravel()])
            codes = train.query_codes[np.concatenate([pos, np.repeat(pos, neg.shape[1])])]
            target = torch.zeros(len(rows), device=self.device)
            target[: len(pos)] = 1.0
            return loss_fn(self._logits(train.queries, words, vectors, codes, train.chunk, rows), target)

        with deterministic(True, self.device):
            for epoch in range(o.epochs):
                order = np.random.default_rng(np.random.SeedSequence([seed, epoch])).permutation(len(train))
                negatives = draw_negatives(samplers, order, seed, epoch)  # (n, ratio): the epoch's negatives
                batches = ((order[s:s + o.batch_size], negatives[s:s + o.batch_size])
                           for s in range(0, len(order), o.batch_size))
                engine.run_epoch(batches, batch_loss, steps, desc=f"two_tower {self.spec.name} epoch {epoch + 1}/{o.epochs}",
                                 weight=lambda b: len(b[0]) + b[1].size)
                losses.append(round(engine.history[-1], 5))
        return losses

    def save(self, folder) -> list[str]:
        return save_trained(self, folder, self.net, self.vocab, self.text)

    def load(self, folder, context) -> None:
        o = self.options
        self.device = device_for(o.device)

        def build(config, vocab, text_folder):
            self.text = None if text_folder is None else SentenceFeatures(text_folder, layer=o.text_layer)
            return TwoTowerNet(config.n_labels, config.feature_dim, len(vocab), self.text.dim if self.text else 0, o)

        self.net, self.vocab = load_trained(self, folder, len(context.label_names), build)
        self.net.to(self.device)
        if self.text is not None:
            self.text.to(self.device).requires_grad_(False)

    @torch.no_grad()
    def score(self, split, candidates, context):
        if not hasattr(self, "net"):
            raise RuntimeError("two_tower: score() before fit()")
        check_labels(candidates.data, len(context.label_names), candidates.path)
        self.net.eval()
        words, vectors = self._queries(candidates.queries)
        n = len(candidates.codes)
        out = np.empty(n, np.float32)
        for s in tqdm(range(0, n, self.options.score_batch), desc=f"two_tower {self.spec.name} {split}", leave=False):
            rows = np.arange(s, min(n, s + self.options.score_batch))
            out[rows] = self._logits(candidates.queries, words, vectors, candidates.codes[rows], candidates.data,
                                     rows).float().cpu().numpy()
        return out

