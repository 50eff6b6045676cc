"""Transductive pair kinds: the GCN on the item-property graph and the PKGM-style knowledge vectors.
The graph and the knowledge table are checked by hand on a three-item table; each kind trains one
step, round-trips save/load with its bound items, and refuses items it was not bound to."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from prodmatch.ccks.data import read_ccks_pairs, read_items
from prodmatch.data.synth import generate
from prodmatch.backbones import tiny_text_model
from prodmatch.errors import DataError
from prodmatch.pairs.base import build_pair_model
from prodmatch.pairs.graph import OTHER_RELATION, item_graph
from prodmatch.pairs.inference import predict_pairs
from prodmatch.pairs.knowledge import NO_KEY, item_triples, knowledge_table
from prodmatch.pairs.pair_train import PairTrainConfig, fit_pair_model, load_pair_model
from prodmatch.pairs.pvs import pair_frame

HAND = pd.DataFrame({
    "item_id": ["i1", "i2", "i3"],
    "title": ["red phone", "blue phone", "case"],
    "cate_id": ["c", "c", "d"],
    "item_pvs": ["colour#:#red#;#brand#:#acme", "colour#:#blue#;#brand#:#acme#;#colour#:#blue", None],
    "sku_pvs": ["colour#:#red", None, "size#:#xl"],
})


def test_item_graph_by_hand():
    graph = item_graph(HAND, max_relations=2)
    assert graph.item_ids == ["i1", "i2", "i3"] and graph.values == ["red", "acme", "blue", "xl"]
    # brand and colour have 2 items each (ties by name), size 1 -> <other>
    assert graph.relations == ["brand", "colour", OTHER_RELATION] and graph.slots == 3
    src = [0, 0, 1, 1, 2]
    dst = [3, 4, 5, 4, 6]  # red, acme | blue, acme | xl; i1's sku colour:red and i2's repeated blue are one edge
    rel = [1, 0, 1, 0, 2]
    np.testing.assert_array_equal(graph.edge_index, [src + dst, dst + src])
    np.testing.assert_array_equal(graph.edge_type, rel + [r + 3 for r in rel])
    assert graph.node_texts() == ["red phone", "blue phone", "case", "red", "acme", "blue", "xl"]


def test_knowledge_table_by_hand():
    triples = item_triples(HAND)
    assert triples.tolist() == [["item:i1", "colour", "value:red"], ["item:i1", "brand", "value:acme"],
                                ["item:i2", "colour", "value:blue"], ["item:i2", "brand", "value:acme"],
                                ["item:i3", "size", "value:xl"]]
    entity_to_id = {"item:i1": 0, "item:i2": 1, "item:i3": 2}
    relation_to_id = {"brand": 0, "colour": 1, "size": 2}
    entities = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    relations = torch.tensor([[10.0, 0.0], [0.0, 10.0], [5.0, 5.0]])
    table, mask = knowledge_table(HAND, entity_to_id, relation_to_id, entities, relations, max_pvs=3)
    # category c: brand (2 items), colour (2) -> both items get h + r_brand, h + r_colour, i2 too
    # although the knowledge is the same keys; category d: size only
    expected = torch.zeros(3, 3, 2)
    expected[0, 0], expected[0, 1] = torch.tensor([11.0, 0.0]), torch.tensor([1.0, 10.0])
    expected[1, 0], expected[1, 1] = torch.tensor([10.0, 1.0]), torch.tensor([0.0, 11.0])
    expected[2, 0] = torch.tensor([7.0, 7.0])
    torch.testing.assert_close(table, expected)
    assert mask.tolist() == [[True, True, False], [True, True, False], [True, False, False]]
    assert NO_KEY not in relation_to_id


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("graph")
    generate("ccks", root / "data", seed=0, preset="test")
    items = read_items(root / "data")
    pairs = read_ccks_pairs(root / "data" / "item_train_pair.jsonl", items)
    words = sorted({w for text in items["title"].tolist() for w in text.split()})
    return items, pair_frame(pairs, items), tiny_text_model(root / "bert", words)


def _config(kind, bert):
    return {"gcn": {"kind": "gcn", "model": str(bert), "gcn_dim": 16, "max_relations": 4, "bases": 2},
            "gcn_tfidf": {"kind": "gcn", "features": "char_tfidf", "feature_dim": 12, "gcn_dim": 16},
            "pkgm": {"kind": "pkgm", "model": str(bert), "max_length": 48,
                     "knowledge": {"dim": 8, "epochs": 2, "max_pvs": 4}}}[kind]


@pytest.mark.parametrize("kind", ["gcn", "gcn_tfidf", "pkgm"])
def test_transductive_kind_trains_a_step_and_round_trips(data, tmp_path, kind):
    items, frame, bert = data
    model = build_pair_model(_config(kind, bert))
    model.bind_items(items)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = PairTrainConfig(epochs=1, batch_size=8, max_steps=1, progress=False, loss="bce", lr_head=1e-2)
    result = fit_pair_model(model, frame.iloc[:16], frame.iloc[16:32], config, tmp_path / "run")
    assert result.steps == 1
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    loaded = load_pair_model(result.best_dir)  # the bound items come back with the weights
    assert type(loaded) is type(model) and loaded.config == model.config
    valid = frame.iloc[16:32]
    np.testing.assert_allclose(predict_pairs(loaded, valid), predict_pairs(model, valid), rtol=1e-6)
    stranger = valid.iloc[:2].assign(src_item_id="never-bound")
    with pytest.raises(DataError, match="never-bound"):
        loaded.encode(stranger)


def test_gcn_unique_item_inference_equals_the_pair_forward(data):
    items, frame, bert = data
    model = build_pair_model(_config("gcn", bert))
    model.bind_items(items)
    model.eval()
    pairs = frame.iloc[:12]
    with torch.inference_mode():
        direct = model(model.encode(pairs)).prob.double().numpy()
        unique = model.predict_unique(pairs, batch_size=5)
    np.testing.assert_allclose(unique, direct, rtol=1e-5, atol=1e-7)


def test_tfidf_features_are_unit_rows_of_the_asked_width():
    from prodmatch.pairs.graph import tfidf_features

    features = tfidf_features(["red phone", "blue phone", "red", "x"], dim=8, seed=0)
    assert features.shape == (4, 8) and features.dtype == torch.float32
    torch.testing.assert_close(features.norm(dim=1)[:3], torch.ones(3))
    same = tfidf_features(["red phone", "blue phone", "red", "x"], dim=8, seed=0)
    assert torch.equal(features, same)


def test_a_fresh_gcn_can_be_bound_again(data):
    """Binding twice (a second item table) rebuilds the graph; it used to fail on the dropped encoder."""
    items, frame, bert = data
    model = build_pair_model(_config("gcn", bert))
    model.bind_items(items.iloc[:50])
    model.bind_items(items)
    assert len(model.position) == len(items)
    model.encode(frame.iloc[:4])


def test_unbound_models_say_so(data):
    _, frame, bert = data
    for kind in ("gcn", "pkgm"):
        with pytest.raises(DataError, match="bind_items"):
            build_pair_model(_config(kind, bert)).encode(frame.iloc[:2])


def test_pkgm_knowledge_positions_reach_the_score(data):
    """Zeroing one item's knowledge vectors changes its pairs' scores: the extra positions are read."""
    items, frame, bert = data
    model = build_pair_model(_config("pkgm", bert))
    model.bind_items(items)
    model.eval()
    pairs = frame.iloc[:4]
    with torch.inference_mode():
        before = model(model.encode(pairs)).logits.clone()
        row = model.position[str(pairs["src_item_id"].iloc[0])]
        assert bool(model.knowledge_mask[row].any())
        model.knowledge[row] = 0.0
        after = model(model.encode(pairs)).logits
    assert not torch.equal(before[0], after[0])
