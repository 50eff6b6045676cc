"""config.apply_overrides / with_overrides and the `--set KEY=VALUE` flag of the commands that take --config
(train, match, stack, ccks, pairs, kdd, run)."""
from __future__ import annotations

import argparse

import pytest

from prodmatch.cli import main
from prodmatch.config import apply_overrides, override_argument, parse_assignment, read_yaml, with_overrides
from prodmatch.encoders.experiment import load_experiment
from prodmatch.errors import DataError


def test_dotted_keys_yaml_values_and_a_copy():
    data = read_yaml("tiny-image")
    out = apply_overrides(data, ["n_folds=3", "train.epochs=1", "train.arcface.m=0.4", "encoder.weights=null",
                                 "train.lr_head=1e-3", "name=x-1", "train.eval_batch_size=64", "new.inner.key=[a, 2]"])
    assert out["n_folds"] == 3 and out["train"]["epochs"] == 1 and out["train"]["arcface"]["m"] == 0.4
    assert out["encoder"]["weights"] is None and out["name"] == "x-1" and out["new"] == {"inner": {"key": ["a", 2]}}
    assert out["train"]["lr_head"] == 0.001 and isinstance(out["train"]["lr_head"], float)  # YAML 1.1 reads 1e-3 as text
    assert list(out["train"])[: len(data["train"])] == list(data["train"])  # keys keep their places, new ones last
    assert list(out["train"])[-1] == "eval_batch_size"
    assert data["train"]["epochs"] == 30 and "new" not in data  # the input is not touched
    config = load_experiment({k: v for k, v in out.items() if k != "new"})
    assert config.n_folds == 3 and config.train.epochs == 1 and config.train.arcface.m == 0.4


def test_list_items_and_made_sections():
    data = {"methods": [{"name": "a"}, {"name": "b", "options": None}]}
    out = apply_overrides(data, ["methods[1].options.lr=0.1", "methods[-2].name=c"])
    assert out["methods"] == [{"name": "c"}, {"name": "b", "options": {"lr": 0.1}}]
    with pytest.raises(DataError, match=r"methods has no item \[2\]"):
        apply_overrides(data, ["methods[2].name=x"])
    with pytest.raises(DataError, match="--set k.name=2: k is int, not a mapping"):
        apply_overrides({"k": 1}, ["k.name=2"])


@pytest.mark.parametrize("text, message", [
    ("train.epochs=0", "train.epochs must be >= 1, got 0"),
    ("train.dropout=1.5", "train.dropout must be >= 0 and <= 1"),
    ("methods[0].options.pretrain.epochs=-1", "pretrain.epochs must be >= 0"),  # the two-name entry
    ("train.arcface={m: -1}", "train.arcface.m: must be >= 0"),
    ("train.lr_head=.nan", "must be a finite number"),
])
def test_numbers_are_checked_like_a_config_file(text, message):
    with pytest.raises(DataError, match=message):
        apply_overrides({"methods": [{}]}, [text])


@pytest.mark.parametrize("text", ["epochs", "=3", "train..epochs=1", "train.epochs[x]=1", "a b=1", "x=[1"])
def test_malformed_assignments(text):
    with pytest.raises(DataError, match="--set"):
        parse_assignment(text)


def test_unknown_keys_are_named_by_the_typed_config():
    with pytest.raises(DataError, match="did you mean 'epochs'"):
        load_experiment(apply_overrides(read_yaml("tiny-image"), ["train.epoch=2"]))


def test_with_overrides_keeps_the_source_when_there_are_none():
    assert with_overrides("tiny-image", []) == "tiny-image" and with_overrides(None, ()) is None
    assert with_overrides(None, ["t=0.5"]) == {"t": 0.5}
    assert with_overrides("tiny-image", ["n_folds=2"])["kind"] == "image"


