"""Neural encoders: registry, forward shapes, datasets with bad images, save/load, offline weights."""
from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from prodmatch.data.shopee import read_shopee_csv
from prodmatch.data.synth import generate
from prodmatch.encoders import ENCODER_CONFIGS, create_encoder, load_encoder, save_encoder
from prodmatch.encoders.image import ImageEncoderConfig
from prodmatch.backbones import tiny_text_model
from prodmatch.encoders.text import TextEncoderConfig
from prodmatch.errors import DataError

IMAGE = ImageEncoderConfig(backbone="test_nfnet", image_size=64, dim=32)


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    """The 150-row synthetic Shopee train set with its drawn images."""
    out = tmp_path_factory.mktemp("synth")
    generate("shopee", out, seed=0, preset="test")
    return read_shopee_csv(out / "train.csv")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, frame):
    words = {w for title in frame["title"] for w in title.split()}
    return tiny_text_model(tmp_path_factory.mktemp("tiny_bert"), words)


@pytest.fixture(scope="module")
def minilm():
    return create_encoder("text", {"dim": 24, "max_length": 32}).eval()


@pytest.fixture
def broken_frame(shopee_folder):
    """6 rows; row 1's image is corrupt and row 4's is missing (loaded with placeholders)."""
    images = shopee_folder / "train_images"
    frame = read_shopee_csv(shopee_folder / "train.csv", image_policy="error")
    (images / frame["image"][1]).write_bytes(b"not a jpeg at all")
    (images / frame["image"][4]).unlink()
    return read_shopee_csv(shopee_folder / "train.csv", image_policy="placeholder")


def batch_of(encoder, dataset, n):
    return encoder.collate([dataset[i] for i in range(n)])


def trained_a_little(encoder, batch):
    """One train-mode forward so BatchNorm running stats differ from their initial values."""
    encoder.train()
    with torch.no_grad():
        encoder(batch)
    return encoder.eval()


# --- registry and configs ---------------------------------------------------------------------

def test_registry_lists_kinds_and_refuses_unknown():
    assert ENCODER_CONFIGS == {"image": ImageEncoderConfig, "text": TextEncoderConfig}
    with pytest.raises(DataError, match="unknown encoder kind 'audio'; known: image, text"):
        create_encoder("audio")


def test_config_errors_are_data_errors():
    with pytest.raises(DataError, match="did you mean 'backbone'"):
        create_encoder("image", {"backbon": "test_nfnet"})
    with pytest.raises(DataError, match="expected a ImageEncoderConfig, got TextEncoderConfig"):
        create_encoder("image", TextEncoderConfig())
    with pytest.raises(DataError, match="'sum' is not one of"):
        create_encoder("text", {"pooling": "sum"})


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(DataError, match=r"unknown timm backbone 'eca_nfnet_l9'; close names: .*eca_nfnet_l"):
        create_encoder("image", replace(IMAGE, backbone="eca_nfnet_l9"))


def test_package_import_stays_light():
    code = "import sys, prodmatch.encoders.tfidf, prodmatch.similarity; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- image encoder ----------------------------------------------------------------------------

@pytest.mark.parametrize("pooling", ["gem", "avg"])
def test_image_forward_shape_and_param_groups(frame, pooling):
    encoder = create_encoder("image", replace(IMAGE, pooling=pooling))
    assert (encoder.kind, encoder.dim) == ("image", 32)
    dataset = encoder.dataset(frame, train=True, labels=np.arange(len(frame)) % 7)
    images, labels = batch_of(encoder, dataset, 4)
    assert images.shape == (4, 3, 64, 64) and labels.tolist() == [0, 1, 2, 3]
    assert encoder(images).shape == (4, 32)
    groups = encoder.param_groups()
    assert set(groups) == {"backbone", "neck"}
    ids = [id(p) for group in groups.values() for p in group]
    assert len(ids) == len(set(ids)) == len(list(encoder.parameters()))
    assert any(p is encoder.neck.linear.weight for p in groups["neck"])


def test_image_eval_dataset_is_deterministic_and_unlabelled(frame):
    encoder = create_encoder("image", IMAGE)
    dataset = encoder.dataset(frame, train=False)
    assert len(dataset) == len(frame) and dataset.skipped == 0
    (a, label), (b, _) = dataset[3], dataset[3]
    assert label == -1 and torch.equal(a, b)


def test_bad_images_skipped_for_training(broken_frame, caplog):
    encoder = create_encoder("image", IMAGE)
    with caplog.at_level(logging.WARNING, logger="prodmatch.encoders.image"):
        dataset = encoder.dataset(broken_frame, train=True, labels=np.arange(6))
    warnings = [r for r in caplog.records if r.name == "prodmatch.encoders.image"]
    assert len(warnings) == 1 and "2 of 6 image(s)" in warnings[0].getMessage()
    assert dataset.skipped == 2 and len(dataset) == 4
    assert dataset.rows.tolist() == [0, 2, 3, 5]
    assert [dataset[i][1] for i in range(4)] == [0, 2, 3, 5]


