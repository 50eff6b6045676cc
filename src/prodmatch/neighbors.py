"""Cosine top-K neighbours with interchangeable backends that return the same sorted arrays, so callers
never branch on the backend: exact (faiss on CPU, cuML / torch on GPU), approximate (faiss IVF-Flat,
IVF-PQ, HNSW, sized by `AnnRule`) and sharded on a Dask cluster (`dask*`, prodmatch.distributed);
prodmatch/README.md."""
from __future__ import annotations

import importlib.util
import logging
import warnings
from functools import partial
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import DataError, preview

log = logging.getLogger(__name__)
Backend = Callable[[np.ndarray, np.ndarray, int, int], "tuple[np.ndarray, np.ndarray]"]
BACKENDS: dict[str, Backend] = {}
CHUNK_BYTES = 256 * 2**20  # a (chunk x N) float32 block of similarities is about this big
NORM_TOLERANCE = 1e-3
UNIT_TOLERANCE = 1e-6  # rows this close to unit norm are kept bit for bit: normalising twice changes nothing
TIE_MARGIN = 8  # extra neighbours a search lists (faiss, sparse), so ties at the k-th place resolve to the lowest indices


def register_backend(name: str):
    """Decorator adding a search function ``(base, query, k, chunk) -> (sims, idx)`` to BACKENDS."""

    def add(fn: Backend) -> Backend:
        BACKENDS[name] = fn
        return fn

    return add


def knn(emb, k: int, *, query=None, backend: str = "auto", chunk: int | None = None):
    """Exact top-k cosine neighbours of `query` (default: `emb` itself) among the rows of `emb`.

    Returns ``(sims float32, idx int64)`` of shape ``(n_query, min(k, n))``; see prodmatch/README.md.
    """
    base = normalize_rows(emb, "emb")
    k = _check_k(k, len(base))
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
    sims, idx = BACKENDS[name](base, q, k, int(chunk))
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
    if backend not in BACKENDS:
        raise ValueError(f"unknown knn backend {backend!r}; choose from {sorted(BACKENDS)} or 'auto'")
    return backend


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


def _check_k(k, n: int) -> int:
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


