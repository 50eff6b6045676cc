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


def test_plain_adam_without_schedule_matches_a_hand_written_loop():
    """`kind="adam"` + a constant plan: the steps torch.optim.Adam takes in a plain loop, bit for bit;
    `weight` gives the epoch's row-weighted mean loss in `history` (the KDD kinds' epoch_loss)."""
    import torch

    from prodmatch.training.engine import Engine, StepPlan
    from prodmatch.training.optim import build_optimizer

    x, y = torch.randn(10, 3, generator=torch.Generator().manual_seed(0)), torch.arange(10.0)
    batches = [slice(0, 4), slice(4, 8), slice(8, 10)]

    torch.manual_seed(1)
    ref = torch.nn.Linear(3, 1)
    torch.manual_seed(1)
    net = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(ref.parameters(), lr=0.1)
    total = 0.0
    for b in batches:
        loss = ((ref(x[b]).squeeze(1) - y[b]) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y[b])

    built = build_optimizer([("net", net.parameters(), 0.1)], 0.0, kind="adam")
    assert type(built) is torch.optim.Adam
    engine = Engine(built, StepPlan(total=3, schedule="constant"), torch.device("cpu"))
    losses = engine.run_epoch(batches, lambda b: ((net(x[b]).squeeze(1) - y[b]) ** 2).mean(), 3, progress=False,
                              weight=lambda b: len(y[b]))
    assert len(losses) == 3 and engine.step == 3 and engine.lr() == 0.1
    assert torch.equal(net.weight, ref.weight) and torch.equal(net.bias, ref.bias)
    assert engine.history == [total / 10]
    with pytest.raises(ValueError, match="optimizer 'sgd'"):
        build_optimizer([("net", net.parameters(), 0.1)], 0.0, kind="sgd")
