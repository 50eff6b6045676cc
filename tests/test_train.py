"""The training loop (`prodmatch.encoders.train.fit`): schedule, determinism, checkpoints, resume,
bad input, and one training batch of each shipped Kaggle config at toy size."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from prodmatch.config import shipped_configs
from prodmatch.encoders import create_encoder, load_encoder
from prodmatch.encoders.base import Encoder, Neck, check_labels, register_encoder
from prodmatch.encoders.experiment import load_experiment
from prodmatch.encoders.inference import backbone_features, embed_frame
from prodmatch.encoders.train import (
    TrainConfig,
    encode_labels,
    fit,
    lr_factor,
    validation_f1,
)
from prodmatch.errors import DataError

FEATURES = 16


@pytest.fixture(autouse=True, scope="module")
def stub_encoder_kind():
    """The stub encoder kind exists only while this module runs (other tests list the registry)."""
    from prodmatch.encoders import _registry

    register_encoder("test-stub")(StubEncoder)
    yield
    _registry.ENCODERS.pop("test-stub", None)


@dataclass(frozen=True)
class StubConfig:
    dim: int = 8
    dropout: float = 0.1


class StubDataset(torch.utils.data.Dataset):
    def __init__(self, frame, labels):
        codes = [[(ord(ch) % 97) / 97.0 for ch in (t + " " * FEATURES)[:FEATURES]] for t in frame["title"]]
        self.x = torch.tensor(codes, dtype=torch.float32)
        self.labels = check_labels(labels, len(frame))
        self.rows, self.skipped = np.arange(len(frame)), 0

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.labels[i])


class StubEncoder(Encoder):
    """Titles -> 16 character codes -> MLP (with dropout: RNG matters) -> Neck: trains in milliseconds."""

    config_class = StubConfig

    def __init__(self, config=StubConfig(), *, pretrained: bool = True):
        super().__init__(config)
        self.backbone = nn.Sequential(nn.Linear(FEATURES, 32), nn.ReLU(), nn.Dropout(config.dropout))
        self.neck = Neck(32, config.dim)

    def features(self, x):
        return self.backbone(x)

    def dataset(self, frame, *, train, labels=None):
        return StubDataset(frame, labels)

    def collate(self, items):
        return torch.stack([x for x, _ in items]), torch.as_tensor([y for _, y in items], dtype=torch.long)


def frame_of(n_groups: int, per_group: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = ["botol", "kaos", "sepatu", "tas", "madu", "kopi", "sabun", "lampu", "kabel", "buku"]
    rows = []
    for g in range(n_groups):
        base = " ".join(rng.choice(words, 3))
        for j in range(per_group):
            rows.append({"posting_id": f"p{g}_{j}", "title": f"{base} {g} {'x' * j}", "label_group": 1000 + g})
    return pd.DataFrame(rows)


def stub(seed: int = 0) -> StubEncoder:
    torch.manual_seed(seed)
    return create_encoder("test-stub")


CFG = TrainConfig(epochs=3, batch_size=8, lr_backbone=1e-3, lr_head=1e-2, warmup_epochs=1.0, accumulate=2)


def weights(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lr_factor_warmup_then_cosine_to_floor():
    assert lr_factor(0, 100, 10, "cosine", 0.0) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine", 0.05) == pytest.approx(0.05)
    assert lr_factor(70, 100, 0, "constant", 0.0) == 1.0
    steps = [lr_factor(s, 50, 5, "cosine", 0.01) for s in range(5, 50)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))


def test_margin_warmup_and_labels():
    from prodmatch.encoders.train import ArcFaceConfig

    from prodmatch.encoders.heads import make_head

    head = make_head("arcface", 4, 3, TrainConfig(arcface=ArcFaceConfig(m=0.8, m_start=0.2, m_warmup=0.5)))
    for progress, margin in ((0.0, 0.2), (0.25, 0.5), (0.9, 0.8)):
        head.set_progress(progress)
        assert head.margin == pytest.approx(margin)
    plain = make_head("arcface", 4, 3, TrainConfig(arcface=ArcFaceConfig(m=0.5)))
    plain.set_progress(0.0)
    assert plain.margin == 0.5
    classes, codes = encode_labels([30, 10, 30, 20])
    assert classes.tolist() == [10, 20, 30] and codes.tolist() == [2, 0, 2, 1]


def test_fit_is_deterministic_and_writes_checkpoints(tmp_path):
    train, valid = frame_of(12), frame_of(4, seed=1)
    a, b = stub(), stub()
    ra = fit(a, train, valid, CFG, tmp_path / "a", progress=False)
    fit(b, train, valid, CFG, tmp_path / "b", progress=False)
    assert same(weights(a), weights(b))
    assert len(ra.history) == 3 and ra.n_classes == 12
    # 36 rows / 8 = 4 full batches (ragged last one dropped for BatchNorm), 2 per step
    assert ra.steps == 3 * 2
    assert [h["epoch"] for h in ra.history] == [1, 2, 3]
    assert all(0.0 <= h["f1"] <= 1.0 for h in ra.history)
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["best", "checkpoint-e003.safetensors", "checkpoint.json", "final", "history.json"]
    info = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    assert info["epoch"] == 3 and info["step"] == 6 and info["weights"] == "checkpoint-e003.safetensors"
    assert isinstance(info["rng"]["torch"], list) and info["best"]["epoch"] == ra.best_epoch
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "a" / info["weights"]))  # no pickle anywhere
    assert any(k.startswith("encoder.") for k in tensors) and "head.weight" in tensors
    assert any(k.startswith("optim.") and k.endswith("exp_avg") for k in tensors)
    final = load_encoder(tmp_path / "a" / "final")
    assert same({k: v for k, v in final.state_dict().items()}, weights(a))
    best = load_encoder(tmp_path / "a" / "best")
    assert best.dim == 8


def test_fit_with_another_seed_differs(tmp_path):
    train = frame_of(6)
    a, b = stub(), stub()
    fit(a, train, None, CFG, tmp_path / "a", progress=False)
    fit(b, train, None, TrainConfig(**{**CFG.__dict__, "seed": 1}), tmp_path / "b", progress=False)
    assert not same(weights(a), weights(b))


def test_resume_after_interruption_reaches_the_same_weights(tmp_path):
    train, valid = frame_of(12), frame_of(4, seed=1)
    reference = stub()
    fit(reference, train, valid, CFG, tmp_path / "ref", progress=False)

    broken = stub()
    calls = {"n": 0}
    forward = broken.forward

    def interrupt(x):
        calls["n"] += 1
        if calls["n"] == 7:  # epoch 1: 4 training + 1 validation batch; this is epoch 2's 2nd batch
            raise KeyboardInterrupt
        return forward(x)

    broken.forward = interrupt
    with pytest.raises(KeyboardInterrupt):
        fit(broken, train, valid, CFG, tmp_path / "run", progress=False)
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["epoch"] == 1
    with pytest.raises(FileExistsError, match="resume"):
        fit(stub(), train, valid, CFG, tmp_path / "run", progress=False)

    resumed = stub(seed=123)  # another init: everything comes from the checkpoint
    result = fit(resumed, train, valid, CFG, tmp_path / "run", progress=False, resume=True)
    assert same(weights(resumed), weights(reference))
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "run").glob("checkpoint-*")) == ["checkpoint-e003.safetensors"]
    with pytest.raises(DataError, match="same data and config"):
        fit(stub(), train, valid, TrainConfig(**{**CFG.__dict__, "epochs": 4}), tmp_path / "run",
            progress=False, resume=True)


def test_bad_training_input(tmp_path):
    one_group = frame_of(1, per_group=5)
    with pytest.raises(DataError, match="1 label group"):
        fit(stub(), one_group, None, CFG, tmp_path / "one", progress=False)
    singletons = frame_of(10, per_group=1)  # every class has one sample: fine
    singletons.loc[0, "title"] = ""  # and an empty title is fine too
    result = fit(stub(), singletons, frame_of(3, seed=2), CFG, tmp_path / "single", progress=False)
    assert result.n_classes == 10 and np.isfinite(result.history[-1]["loss"])
    with pytest.raises(DataError, match="label_group"):
        fit(stub(), singletons.drop(columns="label_group"), None, CFG, tmp_path / "nolabel", progress=False)
    with pytest.raises(DataError, match="batch_size"):
        fit(stub(), singletons, None, TrainConfig(batch_size=1), tmp_path / "bs", progress=False)


def test_embed_frame_and_validation_f1():
    enc = stub()
    frame = frame_of(5)
    emb = embed_frame(enc, frame, batch_size=4)
    assert emb.shape == (15, 8) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert enc.training  # mode restored
    perfect = np.repeat(np.eye(5, dtype=np.float32), 3, axis=0)
    scores = validation_f1(perfect, frame["label_group"].to_numpy())
    assert scores["f1"] == pytest.approx(1.0)


def test_tiny_text_model_trains_with_empty_titles(tmp_path):
    from prodmatch.backbones import tiny_text_model

    folder = tiny_text_model(tmp_path / "bert", words=["botol", "kaos"])
    train = frame_of(6)
    train.loc[[0, 4], "title"] = ""
    torch.manual_seed(0)
    enc = create_encoder("text", {"model": str(folder), "max_length": 16, "dim": 16})
    result = fit(enc, train, frame_of(3, seed=3), TrainConfig(epochs=1, batch_size=6), tmp_path / "out", progress=False)
    assert result.steps == 3 and np.isfinite(result.history[0]["loss"])
    again = load_encoder(tmp_path / "out" / "final")
    np.testing.assert_allclose(embed_frame(again, train), embed_frame(enc, train), atol=1e-6)


# ------------------------------------------------------------------------------- shipped configs

SHIPPED = ["tiny-image", "tiny-text", "minilm-cpu", "kaggle-image-nfnet-l1", "kaggle-text-xlmr"]


def test_every_shipped_experiment_config_loads():
    from prodmatch.config import read_yaml

    assert set(SHIPPED) <= set(shipped_configs())
    for name in shipped_configs():
        if read_yaml(name).get("kind") not in ("image", "text"):
            continue  # another stage's config (matcher, ...)
        config = load_experiment(name)
        assert config.encoder_config().dim >= 1
        assert config.train.lr_head > config.train.lr_backbone
    image = load_experiment("kaggle-image-nfnet-l1")
    assert image.encoder_config().backbone == "eca_nfnet_l1" and image.encoder_config().image_size == 512
    assert (image.train.arcface.m, image.train.arcface.m_start, image.train.arcface.s) == (0.8, 0.2, 30.0)
    assert image.encoder_config().weights.startswith("/kaggle/input/")
    text = load_experiment("kaggle-text-xlmr")
    assert "paraphrase-xlm-r-multilingual-v1" in text.encoder_config().model and text.train.arcface.m == 0.5
    with pytest.raises(DataError, match="unknown key"):
        load_experiment("tiny-image", train={"epoch": 3})
    with pytest.raises(DataError):
        load_experiment("tiny-image", encoder={"image_size": 2})


@pytest.fixture(scope="module")
def image_rows(tmp_path_factory):
    from prodmatch.data.shopee import read_shopee_csv
    from prodmatch.data.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate("shopee", out, seed=0, preset="test")
    frame = read_shopee_csv(out / "train.csv", image_policy="placeholder")
    top = frame["label_group"].value_counts().index[:6]
    return frame[frame["label_group"].isin(top)].reset_index(drop=True)


def test_kaggle_image_config_trains_one_batch(image_rows, tmp_path):
    """eca_nfnet_l1 (random weights: weights null) with the Kaggle settings, at 64 px, batch 2; no
    resume checkpoint (3 x 160 MB of weights + Adam moments) to keep the test to seconds."""
    config = load_experiment("kaggle-image-nfnet-l1", encoder={"weights": None, "image_size": 64},
                             train={"batch_size": 2, "epochs": 1, "max_steps_per_epoch": 1, "num_workers": 0,
                                    "save_checkpoints": False})
    torch.manual_seed(0)
    enc = create_encoder("image", config.encoder_config())
    assert enc.dim == 512
    groups = image_rows["label_group"].unique()
    train = image_rows[image_rows["label_group"].isin(groups[:4])].reset_index(drop=True)
    before = weights(enc)
    result = fit(enc, train, None, config.train, tmp_path / "nfnet", progress=False)
    assert result.steps == 1 and np.isfinite(result.history[0]["loss"])
    assert sorted(p.name for p in (tmp_path / "nfnet").iterdir()) == ["final", "history.json"]
    assert result.history[0]["margin"] == pytest.approx(0.2)  # the warm-up starts at m_start
    assert not same(before, weights(enc))


def test_kaggle_text_config_trains_one_batch(tmp_path):
    """The XLM-R config's settings on a tiny random XLM-RoBERTa (no XLM-R weights exist offline)."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from prodmatch.backbones import tiny_text_model

    folder = tiny_text_model(tmp_path / "xlmr", words=["botol", "kaos"])
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(str(folder), local_files_only=True))
    torch.manual_seed(0)
    XLMRobertaModel(XLMRobertaConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=80, pad_token_id=0)
                    ).save_pretrained(str(folder))
    config = load_experiment("kaggle-text-xlmr", encoder={"model": str(folder)},
                             train={"batch_size": 4, "epochs": 1, "max_steps_per_epoch": 1})
    enc = create_encoder("text", config.encoder_config())
    assert type(enc.backbone).__name__ == "XLMRobertaModel" and enc.dim == 768
    result = fit(enc, frame_of(4), frame_of(2, seed=5), config.train, tmp_path / "out", progress=False)
    assert result.steps == 1 and math.isfinite(result.history[0]["loss"])


