"""Saved KDD level-1 models: a trained kind's network through the package's one save format
(`saved_model`: ``model.safetensors`` + assets + the manifest ``kdd_model.json`` written last), with
its vocabulary (``vocab.json``), a text encoder it reads (``text/``, a Hugging Face folder) and the
hash of the train data it learnt from; read back by `kdd.rescore` to score without training."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ..errors import DataError
from ..config import from_dict
from ..io import file_sha256, read_json_object, write_json
from ..saved_model import WEIGHTS_FILE, load_weights, read_manifest, save_model
from .data import LABELS_FILE, locate
from .towers import WordVocab

MANIFEST = "kdd_model.json"
VOCAB_FILE = "vocab.json"
TEXT_FOLDER = "text"
_HASHES: dict[tuple, str] = {}  # in-process: one SHA-256 of a (path, size, mtime) per run, however many kinds save


@dataclass(frozen=True)
class KddModelConfig:
    """What rebuilds a trained kind's network: the config's method `name`, the `n_labels` box classes,
    the `feature_dim`, the method's `options` as configured (its kind is the manifest's `kind`)."""

    name: str
    n_labels: int
    feature_dim: int
    options: dict[str, Any] = field(default_factory=dict)


class SavedNet(nn.Module):
    """The adapter `saved_model.save_model` writes: the network (weights under ``net.``), `kind`,
    `config`, and the assets (the vocabulary, the text encoder)."""

    def __init__(self, net: nn.Module, kind: str, config: KddModelConfig, vocab: WordVocab, text=None) -> None:
        super().__init__()
        self.net, self.kind, self.config, self.vocab = net, kind, config, vocab
        object.__setattr__(self, "_text", text)  # not a submodule: its weights go to text/, not model.safetensors

    def save_assets(self, folder: Path) -> None:
        write_json(folder / VOCAB_FILE, {"tokens": list(self.vocab.tokens)})
        if self._text is not None:  # the HF backbone and tokenizer the sentence vectors come from
            self._text.backbone.save_pretrained(folder / TEXT_FOLDER)
            self._text.tokenizer.save_pretrained(folder / TEXT_FOLDER)


def train_hashes(data_dir) -> dict:
    """SHA-256 of the train data a trained kind learns from (train.tsv, multimodal_labels.txt), keyed by
    the path relative to `data_dir`; each file hashed once per process while unchanged."""
    data_dir = Path(data_dir)
    out = {}
    for name in ("train.tsv", LABELS_FILE):
        path = locate(data_dir, name)
        if path is None:
            continue
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _HASHES:
            _HASHES[key] = file_sha256(path)
        out[os.path.relpath(path, data_dir)] = _HASHES[key]
    return out


def save_trained(method, folder, net: nn.Module, vocab: WordVocab, text=None) -> list[str]:
    """Write `method`'s trained `net` (+ `vocab`, + the `text` SentenceFeatures it reads) into `folder`;
    the manifest records the config, the train data hash and the file list. Returns the files written."""
    folder = Path(folder)
    config = KddModelConfig(method.spec.name, method.n_labels, method.config.feature_dim, dict(method.spec.options))
    files = [WEIGHTS_FILE, VOCAB_FILE] + ([TEXT_FOLDER] if text is not None else [])
    save_model(SavedNet(net, method.kind, config, vocab, text), folder, MANIFEST,
               extra={"method": method.spec.name, "data": method.train_data, "files": files})
    return [MANIFEST] + files


def load_trained(method, folder, n_labels: int, build: Callable[[KddModelConfig, WordVocab, Path | None], nn.Module]):
    """(network, vocabulary) of a model `save_trained` wrote for `method`;
    `build(config, vocab, text_folder)` makes the untrained network the weights go into. DataError when
    the folder holds another kind, another method's options or another label count."""
    folder = Path(folder)
    meta = read_manifest(folder, MANIFEST, f"KDD {method.kind} model")
    config = from_dict(KddModelConfig, meta.get("config"), f"{folder / MANIFEST} config")
    wanted = {"kind": method.kind, "options": json.loads(json.dumps(dict(method.spec.options))), "n_labels": n_labels,
              "feature_dim": method.config.feature_dim}
    found = {"kind": meta["kind"], "options": config.options, "n_labels": config.n_labels,
             "feature_dim": config.feature_dim}
    differ = [k for k in wanted if wanted[k] != found[k]]
    if differ:
        raise DataError(f"{folder}: saved model does not fit method {method.spec.name!r}: "
                        + "; ".join(f"{k} {found[k]!r} saved, {wanted[k]!r} now" for k in differ))
    tokens = read_json_object(folder / VOCAB_FILE, "vocabulary").get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise DataError(f"{folder / VOCAB_FILE}: 'tokens' must be a list of strings")
    vocab = WordVocab(tuple(tokens))
    text = folder / TEXT_FOLDER if TEXT_FOLDER in meta.get("files", []) else None
    shell = SavedNet(build(config, vocab, text), meta["kind"], config, vocab)
    load_weights(shell, folder)
    return shell.net, vocab
