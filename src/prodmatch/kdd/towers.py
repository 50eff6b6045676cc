"""Tower layers for the KDD trained kinds (seed 001): a box tower (class-label embedding + projected
feature + projected position per box -> BiLSTM over the boxes -> masked mean/max pooling), a query
tower (sentence vector of a text encoder + BiLSTM over word embeddings -> projection), the word
vocabulary of the train queries, and the frozen text encoder's sentence vectors."""
from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..config import check_setting
from ..errors import DataError
from ..layers import masked_mean_max, mean_pool
from .boxes import POSITION_DIM, BoxBatch, ragged_positions
from .methods import words as query_words

PAD, UNK = 0, 1  # word ids: padding, a word not in the vocabulary


class BiLSTMPool(nn.Module):
    """(B, T, in_dim) steps + (B, T) mask -> BiLSTM (packed: padding never enters) -> sequence
    (B, T, 2 hidden) and its masked mean/max (B, 4 hidden)."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)

    def forward(self, steps: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(steps, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        sequence, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=steps.shape[1])
        sequence = sequence * mask.unsqueeze(-1).to(sequence.dtype)
        return sequence, masked_mean_max(sequence, mask)


def _sizes(config, where: str) -> None:
    """Every tower size >= 1, checked where the config loads (a 0-wide layer would drop its input
    silently); the range is SETTING_RANGES' one for sizes ("dim")."""
    for name, value in vars(config).items():
        check_setting("dim", value, f"{where} tower {name}")


@dataclass(frozen=True)
class BoxTowerConfig:
    """Box tower sizes: label embedding, feature and position projections, LSTM hidden, output dim."""

    label_dim: int = 32
    feature_proj: int = 128
    position_proj: int = 16
    hidden: int = 128
    dim: int = 256

    def __post_init__(self) -> None:
        _sizes(self, "box")


class BoxEncoder(nn.Module):
    """:class:`BoxBatch` (labels, features, positions, mask) -> (vector (B, dim), per-box sequence
    (B, M, 2 hidden)). Features are layer-normalised first (the real ones are unscaled CNN outputs)."""

    def __init__(self, n_labels: int, feature_dim: int, config: BoxTowerConfig = BoxTowerConfig()) -> None:
        super().__init__()
        self.config = config
        self.labels = nn.Embedding(n_labels, config.label_dim)
        self.features = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, config.feature_proj), nn.ReLU())
        self.positions = nn.Sequential(nn.Linear(POSITION_DIM, config.position_proj), nn.ReLU())
        self.rnn = BiLSTMPool(config.label_dim + config.feature_proj + config.position_proj, config.hidden)
        self.out = nn.Linear(4 * config.hidden, config.dim)

    def forward(self, batch: BoxBatch) -> tuple[Tensor, Tensor]:
        if batch.labels is None or batch.features is None or batch.positions is None:
            raise DataError("BoxEncoder needs the boxes, features and class_labels decoded")
        steps = torch.cat([self.labels(batch.labels), self.features(batch.features),
                           self.positions(batch.positions)], dim=-1)
        sequence, pooled = self.rnn(steps, batch.mask)
        return self.out(pooled), sequence


@dataclass(frozen=True)
class QueryTowerConfig:
    """Query tower sizes: word embedding, word LSTM hidden, output dim."""

    word_dim: int = 64
    hidden: int = 64
    dim: int = 256

    def __post_init__(self) -> None:
        _sizes(self, "query")


class QueryEncoder(nn.Module):
    """Word ids (B, W) (0 = padding) and a text encoder's sentence vector (B, text_dim), if any
    (`text_dim` 0: none) -> word BiLSTM mean/max, concatenated with the sentence vector -> (B, dim)."""

    def __init__(self, vocab_size: int, text_dim: int = 0, config: QueryTowerConfig = QueryTowerConfig()) -> None:
        super().__init__()
        self.config, self.text_dim = config, text_dim
        self.words = nn.Embedding(vocab_size, config.word_dim, padding_idx=PAD)
        self.rnn = BiLSTMPool(config.word_dim, config.hidden)
        self.text = nn.LayerNorm(text_dim) if text_dim else None
        self.out = nn.Linear(4 * config.hidden + text_dim, config.dim)

    def forward(self, word_ids: Tensor, text: Tensor | None = None) -> Tensor:
        _, pooled = self.rnn(self.words(word_ids), word_ids != PAD)
        if self.text is not None:
            if text is None:
                raise DataError("QueryEncoder built with text_dim > 0 needs the sentence vectors")
            pooled = torch.cat([pooled, self.text(text)], dim=1)
        return self.out(pooled)


