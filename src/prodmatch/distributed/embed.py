"""Sharded embedding of a catalogue: each worker loads a saved encoder once (`EncoderPlugin`, run
by every worker on registration and by workers that join later), then embeds the frame shards it
is given with `encoders.inference.embed_frame`; the vectors stay on the workers as `Shard`s."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..io import file_sha256
from ..saved_model import WEIGHTS_FILE
from .shards import Shard, shard_bounds

try:  # the plugin base class; without dask the module still imports (the test skips)
    from distributed import WorkerPlugin
except ImportError:  # pragma: no cover
    WorkerPlugin = object


class EncoderPlugin(WorkerPlugin):
    """Loads `folder`'s encoder (``encoders.load_encoder``) once per worker process; tasks use it
    through `worker_encoder`. `loads` counts loads on that worker (1, unless it restarted)."""

    def __init__(self, folder, threads: int = 1) -> None:
        self.folder, self.threads = str(folder), int(threads)
        self.name = plugin_name(folder)
        self.encoder, self.loads = None, 0

    def setup(self, worker) -> None:
        import torch

        from ..encoders import load_encoder

        torch.set_num_threads(self.threads)
        self.encoder = load_encoder(self.folder)
        self.loads += 1


def plugin_name(folder) -> str:
    """One plugin per saved encoder: its folder and weight file's digest (a retrained encoder in
    the same folder is a new plugin, never a stale cached model)."""
    weights = Path(folder) / WEIGHTS_FILE
    digest = file_sha256(weights)[:12] if weights.is_file() else "none"
    return f"prodmatch-encoder-{Path(folder).resolve()}-{digest}"


def worker_encoder(name: str):
    """The encoder plugin `name` of the worker running this task."""
    from distributed import get_worker

    return get_worker().plugins[name]


def _embed_part(frame: pd.DataFrame, name: str, batch_size: int):
    from ..encoders.inference import embed_frame

    return embed_frame(worker_encoder(name).encoder, frame, batch_size=batch_size, progress=False)


def _plugin_loads(name: str, dask_worker=None) -> int:
    return dask_worker.plugins[name].loads  # Client.run passes the worker it runs on


def embed_shards(client, frame: pd.DataFrame, encoder_folder, n_shards: int, *, batch_size: int = 64,
                 threads: int = 1) -> list[Shard]:
    """The L2-normalised embeddings of `frame`'s rows by the encoder saved in `encoder_folder`, in
    `n_shards` contiguous shards kept on the workers (frame shards are scattered, each embedded
    where it landed); feed them to `search.sharded_knn` or `shards.gather_rows`."""
    plugin = EncoderPlugin(encoder_folder, threads)
    client.register_plugin(plugin, name=plugin.name)
    bounds = shard_bounds(len(frame), n_shards)
    parts = client.scatter([frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])], hash=False)
    futures = [client.submit(_embed_part, part, plugin.name, batch_size, pure=False) for part in parts]
    return [Shard(f, int(a), int(b - a)) for f, a, b in zip(futures, bounds[:-1], bounds[1:])]


def encoder_loads(client, encoder_folder) -> dict[str, int]:
    """Worker address -> how many times that worker loaded the encoder (for checks and logs)."""
    return client.run(_plugin_loads, plugin_name(encoder_folder))
