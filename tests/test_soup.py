"""Model soups: uniform and greedy (Wortsman et al.), on state dicts and on saved encoder folders."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from prodmatch.errors import DataError
from prodmatch.encoders.soup import check_compatible, greedy_soup, soup_encoders, uniform_soup


def tiny(value: float, batches: int = 0) -> dict[str, torch.Tensor]:
    """A Linear + BatchNorm state dict filled with `value` (num_batches_tracked = `batches`)."""
    module = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    state = module.state_dict()
    for key, tensor in state.items():
        if tensor.is_floating_point():
            tensor.fill_(value)
        else:
            tensor.fill_(batches)
    return state


def test_uniform_soup_exact_mean_and_integer_buffers():
    soup = uniform_soup([tiny(1.0, batches=7), tiny(2.0, batches=9), tiny(6.0, batches=11)])
    for key, tensor in soup.items():
        if key.endswith("num_batches_tracked"):
            assert tensor.dtype == torch.int64 and tensor.item() == 7  # the first checkpoint's
        else:
            assert tensor.dtype == torch.float32
            assert torch.equal(tensor, torch.full_like(tensor, 3.0))


def test_uniform_soup_half_precision_is_averaged_in_float32_and_cast_back():
    a = {"w": torch.tensor([65504.0, 1.0], dtype=torch.float16)}
    b = {"w": torch.tensor([65504.0, 2.0], dtype=torch.float16)}
    soup = uniform_soup([a, b])
    assert soup["w"].dtype == torch.float16
    assert soup["w"].tolist() == [65504.0, 1.5]  # a float16 sum would overflow to inf


def test_uniform_soup_real_module_loads_back():
    torch.manual_seed(0)
    modules = [nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3)) for _ in range(3)]
    soup = uniform_soup([m.state_dict() for m in modules])
    expected = sum(m[0].weight.detach() for m in modules) / 3
    torch.testing.assert_close(soup["0.weight"], expected, rtol=0, atol=1e-7)
    target = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    target.load_state_dict(soup)


def test_mismatches_name_the_first_offender():
    base = tiny(1.0)
    missing = dict(base)
    missing.pop("1.running_var")
    with pytest.raises(DataError, match=r"checkpoint 1 lacks '1\.running_var'"):
        uniform_soup([base, missing])
    reshaped = dict(base, **{"0.weight": torch.zeros(2, 4)})
    with pytest.raises(DataError, match=r"'0\.weight' has shape \(2, 4\) in checkpoint 1 but \(2, 3\)"):
        uniform_soup([base, reshaped])
    extra = dict(base, **{"head.bias": torch.zeros(1)})
    with pytest.raises(DataError, match="head.bias"):
        check_compatible([base, extra])
    with pytest.raises(DataError, match="no checkpoints"):
        uniform_soup([])


def test_greedy_soup_skips_a_bad_checkpoint():
    # score = closeness of the soup's weights to 1.0; the 9.0 checkpoint is first in the input
    # order but worst on its own, and adding it would ruin the soup, so it is skipped
    candidates = {"good_a": tiny(1.1), "bad": tiny(9.0), "good_b": tiny(0.8), "good_c": tiny(1.05)}
    calls = []

    def evaluate(state):
        calls.append(state["0.weight"].mean().item())
        return -abs(state["0.weight"].mean().item() - 1.0)

    soup, chosen = greedy_soup(candidates, evaluate)
    # own scores: good_c (-0.05) > good_a (-0.1) > good_b (-0.2) > bad (-8)
    # soup c+a = 1.075 (-0.075 < -0.05: skip); c+b = 0.925 (-0.075: skip); c+bad: skip
    assert chosen == ["good_c"]
    assert soup["0.weight"].mean().item() == pytest.approx(1.05)
    assert len(calls) == 4 + 3


def test_greedy_soup_keeps_improving_candidates_and_uses_given_scores():
    candidates = [tiny(0.9), tiny(1.1), tiny(5.0)]
    soup, chosen = greedy_soup(candidates, lambda s: -abs(s["0.weight"].mean().item() - 1.0),
                               scores=[-0.1, -0.1, -4.0])
    assert chosen == [0, 1]  # tie in own score keeps input order; 0.9+1.1 -> 1.0 improves
    assert soup["0.weight"].mean().item() == pytest.approx(1.0)


def test_greedy_soup_rejects_nan_scores():
    with pytest.raises(DataError, match="NaN"):
        greedy_soup([tiny(1.0), tiny(2.0)], lambda s: float("nan"))


IMAGE = {"backbone": "test_nfnet", "image_size": 32, "dim": 8}


@pytest.fixture(scope="module")
def two_encoders(tmp_path_factory):
    from prodmatch.encoders import create_encoder, save_encoder

    root = tmp_path_factory.mktemp("soup")
    folders = []
    for seed, dropout in ((0, 0.0), (1, 0.1)):
        torch.manual_seed(seed)
        encoder = create_encoder("image", dict(IMAGE, dropout=dropout))
        folders.append(save_encoder(encoder, root / f"run{seed}"))
    return folders


def test_soup_encoders_uniform(two_encoders, tmp_path):
    from prodmatch.encoders import load_encoder
    from prodmatch.weights import read_state_dict

    out, chosen = soup_encoders(two_encoders, tmp_path / "soup")
    assert chosen == two_encoders
    states = [read_state_dict(f) for f in two_encoders]
    souped = read_state_dict(out)
    for key, tensor in souped.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (states[0][key] + states[1][key]) / 2, rtol=0, atol=1e-6)
        else:
            assert torch.equal(tensor, states[0][key])
    encoder = load_encoder(out)
    assert encoder.dim == 8
    with torch.no_grad():
        assert encoder(torch.zeros(2, 3, 32, 32)).shape == (2, 8)
    meta = json.loads((out / "soup.json").read_text())
    assert meta["method"] == "uniform" and len(meta["chosen"]) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left

    # writing again replaces the folder whole
    out2, _ = soup_encoders(two_encoders[:1], out)
    assert out2 == out and json.loads((out / "soup.json").read_text())["sources"] == [str(two_encoders[0])]


def test_soup_encoders_greedy_calls_evaluate_with_an_encoder(two_encoders, tmp_path):
    seen = []

    def evaluate(encoder):
        seen.append(type(encoder).__name__)
        assert not encoder.training
        return 0.0 if len(seen) == 2 else 1.0  # second run alone is worse; the pair soup "does not drop"

    out, chosen = soup_encoders(two_encoders, tmp_path / "greedy", method="greedy", evaluate=evaluate)
    assert seen == ["ImageEncoder"] * 3
    assert chosen == two_encoders


def test_soup_encoders_refuses_other_architectures(two_encoders, tmp_path):
    from prodmatch.encoders import create_encoder, save_encoder

    other = save_encoder(create_encoder("image", dict(IMAGE, dim=4)), tmp_path / "dim4")
    with pytest.raises(DataError, match="another architecture.*dim: 8 vs 4"):
        soup_encoders([two_encoders[0], other], tmp_path / "out")
    with pytest.raises(DataError, match="not a saved encoder"):
        soup_encoders([two_encoders[0], tmp_path], tmp_path / "out")
    with pytest.raises(DataError, match="needs an evaluate"):
        soup_encoders(two_encoders, tmp_path / "out", method="greedy")
    assert not (tmp_path / "out").exists()


def test_soup_cli_writes_the_uniform_soup_and_refuses_to_overwrite(two_encoders, tmp_path, capsys):
    from prodmatch.cli import main
    from prodmatch.weights import read_state_dict

    out = tmp_path / "soup"
    assert main(["soup", *map(str, two_encoders), "--out", str(out)]) == 0
    assert "uniform soup of 2 encoders" in capsys.readouterr().out
    want, _ = soup_encoders(two_encoders, tmp_path / "api")
    for key, tensor in read_state_dict(out).items():
        assert torch.equal(tensor, read_state_dict(want)[key])
    assert main(["soup", *map(str, two_encoders), "--out", str(out)]) == 2
    assert "already holds a run (or other files); pass --overwrite" in capsys.readouterr().err
    assert main(["soup", str(two_encoders[0]), "--out", str(out), "--overwrite"]) == 0