@dataclass(frozen=True)
class WordVocab:
    """Query words (methods.words: lower-cased, plural-stemmed) -> ids 2.. (0 padding, 1 unknown)."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, texts, min_count: int = 1, max_size: int | None = None) -> "WordVocab":
        """The words of `texts` seen at least `min_count` times, most frequent first (ties: alphabetical)."""
        counts = Counter(w for text in texts for w in query_words(str(text)))
        ranked = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(tuple(ranked[:max_size]))

    def __len__(self) -> int:
        return len(self.tokens) + 2

    def encode(self, texts, max_words: int) -> np.ndarray:
        """(len(texts), max_words) int64 ids, each text's first `max_words` words, 0-padded."""
        index = {w: i + 2 for i, w in enumerate(self.tokens)}
        ids = [[index.get(w, UNK) for w in query_words(str(t))][:max_words] for t in texts]
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        out = np.zeros((len(ids), max_words), np.int64)
        out[ragged_positions(lengths)] = np.fromiter((i for row in ids for i in row), np.int64, int(lengths.sum()))
        return out


def text_model_folder(name: str, words=(), seed: int = 0) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """The model folder a `text_model` option names: ``default`` (the shipped all-MiniLM-L6-v2),
    ``tiny`` (a random tiny BERT written to a temp folder, returned to keep it alive) or a path."""
    from ..backbones import default_text_model, resolve_model_folder, tiny_text_model

    if name == "tiny":
        tmp = tempfile.TemporaryDirectory(prefix="kdd-tiny-text-")
        return tiny_text_model(tmp.name, words, seed=seed), tmp
    return resolve_model_folder(default_text_model() if name == "default" else name), None


class SentenceFeatures(nn.Module):
    """A local Hugging Face text model -> the mean over real tokens of hidden layer `layer`
    (seed 001: the second-to-last, -2) -> (B, hidden_size)."""

    def __init__(self, folder, *, layer: int = -2, max_length: int = 32) -> None:
        super().__init__()
        from ..backbones import load_hf_backbone

        self.backbone, self.tokenizer, hf_config = load_hf_backbone(Path(folder))
        self.dim, self.layer, self.max_length = int(hf_config.hidden_size), layer, max_length
        if not -hf_config.num_hidden_layers - 1 <= layer <= hf_config.num_hidden_layers:
            raise DataError(f"text layer {layer}: the model has {hf_config.num_hidden_layers} hidden layers")

    def tokens(self, texts) -> dict[str, Tensor]:
        return dict(self.tokenizer([str(t) for t in texts], padding="longest", truncation=True,
                                   max_length=self.max_length, return_tensors="pt"))

    def forward(self, tokens: dict[str, Tensor]) -> Tensor:
        hidden = self.backbone(**tokens, output_hidden_states=True).hidden_states[self.layer]
        return mean_pool(hidden, tokens["attention_mask"])

    @torch.no_grad()
    def encode(self, texts, batch_size: int = 256, device="cpu") -> Tensor:
        """(len(texts), dim) float32 vectors of `texts`, without gradients (a frozen encoder's
        vectors, computed once per distinct query)."""
        was = self.training
        self.eval()
        texts = list(texts)
        parts = [self({k: v.to(device) for k, v in self.tokens(texts[s:s + batch_size]).items()}).float().cpu()
                 for s in tqdm(range(0, len(texts), batch_size), desc="kdd query text", leave=False)]
        self.train(was)
        return torch.cat(parts) if parts else torch.zeros((0, self.dim))
