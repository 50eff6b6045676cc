"""A Dask cluster to run on: processes on this machine (`local_cluster`, loopback only) or an
existing scheduler (`connect`); dask-jobqueue / dask-kubernetes clusters hand out the same Client."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from ..errors import DataError
from ..extras import require

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class ClusterOptions:
    """A LocalCluster of worker processes: one shard per worker by default, one thread each
    (BLAS / faiss threads stay with the worker count, so shards do not oversubscribe cores)."""

    n_workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"  # per worker; "auto": this machine's memory / n_workers
    host: str = "127.0.0.1"  # loopback: nothing listens beyond this machine

    def __post_init__(self) -> None:
        if self.n_workers < 1 or self.threads_per_worker < 1:
            raise DataError(f"ClusterOptions: need n_workers >= 1 and threads_per_worker >= 1, got "
                            f"{self.n_workers} and {self.threads_per_worker}")


@contextmanager
def local_cluster(options: ClusterOptions = ClusterOptions()) -> Iterator["Client"]:
    """A Client on a fresh LocalCluster of worker processes (dashboard off); both closed on exit."""
    require("distributed", "prodmatch.distributed")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=options.n_workers, threads_per_worker=options.threads_per_worker,
                      processes=True, host=options.host, dashboard_address=None,
                      # no dashboard; the scheduler's health routes on a free loopback port, not 8787
                      scheduler_kwargs={"dashboard_address": f"{options.host}:0"},
                      memory_limit=options.memory_limit) as cluster, Client(cluster) as client:
        client.run(_limit_threads, options.threads_per_worker)
        yield client


CONNECT_TIMEOUT = "10s"  # a scheduler answers in milliseconds; nothing listening should not cost 30 s


def connect(address: str, timeout: str = CONNECT_TIMEOUT) -> "Client":
    """A Client of a running scheduler (``tcp://host:8786``: dask-ssh, dask-jobqueue, dask-kubernetes)."""
    require("distributed", "prodmatch.distributed")
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise DataError(f"--dask {address}: no Dask scheduler answers there within {timeout} "
                        f"({type(err).__name__}); start one (dask scheduler) or use --dask local") from None


@contextmanager
def open_cluster(spec: str) -> Iterator["Client"]:
    """The cluster a `--dask` flag names: ``local`` (a LocalCluster of 2 worker processes),
    ``local:N`` (N of them) or a scheduler address (``tcp://host:8786``); closed on exit."""
    name, _, count = spec.partition(":")
    if name == "local":
        if count and not count.isdigit():
            raise DataError(f"--dask {spec!r}: write local:N with N a worker count, e.g. local:4")
        with local_cluster(ClusterOptions(n_workers=int(count) if count else 2)) as client:
            yield client
        return
    if "://" not in spec:
        raise DataError(f"--dask {spec!r}: give local, local:N or a scheduler address like tcp://host:8786")
    with connect(spec) as client:
        yield client


def current_client() -> "Client":
    """The Client the `dask*` KNN backends run on: the one this process (or task) made last."""
    require("distributed", "the dask* KNN backends")
    from distributed import get_client

    try:
        return get_client()
    except ValueError:
        raise DataError("the dask* KNN backends need a Dask cluster: pass --dask local (command line) or open one "
                        "with `prodmatch.distributed.local_cluster()` (Python)") from None


def worker_count(client) -> int:
    """Workers the scheduler knows now (at least 1: a cluster still starting gets one shard)."""
    return max(1, len(client.scheduler_info(n_workers=-1)["workers"]))


def _limit_threads(threads: int) -> None:
    """faiss (and torch, where a task imported it already) threads of a worker = its Dask threads."""
    import sys

    import faiss

    faiss.omp_set_num_threads(threads)
    if "torch" in sys.modules:  # importing torch would cost every worker seconds; the encoder plugin sets it
        sys.modules["torch"].set_num_threads(threads)
