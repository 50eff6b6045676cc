"""What this process may use of the machine (a leaf module: imports nothing of the package)."""
from __future__ import annotations

import contextlib
import os


def available_cores() -> int:
    """Cores this process may run on: its affinity mask (a container's share), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run a block with `n` torch CPU threads (0: leave them), restoring the count after."""
    if not n:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