def test_bad_images_become_placeholders_at_inference(broken_frame, caplog):
    encoder = create_encoder("image", IMAGE)
    with caplog.at_level(logging.WARNING, logger="prodmatch.encoders.image"):
        dataset = encoder.dataset(broken_frame.drop(columns="image_ok"), train=False)  # header check instead
    assert "grey placeholders" in caplog.text
    assert len(dataset) == 6 and dataset.rows.tolist() == list(range(6))
    grey = torch.tensor([(128 / 255 - m) / s for m, s in zip(encoder.mean, encoder.std)])
    for row in (1, 4):
        image, _ = dataset[row]
        assert torch.allclose(image, grey.view(3, 1, 1).expand(3, 64, 64), atol=1e-5)
    images, _ = encoder.collate([dataset[i] for i in range(6)])
    assert encoder.eval()(images).shape == (6, 32)


def test_image_that_breaks_after_the_check_still_gives_a_placeholder(shopee_folder, caplog):
    frame = read_shopee_csv(shopee_folder / "train.csv")
    encoder = create_encoder("image", IMAGE)
    dataset = encoder.dataset(frame, train=False)
    (shopee_folder / "train_images" / frame["image"][2]).unlink()
    with caplog.at_level(logging.WARNING, logger="prodmatch.encoders.image"):
        image, _ = dataset[2]
    assert image.shape == (3, 64, 64) and "unreadable image" in caplog.text


def test_image_dataset_input_errors(frame):
    encoder = create_encoder("image", IMAGE)
    with pytest.raises(DataError, match="no image_path column"):
        encoder.dataset(frame.drop(columns=["image_path", "image_ok"]), train=False)
    with pytest.raises(DataError, match=r"expected shape \(150,\)"):
        encoder.dataset(frame, train=True, labels=np.zeros(3, dtype=int))
    with pytest.raises(DataError, match="integer class indices"):
        encoder.dataset(frame, train=True, labels=np.zeros(150))
    with pytest.raises(DataError, match="nothing to train on"):
        encoder.dataset(frame.assign(image_ok=False), train=True)


# --- save / load and weights ------------------------------------------------------------------

def test_image_save_load_round_trip(frame, tmp_path):
    encoder = create_encoder("image", IMAGE)
    images, _ = batch_of(encoder, encoder.dataset(frame, train=False), 4)
    trained_a_little(encoder, images)
    folder = save_encoder(encoder, tmp_path / "enc")
    assert sorted(p.name for p in folder.iterdir()) == ["encoder.json", "model.safetensors"]
    loaded = load_encoder(folder)
    assert not loaded.training and loaded.config == IMAGE
    with torch.no_grad():
        assert torch.equal(encoder(images), loaded(images))
    # the safetensors file alone, given as weights of a fresh encoder (file or folder)
    for weights in (folder / "model.safetensors", folder):
        again = create_encoder("image", IMAGE, weights=weights).eval()
        with torch.no_grad():
            assert torch.equal(encoder(images), again(images))


def test_weights_of_another_dim_name_expected_and_found(tmp_path):
    folder = save_encoder(create_encoder("image", replace(IMAGE, dim=16)), tmp_path / "enc16")
    with pytest.raises(DataError) as err:
        create_encoder("image", IMAGE, weights=folder / "model.safetensors")
    message = str(err.value)
    assert "neck.linear.weight: expected (32, 192), found (16, 192)" in message
    assert "shape mismatch" in message and str(folder) in message


def test_weights_of_another_architecture_count_keys(tmp_path):
    folder = save_encoder(create_encoder("image", replace(IMAGE, backbone="resnet10t")), tmp_path / "resnet")
    with pytest.raises(DataError, match=r"missing key\(s\).*unexpected key\(s\)"):
        create_encoder("image", IMAGE, weights=folder)


def test_torch_checkpoint_wrappers_and_prefixes(frame, tmp_path):
    encoder = create_encoder("image", IMAGE).eval()
    state = {f"module.{k}": v for k, v in encoder.export_state().items()}
    torch.save({"epoch": 3, "state_dict": state}, tmp_path / "ckpt.pth")
    loaded = create_encoder("image", IMAGE, weights=tmp_path / "ckpt.pth").eval()
    images, _ = batch_of(encoder, encoder.dataset(frame, train=False), 2)
    with torch.no_grad():
        assert torch.equal(encoder(images), loaded(images))


class NotATensor:
    """A pickled object that weights_only loading must refuse."""


