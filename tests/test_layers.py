"""Shared torch layers: one device rule, one set of token poolings for encoders and pair models."""
from __future__ import annotations

import pytest
import torch

from prodmatch.errors import DataError
from prodmatch.layers import TOKEN_POOLINGS, device_for


def test_device_rule():
    assert device_for("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert device_for() == torch.device("cpu")
        with pytest.raises(DataError, match="torch sees no GPU"):
            device_for("cuda")


def test_token_poolings_hand_computed_and_shared_with_the_pair_models():
    from prodmatch.pairs.base import POOLINGS

    hidden = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])  # the third token is padding
    assert TOKEN_POOLINGS["mean"](hidden, mask).tolist() == [[2.0, 4.0]]
    assert TOKEN_POOLINGS["cls"](hidden, mask).tolist() == [[1.0, 2.0]]
    assert TOKEN_POOLINGS["max"](hidden, mask).tolist() == [[3.0, 6.0]]
    assert POOLINGS["mean"] is TOKEN_POOLINGS["mean"] and POOLINGS["cls"] is TOKEN_POOLINGS["cls"]
