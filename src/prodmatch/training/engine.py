"""The training engine shared by the encoders and the pair models: scheduled optimizer steps with
accumulation, AMP loss scaling and clipping, the epoch loop's bookkeeping, and exact resume."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .optim import clip_gradients
from .schedule import lr_factor


@dataclass(frozen=True)
class StepPlan:
    """How the engine turns micro-batches into optimizer steps: `total` steps with `warmup` of
    them warming up, `schedule` decaying to `floor` x peak; `accumulate` micro-batches per step;
    `grad_clip` (None / 0: off) in `clip_mode`; `amp`: autocast on CUDA."""

    total: int
    warmup: int = 0
    schedule: str = "cosine"
    floor: float = 0.0
    accumulate: int = 1
    grad_clip: float | None = None
    clip_mode: str = "norm"
    amp: bool = False


@contextmanager
def deterministic(enabled: bool, device):
    """torch.use_deterministic_algorithms (warn_only) on CPU for the block; restored after."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    if enabled and device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def epoch_generator(seed: int, epoch: int):
    """The torch generator of one epoch's shuffle: a pure function of (seed, epoch), so a resumed
    run draws the orders an uninterrupted one would."""
    import torch

    return torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch)


class Engine:
    """Optimizer steps of one run. The caller owns the data and the loss; `run_epoch` feeds it
    micro-batches, the engine sets each step's learning rate (peak = each group's initial lr),
    scales, clips, steps and counts. `clipped` / `unclipped` name the parameters clipping sees
    (agc leaves `unclipped`, the classifier head, alone; norm clips both together)."""

    def __init__(self, optimizer, plan: StepPlan, device, *, clipped: Iterable = (), unclipped: Iterable = (),
                 on_window: Callable[[int], None] | None = None) -> None:
        import torch

        from ..layers import autocast_for

        self.optimizer, self.plan, self.device = optimizer, plan, device
        self.peak = [group["lr"] for group in optimizer.param_groups]
        self.clipped, self.unclipped = list(clipped), list(unclipped)
        self.on_window = on_window  # called with the step at each accumulation window's start (margin warm-up)
        _, dtype = autocast_for(device, plan.amp)
        self.scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        self.step = 0
        self.history: list[float] = []  # per `run_epoch` with `weight`: the epoch's weighted mean loss

    @property
    def done(self) -> bool:
        return self.step >= self.plan.total

    def lr(self, group: int = -1) -> float:
        return self.optimizer.param_groups[group]["lr"]

    def _window_start(self) -> None:
        factor = lr_factor(self.step, self.plan.total, self.plan.warmup, self.plan.schedule, self.plan.floor)
        for group, base in zip(self.optimizer.param_groups, self.peak):
            group["lr"] = base * factor
        if self.on_window is not None:
            self.on_window(self.step)

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.plan.grad_clip:
            clip_gradients(self.clipped, self.plan.grad_clip, self.plan.clip_mode, self.unclipped)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1

    def run_epoch(self, batches: Iterable, loss_fn: Callable, n_batches: int, *, desc: str = "train",
                  progress: bool = True, after_step: Callable[[], None] | None = None,
                  weight: Callable[[object], int] | None = None) -> list[float]:
        """One pass over at most `n_batches` micro-batches (and no step past the plan's total):
        ``loss_fn(batch)`` returns the batch's mean loss, or None to skip the batch (it does not
        count). `after_step` runs after every optimizer step (mid-epoch evaluation). With `weight`
        (a batch's row count) the epoch's mean loss, each batch weighted so, is appended to
        `history`. Returns the micro-batch losses."""
        import torch
        from tqdm.auto import tqdm

        from ..layers import autocast_for

        accumulate = self.plan.accumulate
        losses, micro = [], 0
        total, seen = 0.0, 0
        self.optimizer.zero_grad(set_to_none=True)
        bar = tqdm(total=n_batches, desc=desc, disable=not progress, leave=False)
        for batch in batches:
            if micro >= n_batches or self.done:
                break
            window = micro // accumulate
            if micro % accumulate == 0:
                self._window_start()
            context, _ = autocast_for(self.device, self.plan.amp)
            with context:
                loss = loss_fn(batch)
            if loss is None:
                continue
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{desc}: loss is {loss.item()} at step {self.step}")
            scaled = loss / min(accumulate, n_batches - window * accumulate)
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            losses.append(float(loss.detach()))
            if weight is not None:
                rows = weight(batch)
                total, seen = total + losses[-1] * rows, seen + rows
            micro += 1
            if micro % accumulate == 0 or micro == n_batches:
                self._optimizer_step()
                if after_step is not None:
                    after_step()
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", lr=f"{self.lr():.2e}")
        bar.close()
        if weight is not None:
            self.history.append(total / seen if seen else float("nan"))
        return losses

    # resume -------------------------------------------------------------------------------
    def save(self, out_dir: Path, modules: dict, info: dict) -> Path:
        """A resume checkpoint of `modules`, the optimizer, the loss scaler, the step and every
        RNG state; `info` (JSON: epoch, history, ...) is stored beside them."""
        return save_checkpoint(out_dir, modules=modules, optimizer=self.optimizer, scaler=self.scaler,
                               info={**info, "step": self.step, "rng": rng_state()})

    def resume(self, out_dir: Path, modules: dict) -> dict:
        """Restore what `save` wrote; returns its info."""
        info = load_checkpoint(out_dir, modules=modules, optimizer=self.optimizer, scaler=self.scaler)
        self.step = int(info["step"])
        set_rng_state(info["rng"])
        return info
