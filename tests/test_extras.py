"""Optional extras (issue 29): the base install carries the default Shopee path and the demo; graph,
dask, plots and bench libraries sit behind pip extras. A command that needs a missing one exits 2 with
one line naming the pip command, before any work; a PNG plot is skipped with one warning line.
A missing library is simulated with ``sys.modules[name] = None`` (its import raises ImportError)."""
from __future__ import annotations

import logging
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prodmatch.cli import main
from prodmatch.errors import DataError
from prodmatch.extras import EXTRAS, check, optional, pip_command, require

from .conftest import matched_run, preset_folder

ROOT = Path(__file__).resolve().parents[1]


def block(monkeypatch, *modules):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


# ---------------------------------------------------------------- the mechanism
@pytest.mark.parametrize("module, extra", [("torch_geometric", "graph"), ("pykeen", "graph"), ("distributed", "dask"),
                                           ("matplotlib", "plots"), ("sentence_transformers", "bench")])
def test_require_of_a_missing_library_is_one_line_with_the_pip_command(module, extra, monkeypatch):
    block(monkeypatch, module)
    message = f"the thing needs the {extra!r} extra ({module} is not installed): pip install 'prodmatch[{extra}]'"
    with pytest.raises(DataError) as err:
        require(module, "the thing")
    assert str(err.value) == message
    with pytest.raises(DataError) as err:
        check(f"{module}.sub", "the thing")
    assert str(err.value) == message


def test_require_returns_the_module_and_knows_only_optional_libraries(monkeypatch, caplog):
    fake = type(sys)("matplotlib")
    monkeypatch.setitem(sys.modules, "matplotlib", fake)
    assert require("matplotlib", "x") is fake and optional("matplotlib", "x") is fake
    with pytest.raises(KeyError, match="'numpy' is no optional library"):
        require("numpy", "x")  # a base dependency is never reported as an extra
    block(monkeypatch, "matplotlib")
    with caplog.at_level(logging.WARNING):
        assert optional("matplotlib", "the plots") is None
    assert [r.getMessage() for r in caplog.records] == [
        "the plots skipped: matplotlib is not installed (pip install 'prodmatch[plots]')"]


def test_setup_py_extras_are_the_table_and_the_base_install_has_none_of_them(monkeypatch):
    import setuptools

    seen = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: seen.update(kw))
    monkeypatch.chdir(ROOT)
    runpy.run_path(str(ROOT / "setup.py"))
    extras, base = seen["extras_require"], seen["install_requires"]

    def modules(pins):
        return {pin.split("==")[0].lower().replace("-", "_") for pin in pins}

    for extra, names in EXTRAS.items():
        assert modules(extras[extra]) == set(names), extra
    assert sorted(extras["all"]) == sorted(pin for extra in EXTRAS for pin in extras[extra])
    assert not modules(base) & {m for names in EXTRAS.values() for m in names}
    assert {"dev", "gpu"} <= set(extras) and not set(extras["all"]) & set(extras["gpu"] + extras["dev"])


def test_the_base_modules_import_no_optional_library():
    """Importing what `prodmatch demo` runs (and the modules that hold the optional import sites) loads
    none of the optional libraries: their imports are lazy."""
    optional_modules = sorted(m for names in EXTRAS.values() for m in names)
    code = ("import sys\n"
            "import prodmatch.pipeline, prodmatch.cli, prodmatch.leaderboard, prodmatch.stack.run, prodmatch.stack.lgbm\n"
            "import prodmatch.pairs.base, prodmatch.pairs.graph, prodmatch.pairs.knowledge, prodmatch.ccks.members\n"
            "import prodmatch.distributed.cluster, prodmatch.distributed.search, prodmatch.encoders.text\n"
            f"print(sorted(m for m in {optional_modules!r} if m in sys.modules))\n")
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------- commands (in-process, a library blocked)
@pytest.fixture(scope="module")
def shopee_run(tmp_path_factory):
    """A TF-IDF + phash run with its matcher (read-only: tests copy it)."""
    return matched_run(tmp_path_factory.mktemp("extras"))


