"""Tower pair models (image two-tower, TextCNN, multimodal): one training step, save/load round trip,
unique-item inference equal to the pair forward, and the TextCNN's character ids and pooling by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from prodmatch.ccks.data import read_items, read_ccks_pairs
from prodmatch.data.synth import generate
from prodmatch.backbones import tiny_text_model
from prodmatch.errors import DataError
from prodmatch.pairs.base import build_pair_model
from prodmatch.pairs.images import ImageCache
from prodmatch.pairs.inference import predict_pairs
from prodmatch.pairs.pair_train import PairTrainConfig, fit_pair_model, load_pair_model
from prodmatch.pairs.pvs import pair_frame
from prodmatch.pairs.towers import CharCnnBranch, TextCnnConfig

IMAGE = {"backbone": "test_resnet", "image_size": 32}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(pair frame with image paths of the synthetic test preset's train pairs, tiny BERT folder)."""
    root = tmp_path_factory.mktemp("towers")
    generate("ccks", root / "data", seed=0, preset="test")
    items = read_items(root / "data")
    pairs = read_ccks_pairs(root / "data" / "item_train_pair.jsonl", items)
    words = sorted({w for text in items["title"].tolist() for w in text.split()})
    return pair_frame(pairs, items), tiny_text_model(root / "bert", words)


def _config(kind: str, bert) -> dict:
    return {"image_tower": {"kind": "image_tower", "image": IMAGE},
            "textcnn": {"kind": "textcnn", "embed_dim": 16, "filters": 8},
            "multimodal": {"kind": "multimodal", "model": str(bert), "max_length": 32, "image": IMAGE,
                           "fusion_dim": 16, "dim": 8}}[kind]


@pytest.mark.parametrize("kind", ["image_tower", "textcnn", "multimodal"])
def test_tower_trains_a_step_and_round_trips(data, tmp_path, kind):
    frame, bert = data
    model = build_pair_model(_config(kind, bert))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = PairTrainConfig(epochs=1, batch_size=8, max_steps=1, progress=False, loss="bce", lr_head=1e-2)
    result = fit_pair_model(model, frame.iloc[:16], frame.iloc[16:32], config, tmp_path / "run")
    assert result.steps == 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    loaded = load_pair_model(result.best_dir)
    assert type(loaded) is type(model) and loaded.config == model.config
    valid = frame.iloc[16:32]
    np.testing.assert_allclose(predict_pairs(loaded, valid), predict_pairs(model, valid), rtol=1e-6)


@pytest.mark.parametrize("kind", ["image_tower", "multimodal"])
def test_unique_item_inference_equals_the_pair_forward(data, kind):
    frame, bert = data
    model = build_pair_model(_config(kind, bert)).eval()
    pairs = frame.iloc[:12]
    with torch.inference_mode():
        direct = model(model.encode(pairs)).prob.double().numpy()
        unique = model.predict_unique(pairs, batch_size=5)
    np.testing.assert_allclose(unique, direct, rtol=1e-5, atol=1e-7)


def test_image_models_need_image_paths_in_the_pair_frame(data):
    frame, bert = data
    model = build_pair_model(_config("image_tower", bert))
    with pytest.raises(DataError, match="image_a"):
        model.encode(frame.drop(columns=["image_a", "image_b"]).iloc[:4])


def test_missing_images_become_the_grey_placeholder(tmp_path):
    cache = ImageCache(8)
    batch = cache.batch(["", str(tmp_path / "nope.jpg")])
    assert batch.shape == (2, 3, 8, 8) and batch.dtype == torch.uint8
    assert int(batch.min()) == int(batch.max()) == 128
    assert cache.unreadable == {str(tmp_path / "nope.jpg")}


