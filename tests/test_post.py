"""Post-processing by hand-computed cases: Matches, threshold + Min2, NB/INB, union, chisel."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from prodmatch.similarity import phash_similarity
from prodmatch.errors import DataError
from prodmatch.neighbors import knn
from prodmatch.post import (
    Matches,
    allowed_counts,
    blend,
    candidate_pairs,
    chisel,
    iterative_blend,
    min2,
    neighbourhood_blend,
    select,
    similarity_union,
    threshold_matches,
    union_scores,
)
from prodmatch.similarity import DenseModel, Model, PhashModel, SparseModel

# three rows, sorted lists as knn returns them (self first)
SIMS = np.array([[1.0, 0.9, 0.5], [1.0, 0.9, 0.3], [1.0, 0.4, 0.3]], np.float32)
IDX = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]])


def unit(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------- Matches
def test_from_pairs_canonical():
    m = Matches.from_pairs([2, 0, 0, 2], [0, 1, 1, 2], [0.3, 0.5, 0.7, 0.9], 3)
    assert m.rows.tolist() == [0, 0, 1, 2, 2]
    assert m.cols.tolist() == [0, 1, 1, 0, 2]
    assert m.scores.tolist() == [1.0, 0.7, 1.0, 0.3, 1.0]  # duplicate keeps its best; self is 1
    assert m.sizes().tolist() == [2, 1, 2]
    assert m.indptr.tolist() == [0, 2, 3, 5]
    assert [c.tolist() for c in m.to_lists()] == [[0, 1], [1], [0, 2]]


def test_csr_round_trip_keeps_zero_scores():
    m = Matches.from_pairs([0, 1], [1, 0], [0.0, 0.25], 2)
    csr = m.to_csr()
    assert csr.nnz == 4 and csr[0, 1] == 0.0 and csr[1, 0] == 0.25
    back = Matches.from_csr(csr)
    assert back.pair_set() == m.pair_set()
    np.testing.assert_array_equal(back.scores, m.scores)


def test_from_knn_and_subset_keep_self():
    m = Matches.from_knn(SIMS, IDX)
    assert len(m) == 9
    s = m.subset(np.zeros(len(m), bool))
    assert s.pair_set() == {(0, 0), (1, 1), (2, 2)}


@pytest.mark.parametrize(
    "args, error",
    [
        (([0], [3], [0.5], 3), DataError),
        (([-1], [0], [0.5], 3), DataError),
        (([0], [1], [np.nan], 3), DataError),
        (([0, 1], [1], [0.5], 3), ValueError),
    ],
)
def test_from_pairs_validation(args, error):
    with pytest.raises(error):
        Matches.from_pairs(*args)


def test_knn_arrays_validated():
    with pytest.raises(DataError):
        threshold_matches(SIMS, IDX[:, :2], 0.5)
    with pytest.raises(DataError):
        threshold_matches(SIMS, IDX + 1, 0.5)


# ---------------------------------------------------------------- threshold + Min2
def test_threshold_hand():
    m = threshold_matches(SIMS, IDX, 0.8)
    assert m.pair_set() == {(0, 0), (0, 1), (1, 1), (1, 0), (2, 2)}
    assert threshold_matches(SIMS, IDX, 0.3).sizes().tolist() == [3, 3, 3]


def test_threshold_is_inclusive_in_float64():
    sims = np.array([[1.0, 0.7]], np.float32).repeat(2, 0)
    idx = np.array([[0, 1], [1, 0]])
    # float32(0.7) < 0.7, so it does not reach t = 0.7 (same answer as comparing Python floats)
    assert threshold_matches(sims, idx, 0.7).sizes().tolist() == [1, 1]
    assert threshold_matches(sims, idx, float(np.float32(0.7))).sizes().tolist() == [2, 2]


def test_min2_hand():
    m = min2(SIMS, IDX, 0.8, 0.35)
    assert m.pair_set() == {(0, 0), (0, 1), (1, 1), (1, 0), (2, 2), (2, 0)}
    assert min2(SIMS, IDX, 0.8, 0.45).pair_set() == threshold_matches(SIMS, IDX, 0.8).pair_set()


def test_min2_adds_only_for_lone_rows_and_the_nearest():
    sims = np.array([[1.0, 0.6, 0.55], [1.0, 0.6, 0.2], [1.0, 0.55, 0.2]], np.float32)
    idx = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
    m = min2(sims, idx, 0.9, 0.5)
    assert m.pair_set() == {(0, 0), (0, 1), (1, 1), (1, 0), (2, 2), (2, 0)}


def test_min2_self_missing_from_list_and_unsorted():
    sims = np.array([[0.7, 0.9], [0.2, 0.1]], np.float32)
    idx = np.array([[1, 1], [0, 0]])  # self absent, a duplicate neighbour: both handled
    m = min2(sims, idx, 0.95, 0.5)
    assert m.pair_set() == {(0, 0), (0, 1), (1, 1)}
    assert m.scores.tolist() == [1.0, pytest.approx(0.9), 1.0]


def test_min2_rejects_higher_min2_threshold():
    with pytest.raises(ValueError, match="t_min2"):
        min2(SIMS, IDX, 0.5, 0.6)


def test_select_on_candidates_matches_knn_version():
    cands = Matches.from_knn(SIMS, IDX)
    assert select(cands, 0.8, 0.35).pair_set() == min2(SIMS, IDX, 0.8, 0.35).pair_set()
    assert select(cands, 0.8).pair_set() == threshold_matches(SIMS, IDX, 0.8).pair_set()


def test_select_min2_tie_takes_lowest_col():
    cands = Matches.from_pairs([0, 0, 1, 2], [2, 1, 0, 0], [0.6, 0.6, 0.1, 0.1], 3)
    assert (0, 1) in select(cands, 0.9, 0.5).pair_set()
    assert (0, 2) not in select(cands, 0.9, 0.5).pair_set()


# ---------------------------------------------------------------- blending
E3 = unit([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])


def test_neighbourhood_blend_hand():
    sims, idx = knn(E3, 3, backend="faiss")
    out = neighbourhood_blend(E3, sims, idx, 0.5)
    expect = unit([[1 + 0.36, 0.48], [1.2, 1.6], [0.48, 1.64]])
    np.testing.assert_allclose(out, expect, atol=1e-6)
    assert out.dtype == np.float32


def test_blend_threshold_above_everything_is_identity():
    x = unit(np.random.default_rng(0).standard_normal((50, 8)))
    sims, idx = knn(x, 10)
    np.testing.assert_allclose(neighbourhood_blend(x, sims, idx, 1.01), x, atol=1e-6)


def test_blend_sparse_embeddings():
    x = sp.csr_matrix(E3)
    m = threshold_matches(*knn(E3, 3), 0.5)
    out = blend(x, m)
    assert sp.issparse(out)
    np.testing.assert_allclose(out.toarray(), blend(E3, m), atol=1e-6)


def test_blend_is_one_sparse_product():
    m = Matches.from_pairs([0, 1], [1, 0], [0.5, 0.5], 3)
    w = m.to_csr().toarray()
    np.testing.assert_allclose(blend(E3, m), unit(w @ E3), atol=1e-6)


def test_blend_shape_mismatch():
    with pytest.raises(ValueError):
        blend(E3[:2], Matches.from_pairs([], [], [], 3))


def test_iterative_blend_pulls_groups_together():
    rng = np.random.default_rng(1)
    centres = unit(rng.standard_normal((10, 16)))
    x = unit(np.repeat(centres, 5, 0) + 0.15 * rng.standard_normal((50, 16)))
    emb, sims, idx = iterative_blend(x, 6, [0.7, 0.7], backend="faiss")
    group = np.arange(50) // 5
    before = (group[knn(x, 5)[1]] == group[:, None]).mean()
    after = (group[idx[:, :5]] == group[:, None]).mean()
    assert before < 1.0 and after == 1.0
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert sims.shape == idx.shape == (50, 6)
    # no stage: just the search; a stage with an impossible threshold changes nothing
    e0, s0, i0 = iterative_blend(x, 6, [], backend="faiss")
    e1, s1, i1 = iterative_blend(x, 6, [1.01], backend="faiss")
    np.testing.assert_allclose(e0, e1, atol=1e-6)
    np.testing.assert_array_equal(i0, i1)


# ---------------------------------------------------------------- union
def test_union_computes_missing_side_exactly():
    a = unit([[1, 0, 0], [0.8, 0.6, 0], [0, 0, 1], [0, 1, 0]])
    b = unit([[0, 1, 0], [0, 0.6, 0.8], [0.6, 0.8, 0], [1, 0, 0]])
    model_a = DenseModel(a, idx=np.array([[0, 1], [1, 0], [2, 3], [3, 1]]))
    model_b = DenseModel(b, idx=np.array([[0, 2], [1, 2], [2, 0], [3, 0]]))
    m, per_model = similarity_union([model_a, model_b])
    pairs = list(zip(m.rows.tolist(), m.cols.tolist()))
    assert pairs == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 2), (2, 3), (3, 0), (3, 1), (3, 3)]
    for e, (r, c) in enumerate(pairs):
        sa, sb = float(a[r] @ a[c]), float(b[r] @ b[c])
        np.testing.assert_allclose(per_model[e], [sa, sb], atol=1e-6)
        ca, cb = min(max(sa, 0), 1), min(max(sb, 0), 1)
        expect = 1.0 if r == c else ca + cb - ca * cb
        assert m.scores[e] == pytest.approx(expect, abs=1e-6)
    e = pairs.index((0, 2))  # listed by B only; A's similarity is 0 (orthogonal), not assumed
    assert m.scores[e] == pytest.approx(0.8)
    e = pairs.index((2, 3))  # listed by A only (sim 0); B's side computed: 0.6
    assert m.scores[e] == pytest.approx(0.6)


def test_union_reuses_listed_sims():
    x = unit(np.random.default_rng(2).standard_normal((30, 4)))
    model = DenseModel.search(x, 5, backend="faiss")
    rows, cols, known = candidate_pairs([model])
    assert not np.isnan(known[:, 0]).any()
    fake = DenseModel(x, idx=model.idx, sims=np.full_like(model.sims, 0.123))
    m, per_model = similarity_union([fake])
    assert np.all(per_model[m.rows != m.cols, 0] == np.float32(0.123))


def test_union_with_sparse_and_phash_models():
    rng = np.random.default_rng(3)
    n = 40
    x = sp.random(n, 30, density=0.2, format="csr", random_state=4, dtype=np.float32)
    x = sp.diags((np.arange(n) != 5).astype(np.float32)) @ x  # row 5 empty: similarity 0, no error
    codes = rng.integers(0, 2**63, n, dtype=np.uint64)
    sparse = SparseModel.search(x, 6)
    phash = PhashModel.search(codes, 6, backend="faiss")
    dense = DenseModel.search(unit(rng.standard_normal((n, 8))), 6, backend="faiss")
    for model in (sparse, phash, dense):
        assert isinstance(model, Model)
    m, per_model = similarity_union([dense, sparse, phash])
    xn = sparse.x.toarray()
    other = m.rows != m.cols
    r, c = m.rows[other], m.cols[other]
    np.testing.assert_allclose(per_model[other, 1], (xn[r] * xn[c]).sum(1), atol=1e-6)
    np.testing.assert_allclose(per_model[other, 2], phash_similarity(codes[r], codes[c]), atol=0)
    assert (per_model[~other] == 1).all()  # self pairs score 1 for every model, even an empty row
    assert ((m.scores >= 0) & (m.scores <= 1)).all()
    assert (m.scores >= np.clip(per_model, 0, 1).max(1) - 1e-12).all()
    # phash lists are the exact Hamming top-k
    ham_sim = phash_similarity(codes[:, None], codes[None, :])
    kth = np.sort(ham_sim, axis=1)[:, -6]
    assert (phash.sims[:, -1] == kth).all()
    # sparse lists are the exact cosine top-k
    full = xn @ xn.T
    np.testing.assert_allclose(sparse.sims[:, 1:].min(1), np.sort(full, 1)[:, -6][np.arange(n)], atol=1e-6)


def test_union_scores_formula_and_clipping():
    s = union_scores([[0.5, 0.5], [-0.3, 0.4], [1.2, 0.1], [0.2, 0.0]])
    np.testing.assert_allclose(s, [0.75, 0.4, 1.0, 0.2])
    three = union_scores([[0.5, 0.5, 0.5]])
    np.testing.assert_allclose(three, [0.875])


def test_union_models_must_agree_on_n():
    with pytest.raises(DataError):
        similarity_union([DenseModel(unit(np.eye(3))), DenseModel(unit(np.eye(4)))])


def test_union_model_without_lists():
    x = unit(np.random.default_rng(5).standard_normal((20, 4)))
    listed = DenseModel.search(x, 3, backend="faiss")
    unlisted = PhashModel(np.arange(20, dtype=np.uint64))  # adds no candidates, scores all
    m, per_model = similarity_union([listed, unlisted])
    assert len(m) == 60
    assert not np.isnan(per_model).any()


# ---------------------------------------------------------------- chisel
SEED_SCORES = {  # the seed document's 4-row example: row -> {col: score}
    0: {0: 1.0, 2: 0.8, 1: 0.5, 3: 0.1},
    1: {1: 1.0, 0: 0.5, 2: 0.4, 3: 0.2},
    2: {2: 1.0, 0: 0.8, 1: 0.4, 3: 0.3},
    3: {3: 1.0, 2: 0.3, 1: 0.2, 0: 0.1},
}


def seed_matches() -> Matches:
    rows, cols, scores = zip(*[(r, c, s) for r, d in SEED_SCORES.items() for c, s in d.items()])
    return Matches.from_pairs(rows, cols, scores, 4)


def test_allowed_counts():
    # groups: three of size 4, four of size 3, twelve of size 2 -> rows 1/4, 1/4, 1/2
    target = [4] * 3 + [3] * 4 + [2] * 12
    np.testing.assert_array_equal(allowed_counts(target, 4), [4, 4, 4, 2, 1])
    np.testing.assert_array_equal(allowed_counts([2, 2], 10), [10, 10, 10])
    with pytest.raises(DataError):
        allowed_counts([], 3)


def test_chisel_hand_case_hits_target_exactly():
    out = chisel(seed_matches(), [4] * 3 + [3] * 4 + [2] * 12)
    # p=4: three rows over; weakest 4th scores A .1, D .1, B .2 are cut;
    # p=3: two rows over; among rows holding exactly 3 the weakest 3rd scores are D .2, B .4
    assert out.sizes().tolist() == [3, 2, 4, 2]
    assert out.pair_set() == {(0, 0), (0, 2), (0, 1), (1, 1), (1, 0), (2, 2), (2, 0), (2, 1), (2, 3), (3, 3), (3, 2)}
    assert np.bincount(out.sizes()).tolist() == [0, 0, 2, 1, 1]


def test_chisel_caps_at_largest_target_size_and_keeps_self():
    out = chisel(seed_matches(), [2, 2, 2])
    assert out.sizes().tolist() == [2, 2, 2, 2]
    assert out.pair_set() == {(0, 0), (0, 2), (1, 1), (1, 0), (2, 2), (2, 0), (3, 3), (3, 2)}
    alone = chisel(seed_matches(), [1, 1, 1])
    assert alone.pair_set() == {(0, 0), (1, 1), (2, 2), (3, 3)}


def test_chisel_leaves_fitting_sets_alone():
    m = threshold_matches(SIMS, IDX, 0.8)
    out = chisel(m, [2] * 5 + [3] * 2)
    assert out.pair_set() == m.pair_set()
    np.testing.assert_array_equal(out.scores, m.scores)


def test_chisel_cuts_only_rows_of_exactly_p():
    # row 0 holds 3 with a weak 2nd match; it earned its size at p=3, so p=2 cuts rows 1 and 2
    m = Matches.from_pairs([0, 0, 1, 2, 3], [1, 2, 0, 0, 0], [0.2, 0.1, 0.5, 0.6, 0.7], 4)
    target = [3, 3, 2, 2, 2] + [1] * 12  # rows: 1/4 of size 3, 1/4 of size 2, 1/2 alone
    np.testing.assert_array_equal(allowed_counts(target, 4)[1:], [4, 2, 1])
    out = chisel(m, target)
    assert out.sizes().tolist() == [3, 1, 1, 2]


def _dense_reference(x: sp.csr_matrix, k: int):
    """Exact top-k of unit sparse rows by a dense product: (sims desc, index asc), self first."""
    from prodmatch.neighbors import sort_neighbours

    dense = SparseModel(x).x.toarray().astype(np.float64)
    sims = dense @ dense.T
    order = np.lexsort((np.tile(np.arange(len(sims)), (len(sims), 1)), -sims), axis=1)[:, :k]
    return sort_neighbours(np.take_along_axis(sims, order, 1), order, self_search=True)


@pytest.mark.parametrize("k", [3, 12, 40])
def test_sparse_search_equals_dense_exact_search_with_ties_and_empty_rows(k):
    n = 40
    x = sp.random(n, 25, density=0.08, format="csr", random_state=12, dtype=np.float32)
    x = x.tolil()
    x[7] = x[3]  # exact duplicates: ties that must resolve by index
    x[19] = x[3]
    x[5] = 0  # empty row: only zero similarities
    x = x.tocsr()
    x.eliminate_zeros()
    model = SparseModel.search(x, k, threads=2)
    ref_sims, ref_idx = _dense_reference(x, min(k, n))
    assert model.idx.shape == (n, min(k, n))
    np.testing.assert_allclose(model.sims, ref_sims, atol=1e-6)
    strict = ref_sims[:, -1] > 1e-6  # rows whose k-th value is not a zero tie: lists must be equal
    np.testing.assert_array_equal(model.idx[strict], ref_idx[strict])
    for row in range(n):  # zero-similarity tail: any zero column is right, each listed once
        assert len(set(model.idx[row])) == model.idx.shape[1]
    assert (model.idx[:, 0] == np.arange(n)).all()


def test_sparse_search_ties_at_the_kth_place_resolve_by_index():
    # rows 0..5 identical: row 0's top-3 (self first) must be 0, 1, 2 (lowest indices of the tie)
    x = sp.csr_matrix(np.r_[np.ones((6, 2)), np.eye(2)[[0]]].astype(np.float32))
    model = SparseModel.search(x, 3)
    np.testing.assert_array_equal(model.idx[0], [0, 1, 2])
    np.testing.assert_array_equal(model.idx[4], [4, 0, 1])


def test_sparse_search_of_no_rows_is_a_clear_error():
    with pytest.raises(DataError, match="0 rows"):
        SparseModel.search(sp.csr_matrix((0, 4), dtype=np.float32), 5)