# ------------------------------------------------------------------------------ approximate search
@dataclass(frozen=True)
class AnnRule:
    """How the approximate backends size their index for n base rows: IVF cells ``nlist =
    cells_per_sqrt_n * sqrt(n)`` (at least 39 training rows per cell, faiss' floor), ``nprobe =
    nlist * probe_share`` (at least `min_probe`); PQ codes of one byte per `pq_dims_per_code`
    dimensions re-ranked exactly over `refine_factor` x k candidates; HNSW with `hnsw_m` links,
    `ef_construction`, and ``ef_search = max(ef_search, 2 k)``. IVF centroids are trained on a
    seeded sample of `train_rows_per_cell` x nlist rows (k-means cost grows with the sample). Below
    `min_rows` base rows an index does not pay (and PQ cannot train its 256 codes): exact search.

    Those are starting points: a built index is tuned to `target_recall` (None: not tuned) of
    recall@k against exact search, measured on `recall_sample` seeded base rows as queries (k: the
    search's, `recall_k` for an index built ahead of its searches), by doubling nprobe (up to
    nlist), the PQ re-rank's k_factor (up to `max_refine_factor`) or efSearch (up to
    `max_ef_search`), whichever gains most, until the target is met (`AnnTuning`)."""

    min_rows: int = 1000
    cells_per_sqrt_n: float = 4.0
    train_rows_per_cell: int = 64
    probe_share: float = 1 / 16
    min_probe: int = 8
    pq_dims_per_code: int = 4
    refine_factor: int = 4
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    target_recall: float | None = 0.99
    recall_sample: int = 512
    recall_k: int = 50
    max_refine_factor: int = 64
    max_ef_search: int = 4096

    def nlist(self, n: int) -> int:
        return int(max(1, min(round(self.cells_per_sqrt_n * np.sqrt(n)), n // 39)))

    def nprobe(self, nlist: int) -> int:
        return int(min(nlist, max(self.min_probe, round(nlist * self.probe_share))))

    def pq_codes(self, dim: int) -> int:
        """The most sub-quantisers <= dim / pq_dims_per_code that divide dim (faiss needs a divisor)."""
        target = max(1, dim // self.pq_dims_per_code)
        return max(m for m in range(1, target + 1) if dim % m == 0)


ANN_RULE = AnnRule()


def _ann_search(index, base, query, k, chunk):
    """Search `index` by chunks; rows where it found fewer than k neighbours (an IVF probe of
    sparse cells) are searched again exactly, so every row has k real neighbours."""
    sims = np.empty((len(query), k), np.float32)
    idx = np.empty((len(query), k), np.int64)
    for s in _chunks(len(query), chunk):
        sims[s], idx[s] = index.search(query[s], k)
    short = np.flatnonzero((idx < 0).any(1))
    if len(short):
        sims[short], idx[short] = _search_faiss(base, query[short], k, chunk)
    return sims, idx


def _ivf_index(base, spec: str, rule: AnnRule | None = None):
    """A trained and filled faiss IVF index from a factory string (``{nlist}`` filled in for n rows)."""
    import faiss

    rule = rule or ANN_RULE
    n, dim = base.shape
    nlist = rule.nlist(n)
    index = faiss.index_factory(dim, spec.format(nlist=nlist, pq=rule.pq_codes(dim)), faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    if hasattr(ivf, "do_polysemous_training"):  # IVF-PQ: it only renumbers codes for Hamming filters we never use,
        ivf.do_polysemous_training = False  # and took most of the build (14 of 16 s on 6,000 x 32)
    sample = rule.train_rows_per_cell * nlist
    rows = np.sort(np.random.default_rng(0).choice(n, sample, replace=False)) if sample < n else slice(None)
    index.train(np.ascontiguousarray(base[rows]))
    index.add(base)
    ivf.nprobe = rule.nprobe(nlist)
    if spec.endswith("RFlat"):
        faiss.downcast_index(index).k_factor = rule.refine_factor
    return index


def _hnsw_index(base):
    import faiss

    index = faiss.IndexHNSWFlat(base.shape[1], ANN_RULE.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ANN_RULE.ef_construction
    index.add(base)
    return index


ANN_INDEXES = {  # backend -> base -> a filled faiss index (k-independent: built once, searched many times)
    "faiss_ivf": lambda base: _ivf_index(base, "IVF{nlist},Flat"),
    "faiss_ivfpq": lambda base: _ivf_index(base, "IVF{nlist},PQ{pq}x8,RFlat"),
    "faiss_hnsw": _hnsw_index,
}


@dataclass
class AnnTuning:
    """What :func:`build_index` chose: search parameters (nprobe, k_factor, efSearch) and the
    recall@k they reach against exact search on `queries` sampled base rows. The last build's is
    `neighbors.LAST_TUNING`; an index carries its own as ``index.tuning``."""

    backend: str
    k: int
    queries: int
    target: float
    recall: float
    params: dict = field(default_factory=dict)

    @property
    def reached(self) -> bool:
        return self.recall >= self.target

    def __str__(self) -> str:
        params = ", ".join(f"{name} {value}" for name, value in self.params.items())
        if self.reached:
            return (f"{self.backend}: {params} reaches recall@{self.k} {self.recall:.3f} on {self.queries} "
                    f"sampled queries (target {self.target})")
        return (f"{self.backend}: recall@{self.k} {self.recall:.3f} on {self.queries} sampled queries at "
                f"{params} (the cap) misses the target {self.target}")


LAST_TUNING: AnnTuning | None = None


def _knobs(index, k: int, rule: AnnRule):
    """The index's search parameters, name -> (setter, start value, cap), and the bytes a query
    reads at given values (what a doubling costs: IVF lists, then the PQ re-rank's exact rows)."""
    import faiss

    if hasattr(index, "hnsw"):
        knob = {"efSearch": (partial(setattr, index.hnsw, "efSearch"), max(rule.ef_search, 2 * k), rule.max_ef_search)}
        return knob, lambda p: p["efSearch"]
    ivf = faiss.extract_index_ivf(index)
    knobs = {"nprobe": (partial(setattr, ivf, "nprobe"), ivf.nprobe, ivf.nlist)}
    if isinstance(index, faiss.IndexRefine):
        knobs["k_factor"] = (partial(setattr, index, "k_factor"), int(index.k_factor), rule.max_refine_factor)
    per_list, row = ivf.ntotal / ivf.nlist * ivf.code_size, 4 * index.d
    return knobs, lambda p: p["nprobe"] * per_list + p.get("k_factor", 0) * k * row


def tune_index(name: str, index, base, k: int, rule: AnnRule | None = None) -> AnnTuning:
    """Raise `index`'s search parameters until recall@k on a seeded sample of base rows (as queries)
    reaches ``rule.target_recall`` against exact search: each round doubles the parameter that gains
    most recall per byte more read, until the target or every cap is reached (then a WARNING). A found
    neighbour counts when it is as similar as the exact k-th (ties with other ids are hits)."""
    global LAST_TUNING
    rule = rule or ANN_RULE
    n = len(base)
    rows = np.sort(np.random.default_rng(0).choice(n, rule.recall_sample, replace=False)) if rule.recall_sample < n else np.arange(n)
    query, chunk = base[rows], default_chunk(n)
    kth = _search_faiss(base, query, k, chunk)[0][:, -1:] - 1e-5

    def recall(**params) -> float:
        for p, v in params.items():
            knobs[p][0](v)
        found = _ann_search(index, base, query, k, chunk)[0]
        return float((found >= kth).sum() / found.size)

    knobs, work = _knobs(index, k, rule)
    chosen = {p: start for p, (_, start, _) in knobs.items()}
    got = recall(**chosen)
    while got < rule.target_recall:
        steps = [{**chosen, p: min(2 * chosen[p], cap)} for p, (_, _, cap) in knobs.items() if chosen[p] < cap]
        if not steps:
            break
        trials = [(recall(**step), step) for step in steps]
        got, chosen = max(trials, key=lambda t: (t[0] - got) / (work(t[1]) - work(chosen)))  # the first of equals
    for p, v in chosen.items():  # leave the index at the chosen parameters (the last trial may have moved one)
        knobs[p][0](v)
    tuning = AnnTuning(name, k, len(rows), rule.target_recall, round(got, 4), chosen)
    (log.info if tuning.reached else log.warning)("%s", tuning)
    object.__setattr__(index, "tuning", tuning)  # faiss' wrappers refuse new attributes through setattr
    LAST_TUNING = tuning
    return tuning


def build_index(name: str, base, k: int | None = None):
    """The filled `name` index over unit rows `base`, or None below `AnnRule.min_rows` (exact search
    there: an index does not pay), its search parameters tuned to ``AnnRule.target_recall`` of
    recall@k (k: `AnnRule.recall_k` when the searches' k is not known yet; :func:`tune_index`).
    Keep it with `base` to search many query batches."""
    if name not in ANN_INDEXES:
        raise ValueError(f"no index for backend {name!r}; choose from {sorted(ANN_INDEXES)}")
    if len(base) < ANN_RULE.min_rows:
        return None
    index = ANN_INDEXES[name](base)
    if ANN_RULE.target_recall is not None:
        tune_index(name, index, base, min(k or ANN_RULE.recall_k, len(base)))
    return index


def search_index(index, base, query, k: int, chunk: int):
    """(sims, idx) of `query` in a :func:`build_index` result (None: exact faiss over `base`); HNSW
    searches with ``efSearch = max(tuned efSearch (else ef_search), 2 k)``."""
    if index is None:
        return _search_faiss(base, query, k, chunk)
    if hasattr(index, "hnsw"):
        tuning = getattr(index, "tuning", None)
        index.hnsw.efSearch = max(tuning.params["efSearch"] if tuning else ANN_RULE.ef_search, 2 * k)
    return _ann_search(index, base, query, k, chunk)


def _approximate(name: str, base, query, k, chunk):
    """Build the `name` index over `base` (tuned for this k) and search it once."""
    return search_index(build_index(name, base, k), base, query, k, chunk)


@register_backend("faiss_ivf")
def _search_faiss_ivf(base, query, k, chunk):
    """faiss IVF-Flat (approximate): exact vectors in nlist ~ 4 sqrt(n) cells, nprobe of them searched."""
    return _approximate("faiss_ivf", base, query, k, chunk)


@register_backend("faiss_ivfpq")
def _search_faiss_ivfpq(base, query, k, chunk):
    """faiss IVF-PQ (approximate, 1 byte per 4 dims) with an exact re-rank of refine_factor x k candidates."""
    return _approximate("faiss_ivfpq", base, query, k, chunk)


@register_backend("faiss_hnsw")
def _search_faiss_hnsw(base, query, k, chunk):
    """faiss HNSW-Flat (approximate graph search, no training)."""
    return _approximate("faiss_hnsw", base, query, k, chunk)


# ------------------------------------------------------------------------------ sharded on a Dask cluster
DISTRIBUTED = {"dask": "faiss", "dask_ivf": "faiss_ivf", "dask_ivfpq": "faiss_ivfpq", "dask_hnsw": "faiss_hnsw"}
"""Cluster backend -> the backend each shard runs: the base rows are split into one shard per
worker of the current Dask client, every shard searched where it lives, the lists merged."""


def _search_on_cluster(shard_backend: str, base, query, k, chunk):
    from .distributed.search import cluster_search  # dask is imported only when a cluster is asked for

    return cluster_search(base, query, k, chunk, shard_backend)


for _name, _shard_backend in DISTRIBUTED.items():
    register_backend(_name)(partial(_search_on_cluster, _shard_backend))
