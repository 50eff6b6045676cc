"""The command registry (`@command`) and what the sub-commands share: flag types that check paths and
numbers at parse time, the --backend flag, a run folder made for a stage."""
from __future__ import annotations

import argparse
import importlib.util

from ..config import override_argument, setting  # noqa: F401  (setting: the numeric flag type every command module uses)
from ..errors import DataError
from ..registry import Registry

COMMANDS = Registry("command")  # name -> (help, arguments(parser), run(args)), in the order --help lists them


def command(name: str, help: str):
    """Register ``fn(args)`` as sub-command `name`; the decorated ``fn.arguments(parser)`` adds flags."""

    def deco(run):
        def attach(arguments):
            COMMANDS.register(name, (help, arguments, run))
            return run

        run.arguments = attach
        return run

    return deco


def unsupervised_methods() -> list[str]:
    """Embedding methods fitted on the data itself (`prodmatch.embedders`), for choices and errors."""
    from ..embedders import embedder_names

    return embedder_names(trained=False)


def with_backend(config, backend: str | None, config_class):
    """A stage config (a YAML path, a shipped name or None) of `config_class` with `backend` set when given."""
    if backend is None:
        return config
    from ..config import load_config, to_dict

    return {**to_dict(load_config(config if config is not None else {}, config_class)), "backend": checked_backend(backend)}


def data_folder(text: str) -> str:
    """An argparse `type` for --data: an existing folder (a missing one, or a file, is refused at parse time)."""
    from pathlib import Path

    if not Path(text).exists():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not a folder (--data names the folder holding the data files)")
    return text


def out_folder(text: str) -> str:
    """An argparse `type` for an output folder: refused at parse time when a file is there, or its
    parent is a file or not writable (`io.out_path_problem`)."""
    return _writable(text, folder=True)


def out_file(text: str) -> str:
    """An argparse `type` for an output file (see `out_folder`)."""
    return _writable(text, folder=False)


def _writable(text: str, *, folder: bool) -> str:
    from pathlib import Path

    from ..io import out_path_problem

    problem = out_path_problem(Path(text), folder=folder)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def checked_backend(backend: str | None) -> str:
    """A `--backend` flag's value (None: auto), refused with the known names when unknown."""
    from ..neighbors import BACKENDS

    if backend is None:
        return "auto"
    if backend != "auto":
        BACKENDS.get(backend, where=f"--backend {backend} (or auto)")
    if backend == "cuml" and importlib.util.find_spec("cuml") is None:
        raise DataError("--backend cuml needs cuML (RAPIDS), which is not installed here; use --backend auto")
    if backend == "cuml" and not _cuda_available():
        raise DataError("--backend cuml needs a CUDA GPU, and none is visible here; use --backend auto")
    return backend


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def predicted_line(predicted: dict | None, t, t_min2) -> str:
    if not predicted:
        return f"no test size known (pass --test-rows): thresholds {t} / Min2 {t_min2} are the CV pools' own"
    return (f"predicted at {predicted['test_rows']:,} test rows: F1 {predicted['f1']:.4f} (P {predicted['precision']:.3f}, "
            f"R {predicted['recall']:.3f}) with threshold {t}, Min2 {t_min2}")


def run_stage_arguments(p, *, config_help: str, writes: str) -> None:
    """Flags shared by the stages that read embedding runs (match, stack)."""
    p.add_argument("--run", required=True, action="append", help="embedding run folder (repeat to combine runs)")
    p.add_argument("--data", type=data_folder, help="folder with the train.csv the run came from (titles for unit/text features)")
    p.add_argument("--config", help=config_help)
    override_argument(p)
    p.add_argument("--overwrite", action="store_true", help=f"replace the run's {writes}")
    p.add_argument("--test-rows", type=setting("test_rows"), default=None,
                   help="test size the thresholds are tuned for (default: the run's test.csv rows; a Kaggle "
                        "kernel's bundle also adapts to the size predict meets)")


def in_run_folder(args, prefix: str, run):
    """`run(out)` in ``--out``, or in a fresh ``oof/<prefix>-<config>-<time>/`` that is removed again
    when the run fails before writing anything."""
    from pathlib import Path

    from ..io import new_run_dir

    root_existed = Path("oof").is_dir()
    out = Path(args.out) if args.out else new_run_dir("oof", f"{prefix}-{Path(str(args.config)).stem}")
    try:
        return run(out)
    except BaseException:
        if not args.out and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the fresh default folder stays only for a finished run
            if not root_existed and not any(out.parent.iterdir()):
                out.parent.rmdir()  # and oof/ only if it was there before
        raise


def backend_argument(p, default: str) -> None:
    from ..neighbors import backend_names

    p.add_argument("--backend", help=f"KNN backend ({default}): {', '.join(backend_names())} (dask*: with --dask)")

