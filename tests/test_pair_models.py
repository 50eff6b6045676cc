"""Pair models (cross-encoder, two-tower), similarities, losses and the pair training loop.

A tiny random BERT (hidden 32) from `tiny_text_model` stands in for the backbone; everything runs
on CPU with one thread in seconds.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from prodmatch.ccks.data import read_ccks_items, read_ccks_pairs
from prodmatch.data.synth import generate
from prodmatch.backbones import tiny_text_model
from prodmatch.errors import DataError
from prodmatch.pairs.losses import LOSSES, make_loss
from prodmatch.pairs.base import (PairModelConfig, PairOutput, build_pair_model, fair_budgets,
                                  pack_segments, unknown_characters)
from prodmatch.pairs.pair_train import (PairTrainConfig, fit_pair_model, load_pair_model, predict_pairs,
                                       save_pair_model)
from prodmatch.pairs.pvs import pair_frame
from prodmatch.pairs.two_tower import HEADS, SIMILARITIES, AdaptiveThresholdHead, adaptive_decision


@pytest.fixture(scope="module")
def ccks(tmp_path_factory):
    """(pair frame of the synthetic test preset's train pairs, tiny model folder)."""
    root = tmp_path_factory.mktemp("ccks")
    generate("ccks", root / "data", seed=0, preset="test")
    items = pd.concat([read_ccks_items(root / "data" / f"item_{s}_info.jsonl") for s in ("train", "valid")],
                      ignore_index=True)
    pairs = read_ccks_pairs(root / "data" / "item_train_pair.jsonl", items)
    words = sorted({w for text in items["title"].tolist() + items["item_pvs"].tolist()
                    for w in text.replace("#", " ").replace(":", " ").replace(";", " ").split()})
    return pair_frame(pairs, items), tiny_text_model(root / "bert", words)


def _config(folder, **kw) -> PairModelConfig:
    return PairModelConfig(model=str(folder), max_length=kw.pop("max_length", 48), dropout=0.0, **kw)


# ------------------------------------------------------------------------------ packing
def test_fair_budgets_keep_short_segments_whole():
    assert fair_budgets([3, 100, 2, 50], 20) == [3, 8, 2, 7]
    assert fair_budgets([0, 0], 10) == [0, 0]
    assert sum(fair_budgets([40, 40, 40, 40], 30)) == 30


def test_cross_input_layout_keeps_both_items(ccks):
    _, folder = ccks
    model = build_pair_model(_config(folder, kind="cross", max_length=24))
    pairs = pd.DataFrame({"title_a": ["abc"], "pvs_a": ["x " * 200], "title_b": ["xyz"], "pvs_b": [""]})
    batch = model.encode(pairs)
    tokens = model.tokenizer.convert_ids_to_tokens(batch["input_ids"][0].tolist())
    assert len(tokens) == 24 and tokens[0] == "[CLS]" and tokens.count("[SEP]") == 4
    assert tokens[-2:] == ["[SEP]", "[SEP]"]  # empty pvs_b keeps its [SEP]
    text = "".join(tokens)
    assert "abc" in text.replace("##", "") and "xyz" in text.replace("##", "")
    second = tokens.index("[SEP]", tokens.index("[SEP]") + 1)
    assert batch["token_type_ids"][0, :second + 1].eq(0).all() and batch["token_type_ids"][0, second + 1:].eq(1).all()


def test_pack_segments_pads_batch(ccks):
    _, folder = ccks
    model = build_pair_model(_config(folder, kind="two_tower"))
    batch = pack_segments(model.tokenizer, [["a", "abcdef abc"], ["", "x"]], 16)
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"].sum(1).tolist() == [4, batch["input_ids"].shape[1]]


# ------------------------------------------------------------------------------ similarities / losses
def test_similarities_hand_values():
    u = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    v = torch.tensor([[0.0, 1.0], [3.0, 4.0]])
    expected = {"cosine": [0.0, 11 / (math.sqrt(5) * 5)], "inner": [0.0, 11.0],
                "l1": [-2.0, -4.0], "l2": [-math.sqrt(2), -math.sqrt(8)]}
    assert set(SIMILARITIES) == set(expected)
    for name, want in expected.items():
        assert SIMILARITIES[name].fn(u, v).tolist() == pytest.approx(want, abs=1e-6), name


def test_losses_against_torch():
    torch.manual_seed(0)
    u, v = torch.randn(6, 5), torch.randn(6, 5)
    z = torch.randn(6) * 2
    y = torch.tensor([1, 0, 1, 1, 0, 0])
    out = PairOutput(torch.stack([torch.zeros(6), z], 1), u, v)
    assert set(LOSSES) == {"ce", "bce", "cosine-embedding", "hinge"}
    cos_loss = make_loss("cosine-embedding", 0.3)(out, y)
    assert cos_loss.item() == pytest.approx(F.cosine_embedding_loss(u, v, y * 2 - 1, margin=0.3).item(), rel=1e-5)
    hinge = make_loss("hinge")(out, y)
    assert hinge.item() == pytest.approx(2 * F.multi_margin_loss(out.logits, y, margin=1.0).item(), rel=1e-5)
    assert hinge.item() == pytest.approx(torch.clamp(1 - (y * 2 - 1) * z, min=0).mean().item(), rel=1e-6)
    # [0, z] logits: softmax CE equals sigmoid BCE of z
    assert make_loss("ce")(out, y).item() == pytest.approx(make_loss("bce")(out, y).item(), rel=1e-5)
    with pytest.raises(DataError, match="unknown pair loss"):
        make_loss("euclid")


def test_adaptive_threshold_decision_rule():
    torch.manual_seed(1)
    head = AdaptiveThresholdHead(8, PairModelConfig(kind="two_tower", head="adaptive", dim=4))
    u, v = torch.randn(64, 8), torch.randn(64, 8)
    with torch.no_grad():
        out = head(u, v)
    sim, thr = out.extra["sim"].numpy(), out.extra["threshold"].numpy()
    assert np.array_equal(adaptive_decision(sim, thr), out.z.numpy() > 0)
    assert np.array_equal(out.prob.numpy() > 0.5, sim > thr)
    assert 0 < (sim > thr).sum() < 64  # both outcomes occur: the threshold is per pair
    assert adaptive_decision([0.8, 0.2], [0.5, 0.5]).tolist() == [True, False]


def test_config_validation():
    with pytest.raises(DataError, match="projection"):
        PairModelConfig(kind="cross", head="similarity")
    with pytest.raises(DataError, match="cosine-embedding.*item vectors"):
        make_loss("cosine-embedding").check(PairModelConfig(kind="cross"))
    with pytest.raises(DataError, match="item vectors"):
        make_loss("cosine-embedding").check(PairModelConfig(kind="two_tower", head="adaptive"))
    make_loss("cosine-embedding").check(PairModelConfig(kind="two_tower", head="similarity"))
    with pytest.raises(DataError, match="PairTrainConfig: unknown pair loss .euclid."):
        PairTrainConfig(loss="euclid")
    with pytest.raises(DataError, match="swap_prob"):
        PairModelConfig(swap_prob=2.0)


# ------------------------------------------------------------------------------ models
@pytest.mark.parametrize("options", [
    dict(kind="cross"),
    dict(kind="two_tower", head="projection"),
    *[dict(kind="two_tower", head="similarity", similarity=s, loss="bce") for s in ("cosine", "inner", "l1", "l2")],
    dict(kind="two_tower", head="similarity", loss="cosine-embedding"),
    dict(kind="two_tower", head="adaptive", loss="hinge"),
])
def test_forward_shapes_and_loss_backward(ccks, options):
    frame, folder = ccks
    options = dict(options)
    loss_fn = make_loss(options.pop("loss", "ce"))
    model = build_pair_model(_config(folder, dim=8, **options))
    batch = frame.iloc[:5]
    out = model(model.encode(batch))
    assert out.logits.shape == (5, 2)
    if options["kind"] == "two_tower":
        width = 8 if options.get("head") == "adaptive" else model.hidden_size
        assert out.u.shape == out.v.shape == (5, width)
    loss = loss_fn(out, torch.tensor(batch["item_label"].to_numpy()))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_missing_title_pvs_and_empty_frames(ccks):
    _, folder = ccks
    model = build_pair_model(_config(folder, kind="cross", symmetric=True))
    pairs = pd.DataFrame({"title_a": ["", None], "title_b": ["abc", ""], "pvs_a": [None, ""], "pvs_b": ["", ""]})
    scores = predict_pairs(model, pairs)
    assert scores.shape == (2,) and np.isfinite(scores).all() and ((scores > 0) & (scores < 1)).all()
    assert predict_pairs(model, pairs.iloc[:0]).shape == (0,)
    with pytest.raises(DataError, match="pair_frame"):
        predict_pairs(model, pd.DataFrame({"a": [1]}))
    with pytest.raises(DataError, match="no training pairs"):
        fit_pair_model(model, pairs.iloc[:0], None, PairTrainConfig(progress=False), folder / "never")


def test_shopee_candidate_pairs_titles_only(ccks):
    _, folder = ccks
    items = pd.DataFrame({"posting_id": ["train_1", "train_2"], "title": ["kaos polos 250ml", "Kaos Polos 250 ml"]})
    pairs = pair_frame(pd.DataFrame({"src_item_id": ["train_1", "train_2"], "tgt_item_id": ["train_2", "train_1"]}),
                       items)
    for kind in ("cross", "two_tower"):
        model = build_pair_model(_config(folder, kind=kind))
        scores = predict_pairs(model, pairs)
        assert scores.shape == (2,) and np.isfinite(scores).all()


# ------------------------------------------------------------------------------ training
def _mean_loss(model, frame) -> float:
    model.eval()
    with torch.no_grad():
        out = model(model.encode(frame))
        loss = make_loss("ce")(out, torch.tensor(frame["item_label"].to_numpy()))
    model.train()
    return float(loss)


@pytest.mark.parametrize("kind", ["cross", "two_tower"])
def test_training_lowers_loss_and_round_trips(ccks, tmp_path, kind):
    frame, folder = ccks
    train, valid = frame.iloc[:32], frame.iloc[32:48]
    config = PairTrainConfig(epochs=3, batch_size=8, lr_backbone=2e-3, lr_head=5e-3, warmup=0.1, progress=False,
                             eval_every=4, schedule="cosine")
    model = build_pair_model(_config(folder, kind=kind, swap_prob=0.5))
    before = _mean_loss(model, train)
    result = fit_pair_model(model, train, valid, config, tmp_path / "run")
    after = _mean_loss(model, train)
    assert after < before
    assert result.steps == 12 and len(result.history) == 3 and 0 <= result.best_f1 <= 1
    assert (result.best_dir / "model.safetensors").is_file() and (result.best_dir / "pair_model.json").is_file()
    best = max(result.history, key=lambda r: r["valid_f1"])
    assert result.best_step == best["step"]

    loaded = load_pair_model(result.best_dir)
    np.testing.assert_array_equal(predict_pairs(loaded, valid), predict_pairs(model, valid))
    assert predict_pairs(model, valid).tolist() != predict_pairs(build_pair_model(model.config), valid).tolist()


def test_training_is_deterministic(ccks, tmp_path):
    frame, folder = ccks
    config = PairTrainConfig(epochs=1, batch_size=8, max_steps=3, progress=False)
    scores = []
    for run in ("a", "b"):
        model = build_pair_model(_config(folder, kind="two_tower"))
        fit_pair_model(model, frame.iloc[:24], None, config, tmp_path / run)
        scores.append(predict_pairs(model, frame.iloc[24:32]))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_interrupted_pair_training_resumes_to_the_same_weights(ccks, tmp_path):
    """The shared engine's checkpoint: a run killed in epoch 2 resumes from the epoch-1 checkpoint
    and ends with the weights, history and best step of an uninterrupted run."""
    frame, folder = ccks
    train, valid = frame.iloc[:24], frame.iloc[24:32]
    config = PairTrainConfig(epochs=3, batch_size=8, progress=False, save_checkpoints=True, lr_head=5e-3)
    reference = build_pair_model(_config(folder, kind="two_tower"))
    expected = fit_pair_model(reference, train, valid, config, tmp_path / "ref")

    broken = build_pair_model(_config(folder, kind="two_tower"))
    calls = {"n": 0}
    forward = broken.forward

    def interrupt(inputs):
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 1: 3 training batches + 1 validation batch; epoch 2's first batch
            raise KeyboardInterrupt
        return forward(inputs)

    broken.forward = interrupt
    with pytest.raises(KeyboardInterrupt):
        fit_pair_model(broken, train, valid, config, tmp_path / "run")
    with pytest.raises(FileExistsError, match="resume"):
        fit_pair_model(build_pair_model(_config(folder, kind="two_tower")), train, valid, config, tmp_path / "run")
    with pytest.raises(DataError, match="same data and config"):
        fit_pair_model(build_pair_model(_config(folder, kind="two_tower")), train, valid,
                       PairTrainConfig(**{**config.__dict__, "epochs": 4}), tmp_path / "run", resume=True)

    resumed = build_pair_model(_config(folder, kind="two_tower", seed=7))  # another head init: the checkpoint wins
    result = fit_pair_model(resumed, train, valid, config, tmp_path / "run", resume=True)
    assert [h["step"] for h in result.history] == [h["step"] for h in expected.history] == [3, 6, 9]
    assert result.best_step == expected.best_step and result.best_f1 == expected.best_f1
    for (name, a), (_, b) in zip(resumed.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_pair_model_saved_with_its_loss_in_the_config_still_loads(ccks, tmp_path):
    """pair_model.json files written before the loss moved to PairTrainConfig name loss/margin."""
    import json

    frame, folder = ccks
    model = build_pair_model(_config(folder, kind="two_tower", head="similarity"))
    save_pair_model(model, tmp_path / "old")
    meta = json.loads((tmp_path / "old" / "pair_model.json").read_text())
    meta["config"].update(loss="bce", margin=None)
    (tmp_path / "old" / "pair_model.json").write_text(json.dumps(meta))
    loaded = load_pair_model(tmp_path / "old")
    np.testing.assert_array_equal(predict_pairs(loaded, frame.iloc[:8]), predict_pairs(model, frame.iloc[:8]))


def test_unknown_characters_are_exactly_the_unk_ones(ccks):
    _, folder = ccks
    tokenizer = build_pair_model(_config(folder, kind="cross")).tokenizer
    assert unknown_characters(tokenizer, ["ab 吸尘器", "", "c吸"]) == sorted("吸尘器")
    assert unknown_characters(tokenizer, ["plain ascii 123"]) == []


@pytest.mark.parametrize("kind", ["cross", "two_tower"])
def test_extend_vocab_adds_unknown_characters_and_round_trips(ccks, tmp_path, kind):
    frame, folder = ccks
    train, valid = frame.iloc[:16], frame.iloc[16:24]
    model = build_pair_model(_config(folder, kind=kind, extend_vocab=True))
    vocab_before = len(model.tokenizer)
    texts = [t for side in model.sides(train, None) for t in side]
    expected = unknown_characters(model.tokenizer, texts)
    assert expected, "the synthetic CCKS titles hold characters the ASCII tiny vocabulary lacks"
    config = PairTrainConfig(epochs=1, batch_size=8, progress=False)
    fit_pair_model(model, train, valid, config, tmp_path / "run")
    assert len(model.tokenizer) == vocab_before + len(expected)
    assert model.backbone.get_input_embeddings().weight.shape[0] == len(model.tokenizer)
    assert unknown_characters(model.tokenizer, texts) == []
    loaded = load_pair_model(tmp_path / "run" / "best")
    assert len(loaded.tokenizer) == len(model.tokenizer)
    np.testing.assert_array_equal(predict_pairs(loaded, valid), predict_pairs(model, valid))
    # without the flag nothing is added
    plain = build_pair_model(_config(folder, kind=kind))
    fit_pair_model(plain, train, None, PairTrainConfig(epochs=1, batch_size=8, max_steps=1, progress=False),
                   tmp_path / "plain")
    assert len(plain.tokenizer) == vocab_before


def test_heads_registry():
    assert set(HEADS) == {"projection", "similarity", "adaptive"}


@pytest.mark.parametrize("symmetric", [False, True])
def test_two_tower_unique_item_prediction_matches_forward(ccks, symmetric):
    frame, folder = ccks
    model = build_pair_model(_config(folder, kind="two_tower", symmetric=symmetric)).eval()
    batch = pd.concat([frame.iloc[:6], frame.iloc[:2]], ignore_index=True)  # repeated items
    with torch.no_grad():
        direct = model(model.encode(batch)).prob.double().numpy()
        if symmetric:
            direct = (direct + model(model.encode(batch, np.ones(len(batch), bool))).prob.double().numpy()) / 2
    np.testing.assert_allclose(predict_pairs(model, batch, batch_size=3), direct, atol=1e-5)