# ------------------------------------------------------------------------------ frozen backbone

FROZEN = TrainConfig(epochs=4, batch_size=8, lr_head=1e-2, freeze_backbone=True, save_checkpoints=False)


def test_frozen_backbone_trains_only_the_neck_and_head(tmp_path):
    train, valid = frame_of(12), frame_of(4, seed=1)
    encoder = stub()
    before = weights(encoder)
    result = fit(encoder, train, valid, FROZEN, tmp_path / "f", progress=False)
    after = weights(encoder)
    backbone = [k for k in before if k.startswith("backbone.")]
    assert backbone and all(torch.equal(before[k], after[k]) for k in backbone)
    assert not torch.equal(before["neck.linear.weight"], after["neck.linear.weight"])
    assert len(result.history) == 4 and all(0.0 <= h["f1"] <= 1.0 for h in result.history)
    # the per-epoch validation scored the cached features: the same F1 as embedding the frame
    emb = embed_frame(encoder, valid, batch_size=5)
    assert validation_f1(emb, valid["label_group"].to_numpy())["f1"] == pytest.approx(result.history[-1]["f1"])


def test_neck_of_cached_features_equals_embedding_the_frame():
    from prodmatch.encoders.frozen import neck_embed

    encoder, frame = stub(), frame_of(5)
    features = backbone_features(encoder, frame, batch_size=4)
    assert features.shape == (15, 32)
    np.testing.assert_allclose(neck_embed(encoder, features, batch_size=7), embed_frame(encoder, frame), atol=1e-6)


