"""KDD trained kinds (`prodmatch.kdd`): box padding, negative samplers, towers, the two_tower kind; seconds."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from prodmatch.config import load_config, read_yaml
from prodmatch.errors import DataError
from prodmatch.kdd import KddRunConfig, build_methods, kdd_run
from prodmatch.kdd.boxes import padded_boxes
from prodmatch.kdd.data import BoxChunk
from prodmatch.kdd.negatives import NegativeSpec, build_samplers, draw_negatives
from prodmatch.kdd.towers import BoxEncoder, QueryEncoder, WordVocab
from prodmatch.layers import masked_mean_max
from prodmatch.kdd.train_data import TrainSet, load_train

from .conftest import preset_folder

DIM = 32  # the test preset's feature dim


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return preset_folder(tmp_path_factory, "kdd", "kdd-towers")


@pytest.fixture(scope="module")
def train(data):
    return load_train(data, feature_dim=DIM, chunk_rows=64)


def hand_chunk() -> BoxChunk:
    """Three rows with 2, 0 and 3 boxes; box b has feature [b, -b], label 10 + b."""
    rows = pd.DataFrame({"line": [2, 3, 4], "product_id": [7, 8, 9], "image_h": [100, 50, 10],
                         "image_w": [200, 50, 20], "num_boxes": [2, 0, 3], "query": ["a", "b", "c"], "query_id": [1, 2, 3]})
    boxes = np.array([[10, 20, 60, 120], [0, 0, 100, 200],  # [top, left, bottom, right]
                      [0, 0, 5, 10], [5, 10, 10, 20], [1, 2, 3, 4]], np.float32)
    feats = np.stack([np.arange(5), -np.arange(5)], 1).astype(np.float32)
    return BoxChunk(rows, np.array([0, 2, 2, 5]), boxes, feats, 10 + np.arange(5, dtype=np.int64))


# ---------------------------------------------------------------- padding
def test_padded_boxes_exact_values():
    batch = padded_boxes(hand_chunk(), [2, 1, 0], max_boxes=2)  # row 2 has 3 boxes: its first 2 kept
    assert batch.mask.tolist() == [[True, True], [False, False], [True, True]]
    assert batch.labels.tolist() == [[12, 13], [0, 0], [10, 11]]
    assert batch.features[:, :, 0].tolist() == [[2, 3], [0, 0], [0, 1]]
    assert batch.features[:, :, 1].tolist() == [[-2, -3], [0, 0], [0, -1]]
    assert batch.lengths.tolist() == [2, 0, 2]
    # [left/w, top/h, right/w, bottom/h, area / image area]
    expected = [[[0, 0, 0.5, 0.5, 0.25], [0.5, 0.5, 1, 1, 0.25]], [[0] * 5] * 2,
                [[0.1, 0.1, 0.6, 0.6, 0.25], [0, 0, 1, 1, 1]]]
    assert torch.allclose(batch.positions, torch.tensor(expected))
    assert batch.features.dtype == torch.float32 and batch.labels.dtype == torch.int64
    wide = padded_boxes(hand_chunk(), None, max_boxes=4)
    assert wide.mask.sum(1).tolist() == [2, 0, 3] and wide.labels[2].tolist() == [12, 13, 14, 0]


def test_padding_skips_arrays_not_decoded():
    c = hand_chunk()
    batch = padded_boxes(BoxChunk(c.rows, c.offsets, None, c.features, None), [0], 3)
    assert batch.labels is None and batch.positions is None and batch.features.shape == (1, 3, 2)


def test_train_rows_are_capped_and_streamed(data, train):
    capped = load_train(data, feature_dim=DIM, chunk_rows=64, max_rows=100, decode=("class_labels",))
    assert len(capped) == 100 and capped.chunk.features is None and capped.chunk.boxes is None
    assert np.array_equal(capped.chunk.class_labels, train.chunk.class_labels[: train.chunk.offsets[100]])
    assert (capped.queries[capped.query_codes] == capped.chunk.rows["query"].to_numpy()).all()


# ---------------------------------------------------------------- negatives
ALL = (NegativeSpec("random", 2), NegativeSpec("box_label", 3), NegativeSpec("tfidf", 1, {"neighbours": 5}))


def test_negatives_are_never_the_positive_and_keep_the_ratio(train):
    samplers = build_samplers(ALL, train)
    rows = np.arange(len(train))
    neg = draw_negatives(samplers, rows, seed=3, epoch=0)
    assert neg.shape == (len(train), 6) and neg.dtype == np.int64
    pid, codes = train.product_ids, train.query_codes
    assert not (pid[neg] == pid[rows, None]).any()
    assert not (codes[neg] == codes[rows, None]).any()  # same query text: its product is a positive too
    assert np.array_equal(neg, draw_negatives(samplers, rows, seed=3, epoch=0))  # same seed, same draws
    other = draw_negatives(samplers, rows, seed=3, epoch=1)
    assert (other != neg).mean() > 0.5  # a new epoch, new negatives
    assert (draw_negatives(samplers, rows, seed=4, epoch=0) != neg).mean() > 0.5


def test_box_label_negatives_share_a_label(train):
    (sampler, _), = build_samplers([NegativeSpec("box_label", 4, {"ignore_labels": [0]})], train)
    rows = np.arange(len(train))
    neg = sampler.sample(rows, 4, np.random.default_rng(0))
    chunk = train.chunk
    labels = np.zeros((len(train), int(chunk.class_labels.max()) + 1), bool)
    labels[chunk.box_rows(), chunk.class_labels] = True
    labels[:, 0] = False
    shared = (labels[neg] & labels[rows, None, :]).any(-1)
    has = labels.any(1)
    assert shared[has].mean() > 0.97  # the rest: label pools holding only the positive's own query
    rand = build_samplers([NegativeSpec("random", 4)], train)[0][0].sample(rows, 4, np.random.default_rng(0))
    assert (labels[rand] & labels[rows, None, :]).any(-1)[has].mean() < 0.5


def test_tfidf_negatives_come_from_similar_queries(train):
    (sampler, _), = build_samplers([NegativeSpec("tfidf", 2, {"neighbours": 3})], train)
    rows = np.arange(len(train))
    neg = sampler.sample(rows, 2, np.random.default_rng(0))
    near = sampler.similar[train.query_codes[rows]]
    assert (near[:, :, None] == train.query_codes[neg][:, None, :]).any(1).mean() > 0.97
    words = [set(q.split()) for q in train.queries]
    overlap = [len(words[a] & words[b]) > 0 for a, b in zip(train.query_codes[rows], train.query_codes[neg[:, 0]])]
    assert np.mean(overlap) > 0.9


def test_negative_spec_validation():
    with pytest.raises(DataError, match="unknown kind 'hard'"):
        NegativeSpec("hard")
    with pytest.raises(DataError, match="ratio must be >= 1"):
        NegativeSpec("random", 0)
    with pytest.raises(DataError, match="unknown key 'neighbors'"):
        NegativeSpec("tfidf", 1, {"neighbors": 3})


def test_too_few_queries_for_negatives_is_a_clear_error():
    c = hand_chunk()
    one = TrainSet("train.tsv", c, np.array(["q"], object), np.zeros(3, np.int64))
    with pytest.raises(DataError, match="no negative found"):
        draw_negatives(build_samplers([NegativeSpec("random")], one), [0], 0, 0)


# ---------------------------------------------------------------- towers
def test_pooling_ignores_padding_and_towers_give_their_shapes():
    seq = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [0.0], [0.0]], [[5.0], [5.0], [5.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False], [False, False, False]])
    assert masked_mean_max(seq, mask).tolist() == [[2.0, 3.0], [-2.0, -2.0], [0.0, 0.0]]
    batch = padded_boxes(hand_chunk(), [0, 1, 2], max_boxes=3)
    vec, boxes = BoxEncoder(n_labels=15, feature_dim=2)(batch)
    assert vec.shape == (3, 256) and boxes.shape == (3, 3, 256) and (boxes[1] == 0).all()
    vocab = WordVocab.build(["red dresses", "red shoe", "blue"])
    assert vocab.tokens == ("red", "blue", "dress", "shoe")  # most frequent first, plural-stemmed
    ids = vocab.encode(["red dress", "green shoes blue red"], 3)
    assert ids.tolist() == [[2, 4, 0], [1, 5, 3]]
    assert QueryEncoder(len(vocab), 8)(torch.from_numpy(ids), torch.zeros(2, 8)).shape == (2, 256)


# ---------------------------------------------------------------- two_tower
def tower_config(**options) -> dict:
    """kdd-test's random baseline and its two_tower member (with `options` changed), valid only."""
    config = read_yaml("kdd-test")
    tower = next(m for m in config["methods"] if m["kind"] == "two_tower")
    tower = {**tower, "options": {**tower["options"], **options}}
    return {**config, "test_splits": [], "methods": [{"name": "random", "kind": "random"}, tower]}


