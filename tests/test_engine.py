"""The shared training engine (`prodmatch.training`): accumulation, schedule, skipping, clipping,
optimizer groups, with exact expected values on a one-parameter model."""
from __future__ import annotations

import pytest
import torch

from prodmatch.training.engine import Engine, StepPlan
from prodmatch.training.optim import build_optimizer


def _scalar_run(coefficients, plan: StepPlan, n_batches: int, lr: float = 1.0):
    """w starts at 0, batch c has loss c * w (gradient c), plain SGD: w moves by -lr_t * mean(c)."""
    w = torch.nn.Parameter(torch.zeros(()))
    engine = Engine(torch.optim.SGD([w], lr=lr), plan, torch.device("cpu"), clipped=[w])
    lrs = []
    losses = engine.run_epoch(coefficients, lambda c: None if c is None else c * w, n_batches, progress=False,
                              after_step=lambda: lrs.append(engine.lr()))
    return float(w.detach()), engine.step, losses, lrs


def test_accumulation_averages_each_window_and_a_short_last_window_is_not_diluted():
    # windows (1, 3), (5, 7), (9): mean gradients 2, 6, 9
    w, steps, losses, _ = _scalar_run([1.0, 3.0, 5.0, 7.0, 9.0], StepPlan(total=3, schedule="constant", accumulate=2), 5)
    assert steps == 3 and w == pytest.approx(-(2 + 6 + 9))
    assert losses == [0.0, 0.0, -10.0, -14.0, -72.0]  # c * w, w = 0, then -2 after the first step, -8 after the second


def test_skipped_batches_do_not_count_and_the_cap_holds():
    w, steps, losses, _ = _scalar_run([None, 1.0, None, 2.0, 4.0, 8.0], StepPlan(total=10, schedule="constant"), 3)
    assert steps == 3 and len(losses) == 3 and w == pytest.approx(-(1 + 2 + 4))


def test_no_step_past_the_plans_total():
    _, steps, _, _ = _scalar_run([1.0] * 6, StepPlan(total=4, schedule="constant"), 6)
    assert steps == 4


def test_each_step_runs_at_its_scheduled_rate():
    # warm-up 2 steps of 4, then linear decay to 0: factors 0.5, 1, 1, 0.5 of the peak 0.1
    w, _, _, lrs = _scalar_run([1.0] * 4, StepPlan(total=4, warmup=2, schedule="linear"), 4, lr=0.1)
    assert lrs == pytest.approx([0.05, 0.1, 0.1, 0.05])
    assert w == pytest.approx(-(0.05 + 0.1 + 0.1 + 0.05))


def test_norm_clipping_bounds_the_update():
    w, _, _, _ = _scalar_run([10.0], StepPlan(total=1, schedule="constant", grad_clip=1.0), 1)
    assert w == pytest.approx(-1.0)


def test_a_non_finite_loss_stops_training():
    with pytest.raises(FloatingPointError, match="loss is nan"):
        _scalar_run([float("nan")], StepPlan(total=1), 1)


def test_optimizer_groups_exempt_1d_parameters_from_decay_only_when_asked():
    layer = torch.nn.Linear(3, 2)
    split = build_optimizer([("head", list(layer.parameters()), 0.1)], 0.01, exempt_1d=True)
    assert [(g["name"], g["weight_decay"], len(g["params"])) for g in split.param_groups] == \
        [("head", 0.01, 1), ("head_no_decay", 0.0, 1)]
    whole = build_optimizer([("backbone", [], 1e-4), ("head", list(layer.parameters()), 0.1)], 0.01)
    assert [(g["name"], g["lr"], len(g["params"])) for g in whole.param_groups] == [("backbone", 1e-4, 0), ("head", 0.1, 2)]
