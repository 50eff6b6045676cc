"""Property tests (hypothesis) for KNN and post-processing invariants on small random inputs.

Embeddings are small integers, so exact duplicates and tied similarities are common.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from prodmatch.neighbors import knn
from prodmatch.post import (
    Matches,
    allowed_counts,
    chisel,
    min2,
    neighbourhood_blend,
    select,
    similarity_union,
    threshold_matches,
    union_scores,
)
from prodmatch.similarity import DenseModel, PhashModel
from prodmatch.post.units import conflict, conflicts

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def embeddings(draw, max_rows=25, max_dim=5):
    n = draw(st.integers(1, max_rows))
    d = draw(st.integers(1, max_dim))
    x = draw(arrays(np.int8, (n, d), elements=st.integers(-2, 2))).astype(np.float32)
    x[~x.any(1), 0] = 1.0  # no all-zero row
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@st.composite
def knn_result(draw):
    x = draw(embeddings())
    k = draw(st.integers(1, 30))
    return x, *knn(x, k, backend="faiss")


thresholds = st.floats(-1.0, 1.05, allow_nan=False)


@SETTINGS
@given(embeddings(), st.integers(1, 30))
def test_knn_invariants_and_backends_agree_on_sets(x, k):
    s1, i1 = knn(x, k, backend="faiss")
    s2, i2 = knn(x, k, backend="torch")
    n = len(x)
    assert i1.shape == (n, min(k, n))
    for sims, idx in ((s1, i1), (s2, i2)):
        np.testing.assert_array_equal(idx[:, 0], np.arange(n))
        assert (np.diff(sims, axis=1) <= 1e-6).all()
        assert all(len(set(row)) == len(row) for row in idx.tolist())
        exact = np.take_along_axis(x @ x.T, idx, 1)
        np.testing.assert_allclose(sims[:, 1:], exact[:, 1:], atol=1e-5)
    # the similarity profile of each list is the same whatever the backend (ties aside: values)
    np.testing.assert_allclose(s1, s2, atol=1e-5)


@SETTINGS
@given(knn_result(), thresholds, st.floats(0, 1))
def test_every_row_matches_itself_and_min2_never_shrinks(res, t, drop):
    x, sims, idx = res
    t_min2 = t - drop
    base = threshold_matches(sims, idx, t)
    more = min2(sims, idx, t, t_min2)
    n = len(x)
    for m in (base, more):
        assert {(i, i) for i in range(n)} <= m.pair_set()
        keys = m.rows * n + m.cols
        assert (np.diff(keys) > 0).all()  # canonical: sorted, unique
    assert base.pair_set() <= more.pair_set()
    assert (more.sizes() - base.sizes() <= 1).all()
    # the candidate-pair version agrees with the (n, k) array version
    cands = Matches.from_knn(sims, idx)
    assert select(cands, t, t_min2).pair_set() == more.pair_set()
    assert select(cands, t).pair_set() == base.pair_set()


@SETTINGS
@given(knn_result())
def test_blend_above_every_similarity_is_identity(res):
    x, sims, idx = res
    out = neighbourhood_blend(x, sims, idx, 1.0 + 1e-3)
    np.testing.assert_allclose(out, x, atol=1e-6)


@SETTINGS
@given(knn_result(), thresholds)
def test_blend_output_is_unit(res, t):
    x, sims, idx = res
    out = neighbourhood_blend(x, sims, idx, t)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


@SETTINGS
@given(arrays(np.float64, st.tuples(st.integers(0, 40), st.integers(1, 4)), elements=st.floats(-2, 2)))
def test_union_scores_bounds(per_model):
    s = union_scores(per_model)
    assert ((s >= 0) & (s <= 1)).all()
    assert (s >= np.clip(per_model, 0, 1).max(1, initial=0)).all()


@SETTINGS
@given(embeddings(max_rows=20), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_similarity_union_bounds_and_exact_sides(x, k, seed):
    rng = np.random.default_rng(seed)
    y = x[rng.permutation(len(x))]
    a = DenseModel.search(x, k, backend="faiss")
    b = DenseModel.search(y, k, backend="torch")
    c = PhashModel.search(rng.integers(0, 2**63, len(x), dtype=np.uint64), k, backend="faiss")
    m, per_model = similarity_union([a, b, c])
    assert ((m.scores >= 0) & (m.scores <= 1)).all()
    assert (m.scores >= np.clip(per_model, 0, 1).max(1)).all()
    other = m.rows != m.cols
    np.testing.assert_allclose(per_model[other, 0], (x[m.rows] * x[m.cols]).sum(1)[other], atol=1e-5)
    np.testing.assert_allclose(per_model[other, 1], (y[m.rows] * y[m.cols]).sum(1)[other], atol=1e-5)
    for model in (a, b, c):  # every listed pair is a candidate
        listed = set(zip(np.repeat(np.arange(len(x)), model.idx.shape[1]).tolist(), model.idx.ravel().tolist()))
        assert listed <= m.pair_set()


@SETTINGS
@given(knn_result(), thresholds, st.lists(st.integers(1, 6), min_size=1, max_size=10))
def test_chisel_only_removes_and_fits_target(res, t, target):
    x, sims, idx = res
    m = threshold_matches(sims, idx, t)
    out = chisel(m, target)
    n = len(x)
    assert out.pair_set() <= m.pair_set()
    assert {(i, i) for i in range(n)} <= out.pair_set()
    kept = np.isin(m.rows * n + m.cols, out.rows * n + out.cols)
    np.testing.assert_array_equal(out.scores, m.scores[kept])
    allow = allowed_counts(target, n)
    sizes = out.sizes()
    for p in range(2, sizes.max() + 1):
        assert (sizes >= p).sum() <= (allow[p] if p < len(allow) else 0)
    # rows keep their strongest matches: anything cut scored no higher than what a row kept
    for r in range(n):
        cut = m.scores[(m.rows == r) & ~kept]
        mine = out.scores[(out.rows == r) & (out.cols != r)]
        if len(cut) and len(mine):
            assert cut.max() <= mine.min()


@SETTINGS
@given(knn_result(), st.lists(st.integers(2, 6), min_size=1, max_size=10))
def test_chisel_exact_when_sets_are_large_enough(res, target):
    x, sims, idx = res
    n = len(x)
    m = Matches.from_knn(sims, idx)  # every row holds k candidates
    if m.sizes().min() < max(target):
        return
    sizes = chisel(m, target).sizes()
    allow = allowed_counts(target, n)
    for p in range(2, max(target) + 1):
        assert (sizes >= p).sum() == allow[p]


QUANTITIES = st.sampled_from(
    ["250ml", "250 ML", "0,25 l", "500ml", "1L", "1.000 ml", "30g", "30 gr", "0,03kg", "1.5kg", "1500 gram",
     "64GB", "128 gb", "2x250ml", "isi 12", "12 pcs", "HK900", "5 meter", "500 cm", "", "A52s"]
)


@SETTINGS
@given(st.lists(st.tuples(st.lists(QUANTITIES, max_size=3), st.lists(QUANTITIES, max_size=3)), max_size=30))
def test_conflicts_vectorised_equals_scalar_and_symmetric(pairs):
    a = ["produk " + " ".join(p) for p, _ in pairs]
    b = ["produk " + " ".join(q) for _, q in pairs]
    expect = [conflict(s, t) for s, t in zip(a, b)]
    assert conflicts(a, b).tolist() == expect
    assert conflicts(b, a).tolist() == expect
    assert not conflicts(a, a).any()
