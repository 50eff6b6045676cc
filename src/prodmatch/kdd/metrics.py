"""NDCG@5 as the KDD Cup 2020 Multimodalities Recall scorer computes it, vectorised over queries.

Per query: DCG of its top-5 ranked candidates, gain 1 for an answer product, discount
1 / log2(rank + 1); IDCG = the same sum over min(5, number of distinct answers); 0 when a query has
no answers; the score is the mean over the answer file's queries. The official script also refuses
a submission line without exactly 5 distinct integer product ids, or an answered query it lacks.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError, preview

K = 5
SUBMISSION_COLUMNS = ("query-id",) + tuple(f"product{i}" for i in range(1, K + 1))


def discounts(k: int = K) -> np.ndarray:
    """1 / log2(rank + 1) for ranks 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2))


def ndcg_at_k(hits, n_relevant, k: int = K) -> np.ndarray:
    """Per-query NDCG@k from `hits` (queries x >= k: 1 where the ranked product is an answer) and each
    query's number of distinct answers `n_relevant` (IDCG over min(k, n)); 0 for a query without answers."""
    hits = np.asarray(hits, dtype=np.float64)[:, :k]
    disc = discounts(k)
    dcg = hits @ disc[: hits.shape[1]]
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(np.asarray(n_relevant, dtype=np.int64), k)]
    return np.divide(dcg, ideal, out=np.zeros(len(dcg)), where=ideal > 0)


def top_k(codes, scores, n_queries: int, k: int = K) -> np.ndarray:
    """(n_queries, k) row indices of each query's k best-scored rows, best first; ties keep file order;
    -1 where a query has fewer than k candidates. One sort, no loop over rows."""
    codes = np.asarray(codes, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if len(codes) != len(scores):
        raise ValueError(f"{len(codes)} rows but {len(scores)} scores")
    if np.isnan(scores).any():
        raise DataError(f"{int(np.isnan(scores).sum())} NaN score(s)")
    order = np.lexsort((np.arange(len(codes)), -scores, codes))
    counts = np.bincount(codes, minlength=n_queries)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(order)) - starts[codes[order]]
    keep = rank < k
    out = np.full((n_queries, k), -1, dtype=np.int64)
    out[codes[order][keep], rank[keep]] = order[keep]
    return out


def relevance(query_ids, product_ids, answers: dict[int, list[int]]) -> np.ndarray:
    """Boolean per row: is (query_id, product_id) an answer."""
    pairs = [(q, p) for q, ps in answers.items() for p in ps]
    if not pairs:  # no answer at all (pandas cannot build an empty MultiIndex from tuples)
        return np.zeros(len(query_ids), dtype=bool)
    keys = pd.MultiIndex.from_tuples(pairs)
    return pd.MultiIndex.from_arrays([np.asarray(query_ids), np.asarray(product_ids)]).isin(keys)


def rank_ndcg(query_ids, codes, product_ids, scores, answers: dict[int, list[int]], k: int = K) -> np.ndarray:
    """Per answered query NDCG@k of ranking each query's candidate rows by `scores` (higher first);
    `query_ids[codes[r]]` is row r's query. Answered queries absent from the rows score 0."""
    query_ids = np.asarray(query_ids)
    rel = relevance(query_ids[codes], product_ids, answers)
    per_query = pd.Series(row_ndcg(codes, scores, rel, [len(answers.get(int(q), ())) for q in query_ids], k),
                          index=query_ids)
    return per_query.reindex(list(answers), fill_value=0.0).to_numpy()


def row_ndcg(codes, scores, relevant, n_relevant, k: int = K) -> np.ndarray:
    """Per query (code 0..Q-1) NDCG@k of ranking its rows by `scores`, given each row's `relevant` flag
    and each query's number of distinct answers `n_relevant` (Q,): the inner loop of a weight search."""
    n_relevant = np.asarray(n_relevant)
    top = top_k(codes, scores, len(n_relevant), k)
    hits = np.where(top >= 0, np.asarray(relevant)[np.maximum(top, 0)], False)
    return ndcg_at_k(hits, n_relevant, k)


def submission_frame(query_ids, top: np.ndarray, product_ids) -> pd.DataFrame:
    """The competition's submission table (query-id, product1..product5) from :func:`top_k` rows;
    a query with fewer than 5 candidates cannot fill its line (DataError)."""
    short = (top < 0).any(axis=1)
    if short.any():
        raise DataError(f"query_id(s) {preview(np.asarray(query_ids)[short].tolist())} have fewer than {top.shape[1]} "
                        f"candidates: a submission line needs {top.shape[1]} distinct products")
    product_ids = np.asarray(product_ids)
    return pd.DataFrame(np.column_stack([np.asarray(query_ids), product_ids[top]]), columns=list(SUBMISSION_COLUMNS))


def score_kdd_submission(submission: pd.DataFrame, answers: dict[int, list[int]]) -> float:
    """Mean NDCG@5 of a submission table against `answers`, with the official script's checks."""
    missing = [c for c in SUBMISSION_COLUMNS if c not in submission.columns]
    if missing:
        raise DataError(f"submission: missing column(s) {', '.join(missing)}")
    table = submission[list(SUBMISSION_COLUMNS)].astype(np.int64)
    table = table[table["query-id"].isin(list(answers))].drop_duplicates("query-id", keep="last")
    products = table[list(SUBMISSION_COLUMNS[1:])].to_numpy()
    dup = (np.sort(products, axis=1)[:, 1:] == np.sort(products, axis=1)[:, :-1]).any(axis=1)
    if dup.any():
        raise DataError(f"submission: duplicate products for query-id(s) {preview(table['query-id'][dup].tolist())}")
    lacking = sorted(set(answers) - set(table["query-id"].tolist()))
    if lacking:
        raise DataError(f"submission: no prediction for query-id(s) {preview(lacking)}")
    qids = table["query-id"].to_numpy()
    rel = relevance(np.repeat(qids, K), products.ravel(), answers).reshape(-1, K)
    per_query = pd.Series(ndcg_at_k(rel, [len(answers[int(q)]) for q in qids]), index=qids)
    return float(per_query.reindex(list(answers)).mean())
