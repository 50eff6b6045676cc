"""Seed 003's KDD kinds (`prodmatch.kdd.pretrain`, `word_match`, `sentence_match`): heads with exact
values, then the kinds trained on the synthetic test preset; seconds."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from prodmatch.config import load_config, read_yaml
from prodmatch.errors import DataError
from prodmatch.kdd import KddContext, KddRunConfig, build_methods, kdd_run
from prodmatch.kdd.data import read_labels
from prodmatch.kdd.towers import WordVocab
from prodmatch.kdd.train_data import load_train
from prodmatch.kdd.pretrain import STOP_WORDS, CaptionDecoder, box_match, multilabel_loss, word_targets
from prodmatch.kdd.word_match import WordWeights, pairwise_loss

from .test_kdd import data, kdd_test_with  # data: the synthetic test-preset folder (module-scoped fixture)

__all__ = ["data"]  # a fixture: used by name, not referenced


# ---------------------------------------------------------------- heads, exact values
def test_word_targets_mark_each_querys_words_once():
    ids = np.array([[3, 1, 3, 0], [2, 0, 0, 0], [0, 0, 0, 0]])  # 0 padding, 1 unknown
    targets = word_targets(ids, 5, ignore=(0, 1))
    assert targets.toarray().tolist() == [[0, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    per_row = word_targets(ids, 5, ignore=(0, 1), rows=np.array([1, 1, 0]))  # each train row's query
    assert per_row.toarray().tolist() == [[0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]]
    assert word_targets(ids, 5, ignore=(0,)).toarray()[0].tolist() == [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="0..4"):
        word_targets(np.array([[5]]), 5)


def test_pairwise_losses_exact():
    pos = torch.tensor([1.0, 0.0])
    neg = torch.tensor([[0.5, 1.5], [-1.0, 0.0]])  # gaps pos - neg: 0.5, -0.5, 1.0, 0.0
    assert pairwise_loss(pos, neg, "margin", 0.9).item() == pytest.approx((0.4 + 1.4 + 0.0 + 0.9) / 4)
    bpr = sum(math.log1p(math.exp(-g)) for g in (0.5, -0.5, 1.0, 0.0)) / 4
    assert pairwise_loss(pos, neg, "bpr").item() == pytest.approx(bpr)
    with pytest.raises(ValueError, match="margin, bpr"):
        pairwise_loss(pos, neg, "hinge")


def test_box_match_is_each_words_best_real_box():
    words = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    boxes = torch.tensor([[[2.0, 0.0], [0.0, -1.0], [9.0, 9.0]], [[5.0, 5.0], [5.0, 5.0], [5.0, 5.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])  # the 9s are padding; row 2 box-less
    got = box_match(words, boxes, mask)
    assert got.flatten().tolist() == pytest.approx([2 / math.sqrt(2), 0.0, 0.0, 0.0])
    per_row = box_match(words[None].expand(2, -1, -1), boxes, mask)  # each row's own words: same here
    assert torch.allclose(per_row, got)


def test_multilabel_loss_sums_kept_words():
    logits, targets = torch.zeros(2, 4), torch.tensor([[1.0, 0, 0, 1], [0, 0, 0, 0]])
    keep = torch.tensor([0.0, 1, 1, 1])
    assert multilabel_loss(logits, targets, keep).item() == pytest.approx(3 * math.log(2))
    assert multilabel_loss(torch.tensor([[2.0]]), torch.tensor([[1.0]])).item() == pytest.approx(math.log1p(math.exp(-2)))


def test_caption_loss_is_teacher_forced_next_word_cross_entropy():
    torch.manual_seed(0)
    decoder, words = CaptionDecoder(image_dim=6, word_dim=4), torch.randn(5, 4)
    image, tokens = torch.randn(1, 6), torch.tensor([[3, 2, 0]])
    logits = decoder.logits(image, tokens, words)[0]  # (4 steps, 5 words + end)
    logp = torch.log_softmax(logits, -1)
    expected = -(logp[0, 3] + logp[1, 2] + logp[2, 5]) / 3  # word 3, word 2, then the end token (index 5)
    assert decoder(image, tokens, tokens != 0, words).item() == pytest.approx(expected.item(), rel=1e-6)
    with torch.no_grad():
        decoder.out.weight.zero_(), decoder.out.bias.zero_()
    assert decoder(image, tokens, tokens != 0, words).item() == pytest.approx(math.log(6), rel=1e-6)  # uniform


def test_word_weights_are_a_softmax_over_real_words():
    torch.manual_seed(0)
    weights = WordWeights(n_words=6, context_dim=3, image_dim=2)
    tokens = torch.tensor([[2, 3, 4], [5, 0, 0], [0, 0, 0]])
    got = weights(tokens, tokens != 0, torch.randn(3, 3, 3), torch.randn(3, 2))
    assert got.sum(1).tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert got[1].tolist() == pytest.approx([1.0, 0.0, 0.0]) and (got[2] == 0).all()
    with torch.no_grad():
        weights.prior.weight[3] = 50.0  # a learnt per-word weight dominates
    assert weights(tokens, tokens != 0, torch.zeros(3, 3, 3), torch.zeros(3, 2))[0, 1].item() == pytest.approx(1.0)


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("options, message", [
    ({"pretrain": {"epochs": -1}}, "pretrain.epochs: must be >= 0"),
    ({"pretrain": {"captions": True}}, "did you mean 'caption'"),
    ({"loss": "hinge"}, "not one of"),
    ({"negatives": []}, "at least one sampler"),
    ({"negatives": [{"kind": "nearest"}]}, "unknown kind"),
    ({"max_rows": 0}, "max_rows"),
    ({"epochs": 0}, "epochs: must be >= 1"),
])
def test_bad_options_fail_when_the_config_loads(options, message):
    config = {"methods": [{"name": "w", "kind": "word_match", "options": options}]}
    with pytest.raises(DataError, match=message):
        load_config(config, KddRunConfig)


def test_sentence_options_checked():
    with pytest.raises(DataError, match="not one of"):
        load_config({"methods": [{"name": "s", "kind": "sentence_match", "options": {"interaction": "dot"}}]}, KddRunConfig)
    with pytest.raises(DataError, match="unknown key 'margin'"):
        load_config({"methods": [{"name": "s", "kind": "sentence_match", "options": {"margin": 1.0}}]}, KddRunConfig)


# ---------------------------------------------------------------- trained on the test preset
@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    summary = kdd_run(data, kdd_test_with("random", "word_match", "sentence_match"), out)  # this file's kinds + the floor
    return summary, json.loads((out / "run.json").read_text())


@pytest.mark.parametrize("method", ["word_match", "sentence_match"])
def test_trained_kinds_beat_random_on_valid(run, method):
    valid = run[0]["valid"]
    assert valid[method] > valid["random"] + 0.05, valid


def test_pretraining_lowers_its_losses_and_is_shared(run):
    facts = run[1]["methods"]
    losses = facts["sentence_match"]["pretrain"]["epoch_loss"]  # first in the config: it pre-trains
    assert set(losses) == {"multilabel", "caption"}
    for name, history in losses.items():
        assert history[-1] < history[0], (name, history)
    assert facts["word_match"]["pretrain"]["shared"] is True  # equal settings: one pre-training
    assert facts["word_match"]["pretrain"]["epoch_loss"] == losses
    assert "features" in run[1]["decoded"] and "boxes" in run[1]["decoded"]


def test_word_weights_change_with_training(data):
    spec = next(m for m in read_yaml("kdd-test")["methods"] if m["kind"] == "word_match")
    config = load_config({"feature_dim": 32, "chunk_rows": 128, "methods": [spec]}, KddRunConfig)
    method = build_methods(config)[0]
    context = KddContext(str(data), tuple(read_labels(data / "multimodal_labels.txt")))
    method.fit(context)
    prior = method.model.head.weights.prior.weight.detach().squeeze(1)  # initialised at 0
    used = torch.from_numpy(np.unique(method.vocab.encode(["red dress", "black shoes"], 4)))
    assert prior[used[used > 1]].abs().min() > 1e-3
    assert F.pairwise_distance(prior[None], torch.zeros_like(prior)[None]).item() > 1e-2


def test_pretraining_learns_more_than_the_word_priors(run, data):
    """The multi-label head once collapsed to each word's prior (loss stuck at the bias-only BCE)."""
    train = load_train(data, feature_dim=32, decode=())
    vocab = WordVocab.build(train.queries)
    ignore = [0, 1] + [i + 2 for i, w in enumerate(vocab.tokens) if w in STOP_WORDS]  # as pretrain()
    targets = word_targets(vocab.encode(train.queries, 12), len(vocab), ignore, train.query_codes).toarray()
    targets = np.delete(targets, ignore, axis=1)
    share = targets.mean(0).clip(1e-4, 1 - 1e-4)
    prior = -(targets * np.log(share) + (1 - targets) * np.log(1 - share)).sum(1).mean()  # best constant logits
    final = run[1]["methods"]["sentence_match"]["pretrain"]["epoch_loss"]["multilabel"][-1]
    assert final < 0.9 * prior, (final, prior)