@pytest.fixture(scope="module")
def ccks_data(tmp_path_factory):
    return preset_folder(tmp_path_factory, "ccks")


def ccks_command(config, text=None):
    """`prodmatch ccks` with a shipped config, or with `text` written to `config` (a YAML file name)."""
    def case(tmp_path, shopee_data, run, ccks_data):
        if text is not None:
            (tmp_path / config).write_text(text)
        name = config if text is None else str(tmp_path / config)
        return ["ccks", "--data", str(ccks_data), "--config", name, "--out", str(tmp_path / "out"), "--quiet"]
    return case


CASES = {  # name: (blocked modules, argv, the error's command, its message)
    "--dask local without distributed": (
        ("distributed",), lambda t, d, r, c: ["--dask", "local", "match", "--run", str(r), "--backend", "dask",
                                              "--overwrite"],
        "match", "--dask local needs the 'dask' extra (distributed is not installed): pip install 'prodmatch[dask]'"),
    "--dask tcp:// without distributed": (
        ("distributed",), lambda t, d, r, c: ["--dask", "tcp://127.0.0.1:9", "stack", "--run", str(r), "--data",
                                              str(d), "--backend", "dask_ivf", "--overwrite"],
        "stack", "--dask tcp://127.0.0.1:9 needs the 'dask' extra"),
    "ccks-test (a gcn member) without torch-geometric": (
        ("torch_geometric",), ccks_command("ccks-test"),
        "ccks", "the gcn pair kind needs the 'graph' extra (torch_geometric is not installed): "
                "pip install 'prodmatch[graph]'"),
    "a config with a pkgm member without pykeen": (
        ("pykeen",), ccks_command("pkgm.yaml", "members:\n  - {name: tfidf, kind: tfidf_cosine}\n"
                                             "  - {name: pkgm, kind: pkgm, options: {model: tiny-random}}\n"),
        "ccks", "the pkgm pair kind needs the 'graph' extra (pykeen is not installed): pip install 'prodmatch[graph]'"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_command_without_its_extra_is_one_line_exit_2_and_leaves_nothing(name, tmp_path, shopee_run, ccks_data,
                                                                          monkeypatch, capsys):
    blocked, make_args, command, message = CASES[name]
    data, run = shopee_run
    shutil.copytree(run, tmp_path / "run")
    argv = make_args(tmp_path, data, tmp_path / "run", ccks_data)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    block(monkeypatch, *blocked)
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].startswith(f"prodmatch {command}: error: "), err
    assert message in errors[0] and "pip install 'prodmatch[" in errors[0], errors[0]
    assert "Traceback" not in err
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert after == before, set(after) ^ set(before)  # nothing written, no half run folder


def test_leaderboard_without_matplotlib_skips_the_plots_with_one_warning(tmp_path, shopee_run, monkeypatch, capsys,
                                                                          caplog):
    _, run = shopee_run
    shutil.copytree(run, tmp_path / "oof" / "run")
    block(monkeypatch, "matplotlib", "matplotlib.pyplot")
    with caplog.at_level(logging.WARNING):
        assert main(["leaderboard", "--root", str(tmp_path / "oof")]) == 0
    assert "and 0 plots" in capsys.readouterr().out
    assert (tmp_path / "oof" / "leaderboard.md").is_file() and not list(tmp_path.rglob("*.png"))
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == [f"the leaderboard's PNG plots skipped: matplotlib is not installed ({pip_command('plots')})"]


def test_an_installed_library_that_fails_to_import_is_not_called_missing(monkeypatch, caplog):
    """The warning said "not installed" even when the library was there and its import failed."""
    import importlib

    import prodmatch.extras as extras

    real = importlib.import_module

    def broken(name, *args):
        if name == "matplotlib":
            raise ImportError("libfreetype.so.6: cannot open shared object file")
        return real(name, *args)

    monkeypatch.setattr(extras.importlib, "import_module", broken)
    with caplog.at_level(logging.WARNING, logger="prodmatch.extras"):
        assert optional("matplotlib", "the plots") is None
    (line,) = [r.getMessage() for r in caplog.records]
    assert "importing matplotlib failed: ImportError: libfreetype.so.6" in line and "not installed" not in line