def test_the_flag_repeats_and_refuses_malformed_text_at_parse_time(capsys):
    p = argparse.ArgumentParser(prog="x")
    override_argument(p)
    assert p.parse_args([]).set == []
    assert p.parse_args(["--set", "a=1", "--set", "b.c=x"]).set == ["a=1", "b.c=x"]
    with pytest.raises(SystemExit):
        p.parse_args(["--set", "epochs"])
    assert "argument --set: expected KEY=VALUE" in capsys.readouterr().err


class Reached(Exception):
    """Raised by a stand-in stage: the command got that far."""


@pytest.mark.parametrize("command, target", [
    (["match", "--run", "R"], "prodmatch.post.run.match_run"),
    (["stack", "--run", "R"], "prodmatch.stack.run.stack_run"),
    (["train", "image", "--config", "tiny-image"], "prodmatch.encoders.run.train_oof"),
    (["ccks", "--config", "ccks-test"], "prodmatch.ccks.ccks_run"),
    (["pairs", "--config", "em-test"], "prodmatch.ccks.ccks_run"),
    (["kdd", "--config", "kdd-test"], "prodmatch.kdd.kdd_run"),
    (["run", "shopee"], "prodmatch.shopee.run"),
    (["run", "ccks", "--config", "ccks-test"], "prodmatch.ccks.task.run"),
])
def test_every_config_command_passes_the_overrides_on(tmp_path, monkeypatch, command, target):
    seen = {}

    def stage(*args, **kwargs):
        seen["config"] = kwargs["config"] if "config" in kwargs else args[1]
        raise Reached  # stop here: only the config handed over matters

    module, _, name = target.rpartition(".")
    monkeypatch.setattr(f"{module}.{name}", stage)
    (tmp_path / "test.txt").write_text("")  # `pairs` wants a benchmark folder
    if command[0] in ("ccks", "pairs", "kdd", "train", "run"):
        command = [*command, "--data", str(tmp_path), "--out", str(tmp_path / "out")]
    with pytest.raises(Reached):
        main([*command, "--set", "n_folds=3", "--set", "train.epochs=2"])
    config = seen["config"]
    if command[0] == "train":  # the typed experiment
        assert config.n_folds == 3 and config.train.epochs == 2
    else:
        assert config["n_folds"] == 3 and config["train"] == {"epochs": 2}


def test_a_bad_override_is_one_line_exit_2(tmp_path, capsys):
    assert main(["match", "--run", str(tmp_path), "--set", "chisel_windw=3"]) == 2
    assert "unknown key 'chisel_windw' (did you mean 'chisel_window'?)" in capsys.readouterr().err
    assert main(["train", "image", "--data", str(tmp_path), "--set", "train.epochs=0"]) == 2
    assert "--set train.epochs=0: train.epochs must be >= 1, got 0" in capsys.readouterr().err


def test_yaml_reads_exponent_floats_everywhere_and_keeps_quoted_text(tmp_path):
    """One loader for config files and --set values: 1e-3 is a number at any depth (YAML 1.1 read it
    as text, and only a bare --set value was patched), a quoted '1e5' stays text."""
    from prodmatch.config import load_yaml, read_yaml

    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nopts: {decay: 2E+2, steps: [1e1]}\nname: '1e5'\n")
    assert read_yaml(path) == {"lr": 0.001, "opts": {"decay": 200.0, "steps": [10.0]}, "name": "1e5"}
    assert parse_assignment("opts={lr: 1e-3}") == (["opts"], {"lr": 0.001})
    assert parse_assignment("name='1e5'") == (["name"], "1e5")
    assert load_yaml("x: 1e5x") == {"x": "1e5x"}


def test_a_value_that_contains_itself_is_one_error(tmp_path):
    from prodmatch.config import read_yaml

    (tmp_path / "c.yaml").write_text("x: &a [*a]\n")
    with pytest.raises(DataError, match="a YAML alias makes a value contain itself"):
        read_yaml(tmp_path / "c.yaml")
    with pytest.raises(DataError, match="contain itself"):
        parse_assignment("x=&a [*a]")