def test_sentence_loss_encodes_each_product_once_and_equals_the_per_pair_loss(data):
    """The pointwise loss encodes a step's products once and reuses the positives' image vectors for
    the (negative's query, positive) rows: the same BCE as encoding every scored pair's product."""
    from prodmatch.kdd.match_base import MatchData

    spec = next(m for m in read_yaml("kdd-test")["methods"] if m["kind"] == "sentence_match")
    spec = {**spec, "options": {**spec["options"], "epochs": 1, "pretrain": {"epochs": 0}}}
    method = build_methods(load_config({"feature_dim": 32, "chunk_rows": 128, "methods": [spec]}, KddRunConfig))[0]
    method.fit(KddContext(str(data), tuple(read_labels(data / "multimodal_labels.txt"))))
    train = load_train(data, feature_dim=32, decode=("features", "class_labels", "boxes"))
    match = MatchData(train, method.vocab, method.vocab.encode(train.queries, method.options.max_words))
    pos, neg = np.array([0, 5, 9]), np.array([[1, 2], [30, 40], [7, 8]])
    encoded = []
    method.model.core.register_forward_hook(lambda module, args, out: encoded.append(len(args[0].mask)))
    with torch.no_grad():
        got = method.loss(method.model, match, pos, neg).item()
        assert encoded == [3 + 6]  # 3 positives + 6 negatives, each once
        words = torch.cat([match.row_words(pos), match.row_words(pos).repeat_interleave(2, 0),
                           match.row_words(neg.ravel())])
        logits = method.model(words, method.boxes(train.chunk, np.concatenate([pos, neg.ravel(), np.repeat(pos, 2)])))
        want = F.binary_cross_entropy_with_logits(logits, torch.tensor([1.0] * 3 + [0.0] * 12)).item()
    assert got == pytest.approx(want, abs=1e-6)
