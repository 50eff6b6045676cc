"""Candidate pairs for the stacker: the union of every model's top-K lists, one row per unordered pair,
with symmetric pair features and the same-label_group label (feature list: stack/README.md)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cpdist
from sklearn.feature_extraction.text import CountVectorizer

from ..errors import DataError
from ..post.union import candidate_pairs, pair_similarities, union_scores
from ..post.units import pair_conflicts

ID_COLUMNS = ("i", "j", "fold", "label")


def unordered_pairs(models, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) with i < j for every pair any model lists in either direction; self pairs dropped."""
    rows, cols, _ = candidate_pairs(models)
    a, b = np.minimum(rows, cols), np.maximum(rows, cols)
    key = np.unique(a[a != b] * n + b[a != b])
    return key // n, key % n


def list_rank(idx: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Position of j in row i's neighbour list (0 = self), or k (the list length) when absent."""
    n, k = idx.shape
    keys = (np.arange(n, dtype=np.int64)[:, None] * n + idx).ravel()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    query = i.astype(np.int64) * n + j
    at = np.clip(np.searchsorted(sorted_keys, query), 0, len(sorted_keys) - 1)
    found = sorted_keys[at] == query
    return np.where(found, order[at] % k, k)


def density(sims: np.ndarray, top: int) -> np.ndarray:
    """Mean similarity of each row's `top` nearest other rows (position 0 is self)."""
    part = sims[:, 1 : top + 1]
    return part.mean(1) if part.shape[1] else np.zeros(len(sims), np.float32)


GRAPH_CHUNK = 250_000  # pairs per sparse row product (memory: pairs x k non-zeros per side)


def neighbour_graph(model) -> sp.csr_matrix:
    """(n, n) similarities of each row to its listed neighbours, self left out (clipped at 0)."""
    n, k = model.idx.shape
    rows = np.repeat(np.arange(n), k)
    cols = model.idx.ravel()
    keep = cols != rows
    data = np.clip(model.sims.ravel()[keep], 0.0, None).astype(np.float32)
    return sp.csr_matrix((data, (rows[keep], cols[keep])), shape=(n, n))


def graph_features(model, i, j, sim) -> dict[str, np.ndarray]:
    """Features of pair (i, j) in one model's top-k graph, less tied to the pool's size than the
    raw similarity: shared neighbours (count and sum of similarity products, 2nd place Shopee's
    graph signal) and the margins of sim(i, j) to each side's best other and k-th similarity."""
    graph = neighbour_graph(model)
    binary = graph.copy()
    binary.data[:] = 1.0
    common = np.empty(len(i), np.float32)
    two_hop = np.empty(len(i), np.float32)
    for s in range(0, len(i), GRAPH_CHUNK):
        a, b = i[s : s + GRAPH_CHUNK], j[s : s + GRAPH_CHUNK]
        common[s : s + GRAPH_CHUNK] = np.asarray(binary[a].multiply(binary[b]).sum(1)).ravel()
        two_hop[s : s + GRAPH_CHUNK] = np.asarray(graph[a].multiply(graph[b]).sum(1)).ravel()
    self_first = model.idx[:, 0] == np.arange(len(model.idx))
    best_other = np.where(self_first, model.sims[:, 1] if model.sims.shape[1] > 1 else 0.0, model.sims[:, 0])
    kth = model.sims[:, -1]
    top_i, top_j = sim - best_other[i], sim - best_other[j]
    kth_i, kth_j = sim - kth[i], sim - kth[j]
    return {
        "common": common, "two_hop": two_hop,
        "margin_top_min": np.minimum(top_i, top_j).astype(np.float32), "margin_top_max": np.maximum(top_i, top_j).astype(np.float32),
        "margin_kth_min": np.minimum(kth_i, kth_j).astype(np.float32), "margin_kth_max": np.maximum(kth_i, kth_j).astype(np.float32),
    }


def title_features(titles, i, j) -> dict[str, np.ndarray]:
    """Lengths (min/max), token Jaccard, normalised Levenshtein distance, unit conflict."""
    titles = np.asarray(titles, dtype=object)
    length = np.fromiter((len(t) for t in titles), np.int64, len(titles))
    try:
        tokens = CountVectorizer(binary=True, lowercase=True, token_pattern=r"(?u)\b\w+\b").fit_transform(titles)
    except ValueError:  # no tokens at all
        tokens = sp.csr_matrix((len(titles), 1))
    tokens = sp.csr_matrix(tokens, dtype=np.float32)
    n_tok = np.asarray(tokens.sum(1)).ravel()
    shared = np.asarray(tokens[i].multiply(tokens[j]).sum(1)).ravel()
    union = n_tok[i] + n_tok[j] - shared
    edit = cpdist(list(titles[i]), list(titles[j]), scorer=Levenshtein.normalized_distance, workers=1) if len(i) else np.zeros(0)
    return {
        "len_min": np.minimum(length[i], length[j]),
        "len_max": np.maximum(length[i], length[j]),
        "token_jaccard": np.divide(shared, union, out=np.zeros(len(i)), where=union > 0).astype(np.float32),
        "edit_distance": np.asarray(edit, np.float32),
        "unit_conflict": pair_conflicts(titles, i, j).astype(np.int8),
    }


def pair_features(pool, names: Sequence[str], nb_thresholds: Mapping[str, float] | None = None,
                  extra: Mapping[str, np.ndarray] | None = None, *, graph: bool = False) -> pd.DataFrame:
    """The candidate table of one pool (`prodmatch.post.pool.Pool`): i, j, features (, label).

    `nb_thresholds` adds blended similarities for the models it names; `extra` holds per-pair
    scores aligned with the returned (i, j) order (or add such columns to the frame afterwards);
    `graph` adds each model's `graph_features`.
    """
    if not names:
        raise DataError("pair features need at least one model")
    nb = dict(nb_thresholds or {})
    raw = [pool.model(m) for m in names]
    blended = {m: pool.model(m, t) for m, t in nb.items() if pool.data[m][0] in ("dense", "sparse")}
    i, j = unordered_pairs(raw + list(blended.values()), pool.n)
    cols: dict[str, np.ndarray] = {"i": i, "j": j}
    sims = pair_similarities(raw, i, j)
    for m, (name, model) in enumerate(zip(names, raw)):
        cols[f"{name}_sim"] = sims[:, m]
        r_ij, r_ji = list_rank(model.idx, i, j), list_rank(model.idx, j, i)
        cols[f"{name}_rank_min"], cols[f"{name}_rank_max"] = np.minimum(r_ij, r_ji), np.maximum(r_ij, r_ji)
        for top in (5, 10):
            d = density(model.sims, top)
            cols[f"{name}_dens{top}_min"] = np.minimum(d[i], d[j])
            cols[f"{name}_dens{top}_max"] = np.maximum(d[i], d[j])
        if pool.data[name][0] == "phash":
            cols[f"{name}_hamming"] = np.rint(64 * (1 - sims[:, m])).astype(np.int16)
        if graph:
            cols.update({f"{name}_{key}": value for key, value in graph_features(model, i, j, sims[:, m]).items()})
    cols["union"] = union_scores(sims).astype(np.float32)
    if blended:
        nb_sims = pair_similarities(list(blended.values()), i, j)
        for m, name in enumerate(blended):
            cols[f"{name}_nb_sim"] = nb_sims[:, m]
        cols["union_nb"] = union_scores(np.c_[nb_sims, sims[:, [names.index(n) for n in names if n not in blended]]]).astype(np.float32)
    if pool.titles is not None:
        cols.update(title_features(pool.titles, i, j))
    for name, values in (extra or {}).items():
        values = np.asarray(values)
        if len(values) != len(i):
            raise DataError(f"extra score {name!r} has {len(values)} values for {len(i)} pairs")
        cols[name] = values
    frame = pd.DataFrame(cols)
    if pool.groups is not None:
        frame["label"] = (pool.groups[i] == pool.groups[j]).astype(np.int8)
    return frame


def candidate_recall(frame: pd.DataFrame, groups) -> float:
    """Share of the pool's true pairs (i < j, same group) that are among the candidates."""
    sizes = np.unique(np.asarray(groups), return_counts=True)[1]
    total = int((sizes * (sizes - 1) // 2).sum())
    return float(frame["label"].sum() / total) if total else 1.0


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every column of a candidate table but ids, fold and label."""
    return [c for c in frame.columns if c not in ID_COLUMNS and c not in ("posting_id_i", "posting_id_j")]
