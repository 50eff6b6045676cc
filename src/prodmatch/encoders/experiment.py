"""An encoder experiment: its typed config (encoder + training settings + folds), the Shopee folder it
reads and the group-disjoint fold assignment; shared by the train and embed-trained runs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..config import from_dict, load_config, read_yaml, to_dict
from ..errors import DataError
from .train import TrainConfig


@dataclass(frozen=True)
class ExperimentConfig:
    """One trainable model's OOF experiment: encoder settings, training settings, folds."""

    kind: str  # a registered encoder kind (`prodmatch.encoders.encoder_classes`): image, text, ...
    encoder: dict = field(default_factory=dict)  # validated by ENCODER_CONFIGS[kind]
    train: TrainConfig = field(default_factory=TrainConfig)
    n_folds: int = 5
    fold_seed: int = 0
    test: Literal["average", "fold"] = "average"
    test_fold: int = 0
    checkpoint: Literal["final", "best"] = "final"  # which fold model embeds: last epoch or best valid F1
    name: str | None = None  # store model name; default: the kind

    @property
    def model_name(self) -> str:
        return self.name or self.kind

    def encoder_config(self):
        """The typed encoder config (ENCODER_CONFIGS[kind]) of this experiment."""
        from . import encoder_class

        return load_config(dict(self.encoder), encoder_class(self.kind).config_class)


def load_experiment(source, **overrides) -> ExperimentConfig:
    """An ExperimentConfig from a YAML path, a shipped config name, a dict or an instance.

    The encoder section is validated against the kind's encoder config and stored completed with
    its defaults, so the recorded config is the full one. `overrides` replace top-level keys
    (``kind=...``) or, given as dicts, update the ``encoder`` / ``train`` sections.
    """
    if isinstance(source, ExperimentConfig):
        data = to_dict(source)
    else:
        data = dict(source) if isinstance(source, dict) else read_yaml(source)
    for key, value in overrides.items():
        if key in ("encoder", "train") and isinstance(value, dict):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    if "kind" not in data:
        raise DataError("experiment config: missing 'kind' (a registered encoder kind: image, text, ...)")
    config = from_dict(ExperimentConfig, data)
    enc = config.encoder_config()
    config = dataclasses.replace(config, encoder=to_dict(enc))
    if config.n_folds < 2:
        raise DataError(f"experiment config: n_folds must be >= 2, got {config.n_folds}")
    if not 0 <= config.test_fold < config.n_folds:
        raise DataError(f"experiment config: test_fold {config.test_fold} is not a fold of {config.n_folds}")
    return config


def parse_folds(folds, n_folds: int) -> list[int]:
    if folds in (None, "all"):
        return list(range(n_folds))
    if isinstance(folds, (int, np.integer)):
        folds = [int(folds)]
    chosen = sorted({int(k) for k in folds})
    bad = [k for k in chosen if not 0 <= k < n_folds]
    if bad:
        raise DataError(f"fold(s) {bad} out of range 0..{n_folds - 1}")
    return chosen


def default_image_policy(kind: str) -> str:
    from . import encoder_class

    return "placeholder" if encoder_class(kind).reads_images else "text-only"
