"""Cosine top-K neighbours with interchangeable backends that return the same sorted arrays, so callers
never branch on the backend: exact (faiss on CPU, cuML / torch on GPU), approximate (faiss IVF-Flat,
IVF-PQ, HNSW: `prodmatch.ann`) and sharded on a Dask cluster (`dask*`: prodmatch.distributed), both
registered by their own modules;
prodmatch/README.md."""
from __future__ import annotations

import importlib.util
import logging
import warnings
from typing import Callable

import numpy as np

from .errors import DataError, preview
from .registry import Registry

log = logging.getLogger(__name__)
Backend = Callable[[np.ndarray, np.ndarray, int, int], "tuple[np.ndarray, np.ndarray]"]
CHUNK_BYTES = 256 * 2**20  # a (chunk x N) float32 block of similarities is about this big
NORM_TOLERANCE = 1e-3
UNIT_TOLERANCE = 1e-6  # rows this close to unit norm are kept bit for bit: normalising twice changes nothing
TIE_MARGIN = 8  # extra neighbours a search lists (faiss, sparse), so ties at the k-th place resolve to the lowest indices


# Search functions ``(base, query, k, chunk) -> (sims, idx)`` by name. The approximate and the sharded
# backends are registered by the modules that implement them, imported on first use (dask stays
# unimported until a cluster search is asked for).
BACKENDS = Registry("KNN backend", builtins={
    **{name: f"prodmatch.ann:_search_{name}" for name in ("faiss_ivf", "faiss_ivfpq", "faiss_hnsw")},
    **{name: f"prodmatch.distributed.search:search_{name}" for name in ("dask", "dask_ivf", "dask_ivfpq", "dask_hnsw")},
})
register_backend = BACKENDS.register


def knn(emb, k: int, *, query=None, backend: str = "auto", chunk: int | None = None):
    """Exact top-k cosine neighbours of `query` (default: `emb` itself) among the rows of `emb`.

    Returns ``(sims float32, idx int64)`` of shape ``(n_query, min(k, n))``; see prodmatch/README.md.
    """
    base = normalize_rows(emb, "emb")
    k = check_k(k, len(base))
    q = base if query is None else normalize_rows(query, "query")
    if q.shape[1] != base.shape[1]:
        raise DataError(f"query has {q.shape[1]} columns but emb has {base.shape[1]}")
    if chunk is None:
        chunk = default_chunk(len(base))
    if int(chunk) < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    name = resolve_backend(backend)
    if len(q) == 0:
        return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
    sims, idx = BACKENDS.get(name)(base, q, k, int(chunk))
    return sort_neighbours(sims, idx, self_search=query is None)


def sort_neighbours(sims, idx, *, self_search: bool):
    """The common finish of every search: clip to [-1, 1], order ties by index, self first."""
    sims = np.clip(np.asarray(sims, dtype=np.float32), -1.0, 1.0)
    sims, idx = order_ties(sims, np.asarray(idx, dtype=np.int64))
    if self_search:
        sims, idx = _self_first(sims, idx)
    return sims, idx


def resolve_backend(backend: str) -> str:
    """The registry name `backend` stands for: "auto" is cuml on CUDA (torch there if cuml is not
    installed), faiss otherwise. CUDA is asked of torch: cuml imports fine without a GPU."""
    if backend == "auto":
        if not _cuda_available():
            return "faiss"
        return "cuml" if _cuml_installed() else "torch"
    BACKENDS.get(backend)  # the one "unknown KNN backend ... did you mean" error
    return backend


def backend_names() -> list[str]:
    """Every KNN backend name, the plugins' included (without importing them)."""
    return BACKENDS.names()


def default_chunk(n_base: int) -> int:
    """Query rows per chunk so that one chunk's similarity block is about CHUNK_BYTES."""
    return max(1, CHUNK_BYTES // (4 * max(1, n_base)))


def normalize_rows(x, name: str = "emb") -> np.ndarray:
    """Validated float32 copy of a 2-D matrix with unit rows; warns when rows were not unit already."""
    if hasattr(x, "tocsr") and hasattr(x, "nnz"):  # scipy.sparse: np.asarray would make a 0-d object array
        raise DataError(f"{name} is a scipy sparse matrix; the dense search needs an array "
                        "(sparse TF-IDF rows are searched by similarity.SparseModel.search)")
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{name} must be a 2-D matrix, got shape {x.shape}")
    if x.shape[1] == 0:
        raise DataError(f"{name} has no columns")
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise DataError(f"{name} has NaN/inf in {int(bad.sum())} row(s): {preview(np.flatnonzero(bad).tolist())}")
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))  # float64: no overflow for huge values
    zero = norms == 0
    if zero.any():
        raise DataError(f"{name} has {int(zero.sum())} all-zero row(s): {preview(np.flatnonzero(zero).tolist())}")
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        warnings.warn(
            f"{name}: {int(off.sum())} row(s) not L2-normalised (e.g. rows {preview(np.flatnonzero(off).tolist())}); normalising",
            RuntimeWarning,
            stacklevel=3,
        )
    # unit rows stay as they are (float32 rounding would move their last bits on every call, and
    # a sharded search must see the very floats one machine's search sees)
    scale = np.where(np.abs(norms - 1.0) <= UNIT_TOLERANCE, 1.0, norms).astype(np.float32)
    return x / scale[:, None]


