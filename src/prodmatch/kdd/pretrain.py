"""Image-encoder pre-training of seed 003 (KDD 2020, 10th place): from its box set alone an image must
tell which words its train queries use (multi-label BCE over the word vocabulary) and, optionally,
generate the query (a GRU caption decoder on the pooled image vector, teacher forcing). The trained
box encoder and word table then initialise `word_match` and `sentence_match`."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DataError
from ..training.engine import Engine, StepPlan, deterministic
from ..training.optim import build_optimizer


@dataclass(frozen=True)
class PretrainOptions:
    """`epochs` over the train rows (0: no pre-training); `caption`: train the query-generation head
    too, its loss weighted `caption_weight`; `lr`, `batch_size` of the pre-training Adam steps;
    `stop_words`: English stop words are no multi-label targets (as the seed)."""

    epochs: int = 0
    caption: bool = True
    caption_weight: float = 1.0
    lr: float = 5e-3
    batch_size: int = 256
    stop_words: bool = True

    def __post_init__(self) -> None:
        problems = [f"{k} must be {rule}" for k, bad, rule in (
            ("epochs", self.epochs < 0, ">= 0"), ("caption_weight", self.caption_weight < 0, ">= 0"),
            ("lr", not self.lr > 0, "> 0"), ("batch_size", self.batch_size < 1, ">= 1")) if bad]
        if problems:
            raise DataError("pretrain: " + "; ".join(problems))


def word_targets(token_ids: np.ndarray, n_words: int, ignore=(0,), rows: np.ndarray | None = None) -> sp.csr_matrix:
    """Multi-label targets: (queries, L) padded word ids -> a 0/1 (queries, n_words) CSR matrix, 1 where
    the query uses the word (repeats count once, ids in `ignore`, e.g. padding / unknown / stop words,
    never); `rows` picks (and repeats) query rows, e.g. each train row's query code."""
    ids = np.asarray(token_ids, np.int64)
    if ids.ndim != 2:
        raise ValueError(f"token_ids must be (queries, length), got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= n_words):
        raise ValueError(f"token ids must lie in 0..{n_words - 1}")
    keep = ~np.isin(ids, np.asarray(list(ignore), np.int64))
    q, _ = np.nonzero(keep)
    targets = sp.csr_matrix((np.ones(len(q), np.float32), (q, ids[keep])), shape=(len(ids), n_words))
    targets.sum_duplicates()
    targets.data[:] = 1.0
    return targets if rows is None else targets[np.asarray(rows, np.int64)]


def box_match(words: Tensor, boxes: Tensor, box_mask: Tensor) -> Tensor:
    """Word-vs-image match: each word's best box, ``max_m <word, box_m> / sqrt(D)`` over the real boxes.
    `words` (V, D) -> (B, V) (a shared vocabulary) or (B, L, D) -> (B, L) (each row's own words);
    `boxes` (B, M, D), `box_mask` (B, M) True = real box; a box-less row scores 0."""
    scale = 1.0 / math.sqrt(boxes.shape[-1])
    pattern = "vd,bmd->bvm" if words.dim() == 2 else "bld,bmd->blm"
    dots = torch.einsum(pattern, words, boxes) * scale
    dots = dots.masked_fill(~box_mask[:, None, :], float("-inf")).amax(-1)
    return torch.where(box_mask.any(1, keepdim=True), dots, torch.zeros_like(dots))


class MultiLabelHead(nn.Module):
    """Image -> logits over the word vocabulary: `box_match` of the word table against the boxes,
    plus a per-word bias (the word's prior frequency)."""

    def __init__(self, n_words: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(n_words))

    def forward(self, words: Tensor, boxes: Tensor, box_mask: Tensor) -> Tensor:
        return box_match(words, boxes, box_mask) + self.bias


def multilabel_loss(logits: Tensor, targets: Tensor, keep: Tensor | None = None) -> Tensor:
    """BCE summed over the vocabulary (columns where `keep` is False left out), mean over rows (the seed)."""
    loss = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if keep is not None:
        loss = loss * keep
    return loss.sum(1).mean()


class CaptionDecoder(nn.Module):
    """Seed 003's query generator: a GRU whose first hidden state is (a map of) the pooled image vector;
    step t reads the embedding of word t-1 (a learnt start vector at t=0) and predicts word t, or the
    end after the last word. Input and output word vectors are the shared word table (tied, as the
    seed's BERT table); the end token is one extra output row."""

    def __init__(self, image_dim: int, word_dim: int) -> None:
        super().__init__()
        self.init = nn.Linear(image_dim, word_dim)
        self.start = nn.Parameter(torch.zeros(word_dim))
        self.gru = nn.GRU(word_dim, word_dim, batch_first=True)
        self.out = nn.Linear(word_dim, word_dim)
        self.end = nn.Parameter(torch.randn(word_dim) * word_dim ** -0.5)

    def logits(self, image: Tensor, tokens: Tensor, words: Tensor) -> Tensor:
        """(B, T + 1, V + 1) next-word logits under teacher forcing; column V is the end token."""
        inputs = torch.cat([self.start.expand(len(tokens), 1, -1), F.embedding(tokens, words)], 1)
        hidden, _ = self.gru(inputs, torch.tanh(self.init(image))[None])
        return self.out(hidden) @ torch.cat([words, self.end[None]]).T

    def forward(self, image: Tensor, tokens: Tensor, token_mask: Tensor, words: Tensor) -> Tensor:
        """Mean cross-entropy per target token (the words, then the end after each row's last word)
        of `tokens` (B, T) with `token_mask` True on real words (left-aligned)."""
        n_words = words.shape[0]
        lengths = token_mask.sum(1)
        targets = torch.cat([torch.where(token_mask, tokens, -100), torch.full_like(tokens[:, :1], -100)], 1)
        targets[torch.arange(len(tokens), device=tokens.device), lengths] = n_words
        logits = self.logits(image, tokens, words)
        return F.cross_entropy(logits.reshape(-1, n_words + 1), targets.reshape(-1), ignore_index=-100)


# function words that name nothing in an image: never multi-label targets (the seed drops stop words)
STOP_WORDS = frozenset("a an the and or of for with without in on at to by from is are be this that it as "
                       "your my our you her his its".split())


class Pretrainer(nn.Module):
    """The core (box encoder, box and word vectors) with the pre-training heads on top."""

    def __init__(self, core: nn.Module, n_words: int, caption: bool) -> None:
        super().__init__()
        self.core = core
        self.multilabel = MultiLabelHead(n_words)
        self.caption = CaptionDecoder(core.image_dim, core.words.embedding_dim) if caption else None

    def losses(self, batch, targets: Tensor, keep: Tensor, tokens: Tensor) -> dict[str, Tensor]:
        """Multi-label BCE (and caption cross-entropy) of one batch of train rows."""
        image, boxes = self.core(batch)
        words = self.core.words.weight
        out = {"multilabel": multilabel_loss(self.multilabel(words, boxes, batch.mask), targets, keep)}
        if self.caption is not None:
            out["caption"] = self.caption(image, tokens, tokens != 0, words)
        return out


def pretrain(core: nn.Module, data, options: PretrainOptions, *, seed: int, boxes, device, desc: str = "pretrain") -> dict:
    """Train `core` in place for `options.epochs` on `data` (a `match_base.MatchData`); `boxes(rows)`
    gives the train rows' BoxBatch on `device`. Returns per-epoch mean losses."""
    from .towers import UNK

    vocab = data.vocab
    n_words = len(vocab)
    ignored = [0, UNK] + [i + 2 for i, w in enumerate(vocab.tokens) if options.stop_words and w in STOP_WORDS]
    targets = word_targets(data.query_words, n_words, ignore=ignored).astype(np.float32)
    keep = torch.ones(n_words, device=device)
    keep[torch.as_tensor(ignored)] = 0.0  # padding, unknown and stop words are no classes
    model = Pretrainer(core, n_words, options.caption).to(device)
    with torch.no_grad():  # the bias starts at each word's log-odds: the match term need only learn the image's part
        share = np.asarray(targets[data.train.query_codes].mean(0)).ravel().clip(1e-4, 1 - 1e-4)
        model.multilabel.bias.copy_(torch.from_numpy(np.log(share / (1 - share))).float())
    codes = data.train.query_codes
    steps = math.ceil(len(codes) / options.batch_size)
    engine = Engine(build_optimizer([("pretrain", model.parameters(), options.lr)], 0.0, kind="adam"),
                    StepPlan(total=steps * options.epochs, schedule="constant"), device)
    history: dict[str, list[float]] = {"multilabel": [], **({"caption": []} if options.caption else {})}
    with deterministic(True, device):
        for epoch in range(options.epochs):
            model.train()
            order = np.random.default_rng([seed, 7919, epoch]).permutation(len(codes))
            sums = dict.fromkeys(history, 0.0)

            def batch_loss(rows, sums=sums):
                batch_targets = torch.from_numpy(targets[codes[rows]].toarray()).to(device)
                tokens = torch.from_numpy(data.query_words[codes[rows]]).to(device)
                parts = model.losses(boxes(rows), batch_targets, keep, tokens)
                for k, v in parts.items():
                    sums[k] += v.item() * len(rows)
                return parts["multilabel"] + options.caption_weight * parts.get("caption", 0.0)

            batches = (order[s:s + options.batch_size] for s in range(0, len(order), options.batch_size))
            engine.run_epoch(batches, batch_loss, steps, desc=f"{desc} epoch {epoch + 1}")
            for k in history:
                history[k].append(round(sums[k] / len(order), 5))
    core.eval()
    return {"epochs": options.epochs, "caption": options.caption, "epoch_loss": history}
