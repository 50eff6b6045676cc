"""Optimizer parameter groups and gradient clipping (global norm or NFNet's adaptive clipping)."""
from __future__ import annotations

from typing import Iterable, Sequence

from ..registry import unknown

CLIP_MODES = ("norm", "agc")


OPTIMIZERS = ("adamw", "adam")


def build_optimizer(groups: Sequence[tuple[str, Sequence, float]], weight_decay: float, *,
                    exempt_1d: bool = False, kind: str = "adamw"):
    """AdamW (``kind`` ``adam``: plain Adam, L2 `weight_decay` in the gradient, as torch.optim.Adam)
    over named ``(name, params, lr)`` groups.

    ``exempt_1d`` splits each group into a decayed half and a half of 1-d parameters (biases,
    norm scales) without weight decay, the transformer fine-tuning convention; empty halves are
    dropped. Without it every named group is kept, even empty (a frozen backbone keeps its slot,
    so checkpoints of frozen and unfrozen runs have one layout)."""
    import torch

    built = []
    for name, params, lr in groups:
        params = [p for p in params if p.requires_grad]
        if not exempt_1d:
            built.append({"params": params, "lr": lr, "name": name})
            continue
        for suffix, part, decay in (("", [p for p in params if p.ndim > 1], weight_decay),
                                    ("_no_decay", [p for p in params if p.ndim <= 1], 0.0)):
            if part:
                built.append({"params": part, "lr": lr, "name": name + suffix, "weight_decay": decay})
    if kind not in OPTIMIZERS:
        raise unknown("optimizer", kind, OPTIMIZERS)
    make = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
    return make(built, lr=groups[-1][2] if groups else 1e-3, weight_decay=weight_decay)


def clip_gradients(params: Iterable, value: float, mode: str = "norm", head_params: Iterable = ()) -> None:
    """Clip in place: the global norm of `params` and `head_params` to `value` (``norm``), or each
    unit's gradient of `params` to `value` times its weight norm (``agc``, timm's
    `adaptive_clip_grad`), leaving the classifier head unclipped as the NFNet paper does."""
    import torch

    if mode == "agc":
        from timm.utils import adaptive_clip_grad

        adaptive_clip_grad(list(params), clip_factor=value)
    elif mode == "norm":
        torch.nn.utils.clip_grad_norm_([*params, *head_params], value)
    else:
        raise ValueError(str(unknown("clip mode", mode, CLIP_MODES)))