def test_textcnn_char_ids_and_masked_max_pooling():
    config = TextCnnConfig(buckets=11, embed_dim=1, filters=1, kernel_sizes=(2,), max_chars=3)
    branch = CharCnnBranch(config)
    ids = branch.char_ids(["ab", "", "abcd"])
    # 1 + code point mod 10: a=97 -> 8, b -> 9, c -> 10; cut at 3 chars; width >= the kernel (2)
    assert ids.tolist() == [[8, 9, 0], [0, 0, 0], [8, 9, 10]]
    with torch.no_grad():
        branch.embedding.weight.copy_(torch.arange(11, dtype=torch.float32).view(11, 1))
        branch.convs[0].weight.fill_(1.0)
        branch.convs[0].bias.fill_(0.0)
        out = branch(ids)
    # windows (sum of 2 embeddings) that start on a character: [17, 9], none, [17, 19]
    assert out.squeeze(-1).tolist() == [17.0, 0.0, 19.0]


def test_pair_frame_carries_image_paths():
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["x", "y"], "image_path": ["/i/a.jpg", ""]})
    frame = pair_frame(pd.DataFrame({"src_item_id": ["a"], "tgt_item_id": ["b"]}), items)
    assert frame[["image_a", "image_b"]].iloc[0].tolist() == ["/i/a.jpg", ""]


def test_multimodal_cross_layout_puts_the_images_at_the_img_slots(data):
    """[CLS] [IMG] [SEP] title_a [SEP] pvs_a [BOS] [IMG] [SEP] title_b [SEP] pvs_b [SEP] on a hand-made pair."""
    from prodmatch.pairs.base import pack_layout, special_ids
    from prodmatch.pairs.mm_cross import IMAGE_LAYOUT

    _, bert = data
    model = build_pair_model({"kind": "multimodal_cross", "model": str(bert), "max_length": 32, "image": IMAGE})
    tok = model.tokenizer
    ids = special_ids(tok)
    batch = pack_layout(tok, IMAGE_LAYOUT, [["x"], ["y z"], [""], ["w"]], 32)
    word = {w: tok.convert_tokens_to_ids(w) for w in "xyzw"}
    # BERT has no BOS token: [BOS] is its [CLS]
    assert batch["input_ids"][0].tolist() == [ids["cls"], ids["img"], ids["sep"], word["x"], ids["sep"], word["y"],
                                              word["z"], ids["cls"], ids["img"], ids["sep"], ids["sep"], word["w"], ids["sep"]]
    assert batch["token_type_ids"][0].tolist() == [0] * 7 + [1] * 6
    assert batch["image_slots"].tolist() == [[1, 8]]


def test_multimodal_cross_reads_each_image_at_its_slot(data, tmp_path):
    frame, bert = data
    model = build_pair_model({"kind": "multimodal_cross", "model": str(bert), "max_length": 48, "image": IMAGE,
                              "dropout": 0.0}).eval()
    pairs = frame.iloc[:4]
    seen = {}
    model.backbone.register_forward_pre_hook(lambda mod, args, kwargs: seen.update(kwargs), with_kwargs=True)
    inputs = model.encode(pairs)
    with torch.inference_mode():
        model(inputs)
        images = model.image_proj(model.image(inputs["images"]))
        words = model.backbone.get_input_embeddings()(inputs["text"]["input_ids"])
    embeds, slots = seen["inputs_embeds"], inputs["text"]["image_slots"]
    rows = torch.arange(4)
    torch.testing.assert_close(embeds[rows, slots[:, 0]], images[:4])  # item a's image at the first [IMG]
    torch.testing.assert_close(embeds[rows, slots[:, 1]], images[4:])  # item b's at the second
    keep = torch.ones_like(inputs["text"]["input_ids"], dtype=torch.bool)
    keep[rows, slots[:, 0]] = keep[rows, slots[:, 1]] = False
    torch.testing.assert_close(embeds[keep], words[keep])  # every other position: its token's embedding
    config = PairTrainConfig(epochs=1, batch_size=8, max_steps=1, progress=False, lr_head=1e-2)
    fit_pair_model(model.train(), frame.iloc[:16], frame.iloc[16:24], config, tmp_path / "run")
    loaded = load_pair_model(tmp_path / "run" / "best")
    np.testing.assert_allclose(predict_pairs(loaded, frame.iloc[16:24]), predict_pairs(model, frame.iloc[16:24]),
                               rtol=1e-6)
