"""ArcFace head: hand-computed logits, the past-pi fix, label smoothing, class margins, warm-up."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prodmatch.encoders.arcface import ArcFace, class_size_margins, margin_at
from prodmatch.errors import DataError


def unit_head(m: float = 0.5, s: float = 1.0, **kwargs) -> ArcFace:
    """2-d head whose class centres are the axes, so cos(theta) is an embedding's coordinate."""
    head = ArcFace(2, 2, s=s, m=m, **kwargs)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
    return head


def at_angle(theta) -> torch.Tensor:
    theta = torch.as_tensor(theta, dtype=torch.float64).reshape(-1)
    return torch.stack([torch.cos(theta), torch.sin(theta)], dim=1).float()


def test_exact_target_and_other_logits():
    head = unit_head(m=0.5, s=1.0)
    emb = torch.tensor([[0.5, math.sqrt(0.75)]]) * 3.0  # scale does not matter: normalised inside
    logits = head(emb, torch.tensor([0]))
    assert logits.dtype == torch.float32 and logits.shape == (1, 2)
    assert logits[0, 0].item() == pytest.approx(math.cos(math.acos(0.5) + 0.5), abs=1e-6)
    assert logits[0, 1].item() == pytest.approx(math.sqrt(0.75), abs=1e-6)


def test_scale_multiplies_every_logit():
    emb, labels = at_angle([0.3, 1.2]), torch.tensor([0, 1])
    assert torch.allclose(unit_head(s=30.0)(emb, labels), 30.0 * unit_head(s=1.0)(emb, labels), atol=1e-5)


def test_past_pi_uses_the_linear_fallback():
    m = 0.5
    theta = math.pi - 0.2  # theta + m > pi
    logit = unit_head(m=m)(at_angle(theta), torch.tensor([0]))[0, 0].item()
    assert logit == pytest.approx(math.cos(theta) - math.sin(math.pi - m) * m, abs=1e-6)
    just_inside = unit_head(m=m)(at_angle(math.pi - m - 0.01), torch.tensor([0]))[0, 0].item()
    assert just_inside == pytest.approx(math.cos(math.pi - 0.01), abs=1e-5)


@pytest.mark.parametrize("m", [0.2, 0.5, 0.8, 1.2])
def test_target_logit_is_monotone_decreasing_in_theta(m):
    theta = np.linspace(0.0, math.pi, 2001)
    head = unit_head(m=m)
    logits = head(at_angle(theta), torch.zeros(len(theta), dtype=torch.long))[:, 0].detach().numpy()
    assert np.all(np.diff(logits) <= 1e-6)
    assert logits[0] == pytest.approx(math.cos(m), abs=1e-6)


def test_easy_margin_only_where_cos_positive():
    head = unit_head(m=0.5, easy_margin=True)
    labels = torch.tensor([0, 0])
    logits = head(at_angle([math.acos(0.5), math.acos(-0.3)]), labels)[:, 0]
    assert logits[0].item() == pytest.approx(math.cos(math.acos(0.5) + 0.5), abs=1e-6)
    assert logits[1].item() == pytest.approx(-0.3, abs=1e-6)


def test_label_smoothing_mixes_margin_into_every_class():
    eps, m = 0.1, 0.5
    head = unit_head(m=m, ls_eps=eps)
    theta0 = math.acos(0.5)
    logits = head(at_angle(theta0), torch.tensor([0]))[0]
    cos0, cos1 = 0.5, math.sqrt(0.75)
    phi0, phi1 = math.cos(theta0 + m), math.cos(math.acos(cos1) + m)
    w_true, w_other = 1 - eps + eps / 2, eps / 2
    assert logits[0].item() == pytest.approx(cos0 + w_true * (phi0 - cos0), abs=1e-6)
    assert logits[1].item() == pytest.approx(cos1 + w_other * (phi1 - cos1), abs=1e-6)


def test_class_margins_per_sample_and_scaled_by_set_margin():
    head = unit_head(m=0.5, class_margins=torch.tensor([0.2, 0.4]))
    emb, labels = at_angle([0.3, math.pi / 2 - 0.3]), torch.tensor([0, 1])
    logits = head(emb, labels)
    assert logits[0, 0].item() == pytest.approx(math.cos(0.3 + 0.2), abs=1e-6)
    assert logits[1, 1].item() == pytest.approx(math.cos(0.3 + 0.4), abs=1e-6)
    head.set_margin(0.25)  # half of m_init: every class margin halves
    logits = head(emb, labels)
    assert logits[0, 0].item() == pytest.approx(math.cos(0.3 + 0.1), abs=1e-6)
    assert logits[1, 1].item() == pytest.approx(math.cos(0.3 + 0.2), abs=1e-6)


def test_set_margin_changes_the_target_logit():
    head = unit_head(m=0.5)
    head.set_margin(0.2)
    assert head(at_angle(0.4), torch.tensor([0]))[0, 0].item() == pytest.approx(math.cos(0.6), abs=1e-6)


def test_gradients_reach_embeddings_and_centres_and_autocast_stays_float32():
    head = ArcFace(8, 5, s=30.0, m=0.5)
    emb = torch.randn(4, 8, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 4])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(emb.bfloat16(), labels)
    assert logits.dtype == torch.float32
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert emb.grad is not None and head.weight.grad is not None
    assert torch.isfinite(emb.grad).all()


@pytest.mark.parametrize("labels", [[0, -1], [0, 5]])
def test_bad_labels_are_data_errors(labels):
    with pytest.raises(DataError, match=r"\[0, 5\)"):
        ArcFace(4, 5)(torch.randn(2, 4), torch.tensor(labels))


def test_bad_shapes_are_data_errors():
    with pytest.raises(DataError, match=r"\(B, 4\)"):
        ArcFace(4, 5)(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(DataError, match="expected 5 values, found 2"):
        ArcFace(4, 5, class_margins=torch.tensor([0.1, 0.2]))


def test_margin_warm_up():
    assert margin_at(0.0, 0.2, 0.8, 0.5) == pytest.approx(0.2)
    assert margin_at(0.25, 0.2, 0.8, 0.5) == pytest.approx(0.5)
    assert margin_at(0.5, 0.2, 0.8, 0.5) == pytest.approx(0.8)
    assert margin_at(1.0, 0.2, 0.8, 0.5) == pytest.approx(0.8)
    assert margin_at(-1.0, 0.2, 0.8, 0.5) == pytest.approx(0.2)
    assert margin_at(0.0, 0.2, 0.8, 0.0) == pytest.approx(0.8)


def test_class_size_margins():
    margins = class_size_margins([1, 16, 81])
    assert margins.dtype == torch.float32
    assert margins.tolist() == pytest.approx([0.55, 0.3, 0.5 / 3 + 0.05], abs=1e-6)
    assert class_size_margins(np.array([16]), a=1.0, b=0.0).tolist() == pytest.approx([0.5])
    with pytest.raises(DataError, match="positive class sizes"):
        class_size_margins([3, 0])
