"""Approximate search backends (faiss IVF-Flat, IVF-PQ, HNSW) of `prodmatch.neighbors`, sized by
`AnnRule` and tuned to its target recall at build time; they register themselves as KNN backends
(`neighbors.BACKENDS` names them, so this module is imported when one is asked for)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from .neighbors import _chunks, _search_faiss, default_chunk, register_backend

log = logging.getLogger(__name__)


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