def check_k(k, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if n == 0:
        raise DataError("emb has no rows to search")
    return int(min(k, n))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def _cuml_installed() -> bool:
    return importlib.util.find_spec("cuml") is not None


def order_ties(sims: np.ndarray, idx: np.ndarray):
    """Re-sort each row by (similarity desc, index asc) so backends agree on tie order (and a
    sharded search's merge, `prodmatch.distributed.merge`, keeps what one machine would)."""
    by_idx = np.argsort(idx, axis=1, kind="stable")
    sims, idx = np.take_along_axis(sims, by_idx, 1), np.take_along_axis(idx, by_idx, 1)
    by_sim = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(sims, by_sim, 1), np.take_along_axis(idx, by_sim, 1)


def _self_first(sims: np.ndarray, idx: np.ndarray):
    """Put row i's own index at position 0 with similarity 1.0 (moving it, or dropping the last)."""
    n, k = idx.shape
    rows = np.arange(n)
    bad = np.flatnonzero(idx[:, 0] != rows)
    if len(bad):
        sub = idx[bad]
        is_self = sub == bad[:, None]
        # drop the self entry if present, else the last one; then prepend self
        drop = np.where(is_self.any(1), is_self.argmax(1), k - 1)
        keep = np.ones_like(sub, dtype=bool)
        keep[np.arange(len(bad)), drop] = False
        idx[bad] = np.column_stack([bad, sub[keep].reshape(len(bad), k - 1)])
        sims[bad] = np.column_stack([np.ones(len(bad), np.float32), sims[bad][keep].reshape(len(bad), k - 1)])
    sims[:, 0] = 1.0
    return sims, idx


def _chunks(n: int, chunk: int):
    for start in range(0, n, chunk):
        yield slice(start, min(n, start + chunk))


FULL_LIST_ENTRIES = 1 << 22  # a tie-run re-search holds at most this many (sim, id) pairs (~50 MB)


@register_backend("faiss")
def _search_faiss(base, query, k, chunk):
    """faiss IndexFlatIP: exact inner product (the CPU default). faiss' heap keeps an arbitrary
    one of values tied at the k-th place (the order it met them), so it lists TIE_MARGIN more and
    keeps the lowest indices of a tie, as torch does and a sharded search's merge needs."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    extra = min(TIE_MARGIN, len(base) - k)
    sims, idx = _flat_lists(index, query, k + extra, chunk)
    if not extra:
        return sims, idx
    sims, idx = order_ties(sims, idx)
    # a tie run that fills the margin may go on past it: those rows are searched over every base row
    long = np.flatnonzero(sims[:, -1] == sims[:, k - 1]) if k + extra < len(base) else np.zeros(0, np.int64)
    block = max(1, min(chunk, FULL_LIST_ENTRIES // len(base)))  # rows x len(base) lists: bounded memory
    for s in _chunks(len(long), block):
        rows = long[s]
        sims[rows], idx[rows] = (a[:, : k + extra] for a in order_ties(*_flat_lists(index, query[rows], len(base), block)))
    return np.ascontiguousarray(sims[:, :k]), np.ascontiguousarray(idx[:, :k])


def _flat_lists(index, query, k, chunk):
    """``index.search`` of `query` by chunks of rows."""
    sims = np.empty((len(query), k), np.float32)
    idx = np.empty((len(query), k), np.int64)
    for s in _chunks(len(query), chunk):
        sims[s], idx[s] = index.search(query[s], k)
    return sims, idx


@register_backend("torch")
def _search_torch(base, query, k, chunk):
    """Chunked matmul + topk with torch, on CUDA when available (the fallback backend)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    b = torch.from_numpy(base).to(device)
    sims = np.empty((len(query), k), np.float32)
    idx = np.empty((len(query), k), np.int64)
    with torch.no_grad():
        for s in _chunks(len(query), chunk):
            block = torch.from_numpy(query[s]).to(device) @ b.T
            extra = int(k < block.shape[1])  # one more to see whether the k-th value is tied beyond
            values, indices = torch.topk(block, k + extra, dim=1, largest=True, sorted=True)
            if extra:
                _lowest_index_ties(block, values, indices)
                values, indices = values[:, :k], indices[:, :k]
            sims[s], idx[s] = values.cpu().numpy(), indices.cpu().numpy()
            del block, values, indices
    return sims, idx


def _lowest_index_ties(block, values, indices) -> None:
    """Where the k-th value is tied beyond the top-k, keep the lowest indices (as the faiss backend does), in place.

    `values`/`indices` hold the top k+1 sorted descending; a row is ambiguous when its (k+1)-th
    value equals its k-th: its slots from the first tied one on get the tied columns in index order.
    """
    import torch

    slots = indices.shape[1]
    amb = torch.nonzero(values[:, -1] == values[:, -2]).ravel()
    if len(amb) == 0:  # the usual case outside exact duplicates
        return
    v = values[amb, -1:]
    n_above = (values[amb] > v).sum(1)
    rr, cc = torch.nonzero(block[amb] == v, as_tuple=True)  # row-major: index order within a row
    counts = torch.bincount(rr, minlength=len(amb))
    rank = torch.arange(len(rr), device=rr.device) - (torch.cumsum(counts, 0) - counts)[rr]
    pos = n_above[rr] + rank
    keep = pos < slots
    sub = indices[amb]
    sub[rr[keep], pos[keep]] = cc[keep]
    indices[amb] = sub


@register_backend("cuml")
def _search_cuml(base, query, k, chunk):  # pragma: no cover - needs a GPU and cuml-cu13
    """cuML brute-force cosine NearestNeighbors (GPU); imported lazily, chosen only on CUDA."""
    from cuml.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="cosine", output_type="numpy")
    nn.fit(base)
    sims = np.empty((len(query), k), np.float32)
    idx = np.empty((len(query), k), np.int64)
    for s in _chunks(len(query), chunk):
        dist, ind = nn.kneighbors(query[s], n_neighbors=k, return_distance=True)
        sims[s], idx[s] = 1.0 - np.asarray(dist, np.float32), np.asarray(ind, np.int64)
    return sims, idx
