"""The `prodmatch` command: one sub-command per pipeline stage (`prodmatch.commands`, registered with
`@command` like timm's models), each a thin call into the API; bad input (DataError) is printed as
one line, exit code 2."""
from __future__ import annotations

import argparse
import contextlib
import logging
import sys

from .commands import kdd, pairs, shopee, tasks  # noqa: F401  (importing registers their sub-commands)
from .commands._base import COMMANDS
from .errors import DataError

class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors as every other error: one line, `prodmatch <cmd>: error: ...`,
    exit 2 (`--help` still shows the usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = OneLineParser(prog="prodmatch", description="Find the postings that sell the same product (Shopee, CCKS 2022 task 9.2, KDD Cup 2020 recall).")
    parser.add_argument("--version", action="version", version=f"prodmatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--dask", metavar="CLUSTER", help="run the dask* KNN backends on a Dask cluster: local (2 worker "
                        "processes here), local:N, or a scheduler address such as tcp://host:8786")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        arguments(p)
        p.set_defaults(handler=run)
    return parser


def cluster_for(spec: str | None):
    """The Dask client a `--dask` flag asks for, open while the command runs (none: a no-op)."""
    if spec is None:
        return contextlib.nullcontext()
    from .distributed import open_cluster
    from .extras import check

    check("distributed", f"--dask {spec}")

    return open_cluster(spec)


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or argparse's own one-line usage error (exit 2)
        return done.code if isinstance(done.code, int) else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its CPU-feature probing is noise
    try:
        if str(getattr(args, "backend", None)).startswith("dask") and args.dask is None:
            raise DataError(f"--backend {args.backend} runs on a Dask cluster: add --dask local (or --dask tcp://host:8786)")
        with cluster_for(args.dask):
            args.handler(args)
    except (DataError, FileExistsError, FileNotFoundError) as err:
        print(f"prodmatch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: one line, the shell's exit status for SIGINT
        print(f"prodmatch {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

