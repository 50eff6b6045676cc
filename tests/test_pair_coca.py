"""CoCa two-tower: one training step + save/load round trip, image tokens (B, H*W, hidden), the image
reaching the item vector through cross-attention, unique-item inference equal to the pair forward."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from prodmatch.errors import DataError
from prodmatch.pairs.base import build_pair_model
from prodmatch.pairs.coca import CocaConfig, CocaTower
from prodmatch.pairs.inference import predict_pairs
from prodmatch.pairs.pair_train import PairTrainConfig, fit_pair_model, load_pair_model

from .test_pair_towers import data  # noqa: F401  (fixture: synthetic CCKS pair frame, tiny BERT folder)

SIZE = 64  # test_resnet reduces by 32: a 2 x 2 map, 4 image tokens


def _coca(bert, **extra) -> CocaTower:
    config = {"kind": "coca", "model": str(bert), "max_length": 32, "fusion_dim": 16, "cross_layers": 1,
              "image": {"backbone": "test_resnet", "image_size": SIZE}, **extra}
    return build_pair_model(config)


def test_coca_trains_a_step_and_round_trips(data, tmp_path):
    frame, bert = data
    model = _coca(bert)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = PairTrainConfig(epochs=1, batch_size=8, max_steps=1, progress=False, loss="bce", lr_head=1e-2)
    result = fit_pair_model(model, frame.iloc[:16], frame.iloc[16:32], config, tmp_path / "run")
    assert result.steps == 1
    moved = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert any(k.startswith("decoder.") for k in moved) and any(k.startswith("image_tokens.") for k in moved)
    loaded = load_pair_model(result.best_dir)
    assert type(loaded) is CocaTower and loaded.config == model.config
    valid = frame.iloc[16:32]
    np.testing.assert_allclose(predict_pairs(loaded, valid), predict_pairs(model, valid), rtol=1e-6)


def test_image_tokens_are_the_flattened_feature_map_at_text_width(data):
    _, bert = data
    model = _coca(bert, image={"backbone": "test_resnet", "image_size": 96}).eval()  # 3 x 3 map
    images = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8)
    with torch.no_grad():
        features = model.image.features(images)
        tokens = model.image.tokens(images)
        projected = model.image_tokens(tokens)
    assert features.shape == (2, 96, 3, 3)
    assert tokens.shape == (2, 9, 96) and torch.equal(tokens[:, 1 * 3 + 2], features[:, :, 1, 2])  # row by row
    assert projected.shape == (2, 9, model.text.dim) == (2, 9, 32)
    assert model.image_tokens.position.shape == (1, 9, 32)


def test_the_image_reaches_the_item_vector(data):
    frame, bert = data
    model = _coca(bert).eval()
    inputs = model.encode(frame.iloc[:4])
    with torch.no_grad():
        first = model.embed_items(inputs)
        inputs["images"] = 255 - inputs["images"]
        second = model.embed_items(inputs)
    assert first.shape == (8, 16) and not torch.allclose(first, second)


def test_unique_item_inference_equals_the_pair_forward(data):
    frame, bert = data
    model = _coca(bert).eval()
    pairs = frame.iloc[:12]
    with torch.inference_mode():
        direct = model(model.encode(pairs)).prob.double().numpy()
        unique = model.predict_unique(pairs, batch_size=5)
    np.testing.assert_allclose(unique, direct, rtol=1e-5, atol=1e-7)


def test_coca_config_checks():
    assert CocaConfig().head == "similarity" and CocaConfig().cross_layers == 2
    with pytest.raises(DataError, match="cross_layers"):
        CocaConfig(cross_layers=0)


def test_heads_must_divide_the_text_width(data):
    _, bert = data
    with pytest.raises(DataError, match="divisible"):
        _coca(bert, cross_heads=3)