def test_frozen_fit_with_given_features_equals_computing_them(tmp_path):
    from prodmatch.encoders.frozen import FrozenFeatures

    train, valid = frame_of(12), frame_of(4, seed=1)
    a, b = stub(), stub()
    fit(a, train, valid, FROZEN, tmp_path / "a", progress=False)
    given = FrozenFeatures(backbone_features(b, train), backbone_features(b, valid))
    fit(b, train, valid, FROZEN, tmp_path / "b", progress=False, features=given)
    assert same(weights(a), weights(b))
    with pytest.raises(DataError, match="36 training rows"):
        fit(stub(), train, valid, FROZEN, tmp_path / "c", progress=False,
            features=FrozenFeatures(given.train[:-1], given.valid))
    with pytest.raises(DataError, match="validation features"):
        fit(stub(), train, valid, FROZEN, tmp_path / "d", progress=False, features=FrozenFeatures(given.train))


def test_a_feature_cache_missing_a_file_is_recomputed(tmp_path):
    from prodmatch.encoders.frozen import cached_features

    encoder, frame = stub(), frame_of(4)
    first = cached_features(tmp_path / "f", encoder, {"train": frame})["train"]
    (tmp_path / "f" / "train.npy").unlink()
    again = cached_features(tmp_path / "f", encoder, {"train": frame})["train"]
    np.testing.assert_allclose(again, first)
    assert (tmp_path / "f" / "train.npy").is_file()
