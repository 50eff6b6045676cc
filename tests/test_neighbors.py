"""Exact KNN: backends agree, K clipping, self first among duplicates, input validation."""
from __future__ import annotations

import numpy as np
import pytest

from prodmatch import neighbors
from prodmatch.errors import DataError
from prodmatch.neighbors import BACKENDS, default_chunk, knn, normalize_rows, resolve_backend

CPU_BACKENDS = ["faiss", "torch"]


def unit(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(x: np.ndarray, q: np.ndarray, k: int):
    s = q.astype(np.float64) @ x.astype(np.float64).T
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, idx, 1), idx


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_matches_brute_force(backend):
    x = unit(300, 16)
    sims, idx = knn(x, 20, backend=backend, chunk=64)
    ref_s, ref_i = brute(x, x, 20)
    assert sims.dtype == np.float32 and idx.dtype == np.int64 and sims.shape == (300, 20)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(sims, ref_s, atol=1e-5)
    assert (np.diff(sims, axis=1) <= 0).all()


def test_backends_agree():
    x = unit(500, 32, seed=1)
    q = unit(70, 32, seed=2)
    for query in (None, q):
        (s1, i1), (s2, i2) = (knn(x, 25, query=query, backend=b, chunk=33) for b in CPU_BACKENDS)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_allclose(s1, s2, atol=1e-5)


def test_chunk_size_does_not_change_result():
    x = unit(200, 8, seed=3)
    a = knn(x, 10, backend="torch", chunk=1)
    b = knn(x, 10, backend="torch", chunk=10_000)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)  # BLAS blocking may move the last bit


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("n", [1, 3])
def test_k_clipped_to_n_and_self_first(backend, n):
    x = unit(n, 4, seed=n)
    sims, idx = knn(x, 50, backend=backend)
    assert sims.shape == idx.shape == (n, n)
    np.testing.assert_array_equal(idx[:, 0], np.arange(n))
    np.testing.assert_array_equal(sims[:, 0], 1.0)
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.tile(np.arange(n), (n, 1)))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_k_equals_n(backend):
    x = unit(12, 5)
    sims, idx = knn(x, 12, backend=backend)
    assert idx.shape == (12, 12)
    np.testing.assert_array_equal(np.sort(idx, axis=1), np.tile(np.arange(12), (12, 1)))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_duplicates_keep_self_in_list(backend):
    base = unit(4, 6, seed=4)
    x = np.repeat(base, 5, axis=0)  # 4 groups of 5 identical rows
    sims, idx = knn(x, 3, backend=backend)  # fewer slots than duplicates
    np.testing.assert_array_equal(idx[:, 0], np.arange(20))
    np.testing.assert_allclose(sims, 1.0, atol=1e-6)
    group = np.arange(20) // 5
    assert (group[idx] == group[:, None]).all()
    # ties after self are in index order
    others = idx[:, 1:]
    assert (np.diff(others, axis=1) > 0).all()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_all_identical(backend):
    x = np.ones((7, 3), np.float32) / np.sqrt(3)
    sims, idx = knn(x, 4, backend=backend)
    np.testing.assert_array_equal(idx[:, 0], np.arange(7))
    np.testing.assert_array_equal(idx[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(idx[5], [5, 0, 1, 2])
    assert sims.max() <= 1.0


def test_query_differs_from_emb():
    x = unit(50, 8, seed=5)
    q = unit(9, 8, seed=6)
    sims, idx = knn(x, 5, query=q, backend="faiss")
    ref_s, ref_i = brute(x, q, 5)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(sims, ref_s, atol=1e-5)
    # a query equal to a base row finds it, but no self rule applies to queries
    sims, idx = knn(x, 3, query=x[[7]], backend="faiss")
    assert idx[0, 0] == 7
    empty = knn(x, 3, query=np.zeros((0, 8), np.float32))
    assert empty[0].shape == (0, 3) and empty[1].shape == (0, 3)


def test_query_dimension_mismatch():
    with pytest.raises(DataError, match="columns"):
        knn(unit(5, 4), 2, query=unit(2, 3))


def test_nan_and_inf_rows_named():
    x = unit(10, 4)
    x[3, 1] = np.nan
    x[8, 0] = np.inf
    with pytest.raises(DataError, match=r"NaN/inf in 2 row\(s\): 3, 8"):
        knn(x, 2)


def test_zero_row_rejected():
    x = unit(6, 4)
    x[2] = 0
    with pytest.raises(DataError, match=r"all-zero row\(s\): 2"):
        knn(x, 2)


@pytest.mark.parametrize("bad", [np.ones(5, np.float32), np.ones((2, 2, 2), np.float32), np.ones((3, 0))])
def test_shape_rejected(bad):
    with pytest.raises(DataError):
        knn(bad, 1)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_bad_k(k):
    with pytest.raises(ValueError):
        knn(unit(4, 3), k)


def test_no_rows():
    with pytest.raises(DataError, match="no rows"):
        knn(np.zeros((0, 3), np.float32), 1)


def test_unnormalised_rows_warn_and_normalise():
    x = unit(20, 4) * 3.0
    with pytest.warns(RuntimeWarning, match="not L2-normalised"):
        sims, idx = knn(x, 3, backend="faiss")
    assert np.allclose(sims[:, 0], 1.0)
    assert sims.max() <= 1.0
    y = normalize_rows(unit(5, 3) * (1 + 1e-5))  # within tolerance: silent
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-6)


def test_huge_values_normalise_without_overflow():
    x = unit(10, 4) * np.float32(1e30)
    with pytest.warns(RuntimeWarning):
        y = normalize_rows(x)
    np.testing.assert_allclose(y, unit(10, 4), atol=1e-6)


def test_input_not_modified():
    x = unit(10, 4) * 2
    before = x.copy()
    with pytest.warns(RuntimeWarning):
        knn(x, 3)
    np.testing.assert_array_equal(x, before)


def test_registry_and_auto(monkeypatch):
    assert {"faiss", "torch", "cuml"} <= set(BACKENDS)
    monkeypatch.setattr(neighbors, "_cuda_available", lambda: False)
    assert resolve_backend("auto") == "faiss"
    monkeypatch.setattr(neighbors, "_cuda_available", lambda: True)
    monkeypatch.setattr(neighbors, "_cuml_installed", lambda: True)
    assert resolve_backend("auto") == "cuml"
    monkeypatch.setattr(neighbors, "_cuml_installed", lambda: False)
    assert resolve_backend("auto") == "torch"
    with pytest.raises(DataError, match="unknown KNN backend 'annoy'; known: cuml, dask, dask_hnsw"):
        resolve_backend("annoy")
    with pytest.raises(DataError, match="did you mean faiss_hnsw"):
        resolve_backend("faiss_hsnw")


def test_registered_backend_is_used(monkeypatch):
    calls = []

    def fake(base, query, k, chunk):
        calls.append((len(base), len(query), k, chunk))
        return BACKENDS["faiss"](base, query, k, chunk)

    BACKENDS.register("fake", fake)
    try:
        knn(unit(30, 4), 5, backend="fake", chunk=7)
    finally:
        BACKENDS.unregister("fake")
    assert calls == [(30, 30, 5, 7)]


def test_default_chunk_bounds_memory():
    assert default_chunk(70_000) * 70_000 * 4 <= 256 * 2**20
    assert default_chunk(1) >= 1 and default_chunk(10**12) == 1


def test_cuml_backend_on_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("cuML needs CUDA")
    pytest.importorskip("cuml")
    x = unit(400, 16, seed=9)
    s1, i1 = knn(x, 10, backend="cuml")
    s2, i2 = knn(x, 10, backend="faiss")
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, atol=1e-5)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_a_tie_at_the_kth_place_keeps_the_lowest_index(backend):
    # rows 0 and 1 tie at 0.5 for the 3rd place; bare faiss keeps row 1 (its heap drops the tied
    # row it met first when rows 2 and 3 arrive), which a sharded merge could not reproduce
    angle = lambda c: [c, np.sqrt(1 - c * c), 0, 0]
    low = -np.abs(unit(20, 4, seed=1))
    base = np.vstack([angle(0.5), angle(0.5), angle(0.9), angle(0.8), low]).astype(np.float32)
    query = np.array([[1, 0, 0, 0]], np.float32)
    sims, idx = knn(base, 3, query=query, backend=backend)
    np.testing.assert_array_equal(idx, [[2, 3, 0]])
    np.testing.assert_allclose(sims, [[0.9, 0.8, 0.5]], atol=1e-6)


