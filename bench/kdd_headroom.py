"""KDD synthetic data: is there room above the baselines? A ridge map from query words to box
features (fitted on train.tsv, every box of a row a target), candidates scored by their best box's
cosine; prints valid NDCG@5 to set beside `prodmatch kdd`'s random / box_label_overlap rows."""
from __future__ import annotations

import argparse

import numpy as np
import scipy.sparse as sp

from prodmatch.kdd.data import locate, read_answers, read_candidates, read_tsv
from prodmatch.kdd.methods import words
from prodmatch.kdd.metrics import rank_ndcg


def bag(texts, vocab: dict, grow: bool) -> sp.csr_matrix:
    """Queries as 0/1 word rows (unknown words dropped unless `grow`)."""
    cols = [[vocab.setdefault(w, len(vocab)) if grow else vocab.get(w, -1) for w in words(t)] for t in texts]
    cols = [[c for c in cs if c >= 0] for cs in cols]
    rows = np.repeat(np.arange(len(cols)), [len(c) for c in cols])
    flat = np.concatenate([np.array(c, np.int64) for c in cols])
    m = sp.csr_matrix((np.ones(len(flat)), (rows, flat)), shape=(len(cols), len(vocab)))
    m.data[:] = 1.0
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--feature-dim", type=int, required=True)
    ap.add_argument("--alpha", type=float, default=1.0)
    args = ap.parse_args()
    train = read_tsv(locate(args.data, "train.tsv"), feature_dim=args.feature_dim)
    vocab: dict[str, int] = {}
    x = bag(train.rows["query"], vocab, grow=True)[train.box_rows()]
    w = np.linalg.solve((x.T @ x).toarray() + args.alpha * np.eye(len(vocab)), x.T @ train.features)
    answers = read_answers(locate(args.data, "valid_answer.json"))
    c = read_candidates(locate(args.data, "valid.tsv"), answers, feature_dim=args.feature_dim)
    target = bag(c.queries, vocab, grow=False) @ w
    target /= np.linalg.norm(target, axis=1, keepdims=True) + 1e-9
    feats = c.data.features / (np.linalg.norm(c.data.features, axis=1, keepdims=True) + 1e-9)
    boxes = c.data.box_rows()
    scores = np.full(len(c.codes), -np.inf)
    np.maximum.at(scores, boxes, (target[c.codes[boxes]] * feats).sum(axis=1))
    scores[np.isinf(scores)] = -2.0  # a box-less product ranks last
    ndcg = rank_ndcg(c.query_ids, c.codes, c.product_ids, scores, answers).mean()
    print(f"ridge query words -> box features, best-box cosine: valid NDCG@5 {ndcg:.4f} ({len(answers)} queries)")


if __name__ == "__main__":
    main()
