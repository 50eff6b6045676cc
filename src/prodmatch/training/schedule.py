"""The learning-rate schedule every trainer uses: linear warm-up, then cosine / linear decay or constant."""
from __future__ import annotations

import math

SCHEDULES = ("cosine", "linear", "constant")


def lr_factor(step: int, total: int, warmup: int, schedule: str, floor: float = 0.0) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based) of `total`: linear
    warm-up over `warmup` steps, then ``cosine`` or ``linear`` decay to `floor`, or ``constant``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(1, total - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress
    return floor + (1.0 - floor) * decay