def test_a_tie_running_past_the_margin_is_resolved_over_every_row():
    base = np.vstack([unit(1, 4, seed=2)] * 30 + [unit(30, 4, seed=3)]).astype(np.float32)
    rng = np.random.default_rng(4)
    order = rng.permutation(len(base))  # the 30 copies scattered among the other rows
    sims, idx = knn(base[order], 5, query=base[:1], backend="faiss")
    np.testing.assert_array_equal(idx[0], np.sort(np.flatnonzero(order < 30))[:5])


def test_normalising_unit_rows_is_idempotent():
    y = normalize_rows(unit(200, 16))
    np.testing.assert_array_equal(normalize_rows(y), y)
    np.testing.assert_array_equal(normalize_rows(normalize_rows(unit(50, 8) * 2.5)), normalize_rows(unit(50, 8) * 2.5))


def test_tie_run_re_search_in_bounded_blocks_equals_torch(monkeypatch):
    # phash-like data: many rows whose ties run past the margin. Their re-search over every base
    # row once took rows x N memory at once (256 MiB at 20k rows); it now goes in blocks
    import prodmatch.neighbors as nb

    monkeypatch.setattr(nb, "FULL_LIST_ENTRIES", 3 * 200)  # 3 rows per block
    bits = np.random.default_rng(5).integers(0, 2, (200, 4)).astype(np.float32) * 2 - 1
    base = bits / 2.0  # 16 distinct codes over 200 rows: every row ties far past k + margin
    s1, i1 = knn(base, 5, backend="faiss")
    s2, i2 = knn(base, 5, backend="torch")
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, atol=1e-6)
