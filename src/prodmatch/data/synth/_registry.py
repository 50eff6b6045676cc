"""What a synthetic data generator returns (`SynthReport`); the generators are the tasks' `generate`
(`prodmatch.task.TASKS`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SynthReport:
    """What a generator wrote: the folder, its files, a few counts for the log and, where a generator
    times them, the seconds of its phases (Shopee: plan, images)."""

    out: Path
    files: list[Path] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