def test_torch_load_is_weights_only(tmp_path):
    state = create_encoder("image", IMAGE).export_state()
    torch.save({"state_dict": state, "extra": NotATensor()}, tmp_path / "unsafe.pth")
    with pytest.raises(DataError, match=r"weights_only=True"):
        create_encoder("image", IMAGE, weights=tmp_path / "unsafe.pth")


def test_unreadable_or_absent_weights(tmp_path):
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(DataError, match="not a readable safetensors file"):
        create_encoder("image", IMAGE, weights=tmp_path / "junk.safetensors")
    with pytest.raises(DataError, match="no such file or folder"):
        create_encoder("image", IMAGE, weights=tmp_path / "nope.safetensors")
    with pytest.raises(DataError, match="not a saved encoder"):
        load_encoder(tmp_path)


def test_backbone_weights_from_a_timm_checkpoint(tmp_path):
    source = create_encoder("image", IMAGE)
    state = {k: v for k, v in source.backbone.state_dict().items()}
    state["head.fc.weight"] = torch.zeros(1000, 192)  # a classifier the feature extractor lacks
    torch.save(state, tmp_path / "test_nfnet.pth")
    encoder = create_encoder("image", replace(IMAGE, weights=str(tmp_path / "test_nfnet.pth")))
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(encoder.backbone.state_dict()[key], value)
    with pytest.raises(DataError, match=r"backbone resnet10t.*missing key"):
        create_encoder("image", replace(IMAGE, backbone="resnet10t", weights=str(tmp_path / "test_nfnet.pth")))


# --- text encoder -----------------------------------------------------------------------------

@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_tiny_text_forward_and_padding_does_not_leak(frame, tiny_model, pooling):
    encoder = create_encoder("text", TextEncoderConfig(model=str(tiny_model), pooling=pooling, dim=16)).eval()
    dataset = encoder.dataset(frame.assign(title=frame["title"].where(frame.index != 1, "")), train=False)
    assert len(dataset) == 150 and dataset.skipped == 0 and dataset[1] == ("", -1)
    batch, labels = batch_of(encoder, dataset, 5)
    assert labels.tolist() == [-1] * 5 and batch["input_ids"].shape[1] <= 64
    with torch.no_grad():
        together = encoder(batch)
        alone = encoder(encoder.collate([dataset[1]])[0])
    assert together.shape == (5, 16)
    assert torch.allclose(together[1], alone[0], atol=1e-5)  # the empty title, padded in the batch


def test_text_truncates_at_max_length(tiny_model):
    encoder = create_encoder("text", {"model": str(tiny_model), "max_length": 12, "dim": 8})
    batch, _ = encoder.collate([("kopi " * 50, 0), ("teh", 1)])
    assert batch["input_ids"].shape == (2, 12)
    assert encoder(batch).shape == (2, 8)


def test_real_minilm_forward(frame, minilm):
    assert minilm.backbone.config.hidden_size == 384 and minilm.neck.linear.in_features == 384
    dataset = minilm.dataset(frame, train=True, labels=np.arange(150))
    batch, labels = batch_of(minilm, dataset, 6)
    with torch.no_grad():
        out = minilm(batch)
    assert out.shape == (6, 24) and torch.isfinite(out).all() and labels.tolist() == list(range(6))
    groups = minilm.param_groups()
    assert len(groups["backbone"]) + len(groups["neck"]) == len(list(minilm.parameters()))


def test_text_save_load_without_the_original_folder(frame, tmp_path, tiny_model):
    model = shutil.copytree(tiny_model, tmp_path / "model")
    encoder = create_encoder("text", {"model": str(model), "dim": 16, "pooling": "max"})
    batch, _ = batch_of(encoder, encoder.dataset(frame, train=False), 8)
    trained_a_little(encoder, batch)
    folder = save_encoder(encoder, tmp_path / "enc")
    save_encoder(encoder, folder)  # saving twice replaces the bundled tokenizer cleanly
    assert sorted(p.name for p in folder.iterdir()) == ["backbone", "encoder.json", "model.safetensors"]
    shutil.rmtree(model)
    loaded = load_encoder(folder)
    with torch.no_grad():
        assert torch.equal(encoder(batch), loaded(batch))


def test_missing_text_model_folder(tmp_path):
    with pytest.raises(DataError, match="no such local folder"):
        create_encoder("text", {"model": str(tmp_path / "absent")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no config.json"):
        create_encoder("text", {"model": str(tmp_path / "empty")})
    with pytest.raises(DataError, match="no title column"):
        create_encoder("text", {"model": None, "dim": 8}).dataset(
            pd.DataFrame({"x": [1]}), train=False)


def test_text_max_length_beyond_the_model(tiny_model):
    with pytest.raises(DataError, match="max_position_embeddings=128"):
        create_encoder("text", {"model": str(tiny_model), "max_length": 512})
