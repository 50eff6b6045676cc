"""Training heads (ArcFace, softmax, batch-hard triplet), class-chunk batches, AGC clipping."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from prodmatch.encoders.heads import HEADS, batch_hard_triplet, make_head, pk_batches
from prodmatch.encoders.train import TrainConfig, fit
from prodmatch.training.optim import clip_gradients
from prodmatch.errors import DataError

from .test_train import frame_of, stub, stub_encoder_kind  # noqa: F401  (the stub kind's fixture)


def test_registry_lists_the_three_heads():
    assert sorted(HEADS) == ["arcface", "softmax", "triplet"]
    with pytest.raises(DataError, match="unknown head 'cosface'"):
        make_head("cosface", 4, 3, TrainConfig())


def test_batch_hard_triplet_hand_computed():
    # rows 0, 1 class 0; row 2 class 1. Unit vectors at 0, 60 and 90 degrees.
    emb = torch.tensor([[1.0, 0.0], [0.5, 3 ** 0.5 / 2], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # anchor 0: d(p) = 1 - cos60 = 0.5, d(n) = 1 - cos90 = 1   -> relu(0.5 - 1 + m)
    # anchor 1: d(p) = 0.5,           d(n) = 1 - cos30 = 0.134 -> relu(0.5 - 0.134 + m)
    # anchor 2: no positive: left out
    m = 0.3
    want = (max(0.0, 0.5 - 1 + m) + max(0.0, 0.5 - (1 - 3 ** 0.5 / 2) + m)) / 2
    assert batch_hard_triplet(emb, labels, m).item() == pytest.approx(want, abs=1e-6)
    leaf = emb.clone().requires_grad_()
    lone = batch_hard_triplet(leaf, torch.tensor([0, 1, 2]), m)  # no anchor has a positive
    lone.backward()  # a zero loss that still backpropagates (training does not crash on such a batch)
    assert lone.item() == 0.0 and torch.equal(leaf.grad, torch.zeros_like(leaf))


def test_pk_batches_keep_classes_together_and_are_seeded():
    labels = np.repeat(np.arange(20), [1, 2, 3, 5, 8] * 4)
    batches = pk_batches(labels, 8, 4, torch.Generator().manual_seed(0))
    again = pk_batches(labels, 8, 4, torch.Generator().manual_seed(0))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again)) and len(batches) == len(again)
    rows = np.concatenate(batches)
    assert len(np.unique(rows)) == len(rows)  # no row twice
    singles = np.flatnonzero(np.bincount(labels)[labels] == 1)
    assert not np.isin(singles, rows).any()  # a class of one row has no positive: left out
    for b in batches:
        assert 2 <= len(b) <= 8
        counts = np.bincount(labels[b])
        assert (counts[counts > 0] >= 2).all()  # every row has a positive in its batch
    # rows lost: the singletons and at most one lone leftover per class (sizes 5 -> 4+1)
    assert len(rows) == len(labels) - len(singles) - 4


@pytest.mark.parametrize("head", ["softmax", "triplet"])
def test_other_heads_train_the_stub(head, tmp_path):
    train, valid = frame_of(12), frame_of(4, seed=1)
    config = TrainConfig(epochs=2, batch_size=8, lr_backbone=1e-3, lr_head=1e-2, head=head, save_checkpoints=False)
    result = fit(stub(), train, valid, config, tmp_path / head, progress=False)
    assert result.steps > 0 and all(np.isfinite(h["loss"]) for h in result.history)
    assert result.history[-1]["margin"] == (0.3 if head == "triplet" else None)


def test_agc_clips_each_unit_relative_to_its_weight_norm():
    layer = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    layer.weight.grad = torch.tensor([[10.0, 0.0, 0.0], [0.0, 0.001, 0.0]])
    clip_gradients([layer.weight], 0.01, "agc")
    # unit 0: |w| = 1, |g| = 10 > 0.01 * 1 -> scaled to norm 0.01; unit 1: |g| = 0.001 <= 0.02 -> kept
    torch.testing.assert_close(layer.weight.grad, torch.tensor([[0.01, 0.0, 0.0], [0.0, 0.001, 0.0]]))
    with pytest.raises(DataError, match="agc needs a grad_clip"):
        fit(stub(), frame_of(4), None, TrainConfig(clip_mode="agc", grad_clip=None), "/tmp/never", progress=False)


def test_triplet_epochs_all_run_the_same_number_of_steps(tmp_path):
    """Each epoch packs class chunks in another order; the step count per epoch must not vary
    (the schedule's total and the accumulation windows depend on it)."""
    train = frame_of(8, per_group=6)  # chunks of 4 + 2 in batches of 5: 14, 13, 12, 14 batches in epochs 1-4
    config = TrainConfig(epochs=4, batch_size=5, lr_backbone=1e-3, lr_head=1e-2, head="triplet", accumulate=2,
                         save_checkpoints=False)
    result = fit(stub(), train, None, config, tmp_path / "t", progress=False)
    steps = [h["step"] for h in result.history]
    assert steps == [steps[0] * (e + 1) for e in range(4)] and result.steps == steps[-1]
