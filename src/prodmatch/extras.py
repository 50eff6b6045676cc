"""Optional libraries: which pip extra installs each, and one-line errors naming the pip command.

The base install runs the default Shopee path and `prodmatch demo`; the rest sits behind extras
(setup.py ``EXTRAS``, ``all`` = every one of them):

    graph   torch-geometric, pykeen   the GCN and PKGM pair kinds (ccks / pairs configs with a gcn / pkgm member)
    dask    dask, distributed         prodmatch.distributed, `--dask` and the dask* KNN backends
    plots   matplotlib                PNG plots (leaderboard, stack/importance.png): skipped with a warning without it
    bench   sentence-transformers     scripts under bench/ only

`require` imports a module of an extra or raises `DataError` (the CLI prints it as one line, exit 2);
`check` tests the same without importing (for failing before any work); `optional` returns None with
a one-line warning, for output a command can do without.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from types import ModuleType

from .errors import DataError

log = logging.getLogger(__name__)

EXTRAS: dict[str, tuple[str, ...]] = {  # extra -> the top-level modules it installs (setup.py pins them)
    "graph": ("torch_geometric", "pykeen"),
    "dask": ("dask", "distributed"),
    "plots": ("matplotlib",),
    "bench": ("sentence_transformers",),
}
EXTRA_OF = {module: extra for extra, modules in EXTRAS.items() for module in modules}


def extra_of(module: str) -> str:
    """The extra that installs `module` (a dotted name: its top-level package decides)."""
    top = module.partition(".")[0]
    if top not in EXTRA_OF:
        raise KeyError(f"{top!r} is no optional library of prodmatch; known: {', '.join(sorted(EXTRA_OF))}")
    return EXTRA_OF[top]


def pip_command(extra: str) -> str:
    return f"pip install 'prodmatch[{extra}]'"


def missing_message(module: str, what: str, err: ImportError | None = None) -> str:
    """One line: what needs which extra, and the pip command that installs it."""
    extra, top = extra_of(module), module.partition(".")[0]
    why = f"{top} is not installed" if err is None or not installed(top) else \
        f"importing {module} failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return f"{what} needs the {extra!r} extra ({why}): {pip_command(extra)}"


def installed(module: str) -> bool:
    """Whether `module`'s top-level package can be imported (found, not imported; None in sys.modules: no)."""
    try:
        return importlib.util.find_spec(module.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def check(module: str, what: str) -> None:
    """DataError naming the pip command unless `module` is installed (nothing is imported)."""
    if not installed(module):
        raise DataError(missing_message(module, what))


def require(module: str, what: str) -> ModuleType:
    """`module` imported, or DataError: ``<what> needs the 'graph' extra (...): pip install 'prodmatch[graph]'``."""
    extra_of(module)  # a typo in the name is a bug here, never a user's missing extra
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise DataError(missing_message(module, what, err)) from None


def optional(module: str, what: str) -> ModuleType | None:
    """`module` imported, or None after one warning line saying `what` is skipped and how to get it."""
    try:
        return require(module, what)
    except DataError as err:
        top = module.partition(".")[0]
        if installed(top):  # there but broken: say why, not "not installed"
            log.warning("%s skipped: %s", what, err)
        else:
            log.warning("%s skipped: %s is not installed (%s)", what, top, pip_command(extra_of(module)))
        return None