def test_two_tower_beats_random_on_the_test_preset(data, tmp_path):
    result = kdd_run(data, tower_config(), tmp_path / "run")
    assert result["valid"]["two_tower"] > result["valid"]["random"] + 0.08  # measured 0.327 vs 0.196
    facts = json.loads((tmp_path / "run" / "run.json").read_text())["methods"]["two_tower"]
    assert facts["train_rows"] == 293 and facts["negatives_per_positive"] == 3
    assert facts["epoch_loss"][-1] < facts["epoch_loss"][0] - 0.1


def test_two_tower_fine_tunes_the_text_encoder_or_runs_without_one(data, tmp_path):
    for name, options in (("tuned", {"freeze_text": False}), ("words", {"text_model": "none"})):
        result = kdd_run(data, tower_config(epochs=1, max_rows=64, **options), tmp_path / name)
        facts = json.loads((tmp_path / name / "run.json").read_text())["methods"]["two_tower"]
        assert facts["train_rows"] == 64 and 0 <= result["valid"]["two_tower"] <= 1


def test_two_tower_options_are_checked_at_load():
    def load(**options):
        return load_config(tower_config(**options), KddRunConfig)

    with pytest.raises(DataError, match=r"box.dim \(64\) and query.dim \(32\) must be equal"):
        load(query={"dim": 32})
    with pytest.raises(DataError, match=r"options.epochs: must be >= 1, got 0"):
        load(epochs=0, dropout=0.5)
    with pytest.raises(DataError, match="dropout must be in"):
        load(dropout=1.0)
    with pytest.raises(DataError, match="unknown kind 'hard'"):
        load(negatives=[{"kind": "hard"}])
    with pytest.raises(DataError, match="negatives: at least one sampler"):
        load(negatives=[])
    with pytest.raises(DataError, match="unknown key 'epoch'"):
        load(epoch=2)
    config = load(negatives=[{"kind": "box_label", "ratio": 2, "options": {"ignore_labels": [0]}}])
    method = build_methods(config)[1]
    assert method.options.negatives == (NegativeSpec("box_label", 2, {"ignore_labels": [0]}),)
    with pytest.raises(RuntimeError, match="before fit"):
        method.score("valid", None, None)
