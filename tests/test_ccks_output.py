"""CCKS 2022 task 9.2 result file: format, scorer, and decisions written as embeddings."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from prodmatch.errors import DataError
from prodmatch.metrics import pair_scores
from prodmatch.ccks.output import (
    encode_decision_as_embeddings, format_embedding, lookup_embeddings, pair_score, parse_embedding,
    predict_result_file, read_result_file, result_scores, score_result_file, write_decision_result,
    write_result_file,
)
from prodmatch.stack.ensemble import F1Vote, ThresholdEnsemble


def truth_frame(n: int, labels) -> pd.DataFrame:
    return pd.DataFrame({"src_item_id": [f"s{i}" for i in range(n)], "tgt_item_id": [f"t{i}" for i in range(n)],
                         "item_label": np.asarray(labels, dtype=np.int64)})


def write_truth(path, frame: pd.DataFrame):
    path.write_text("".join(json.dumps({"src_item_id": s, "tgt_item_id": t, "item_label": str(l)}) + "\n"
                            for s, t, l in frame.itertuples(index=False)))
    return path


def test_pair_score_similarities():
    assert pair_score([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert pair_score([1.0, 1.0], [2.0, 2.0]) == pytest.approx(1.0)
    assert pair_score([0.0, 0.0], [1.0, 2.0]) == 0.0  # zero vector: 0, not NaN
    assert pair_score([1.0, 2.0], [3.0, 4.0], similarity="inner") == 11.0
    assert pair_score([0.99], [-1.6], similarity="tgt0") == -1.6  # the seed team's compute()
    np.testing.assert_allclose(pair_score(np.eye(2), np.array([[1.0, 0.0], [1.0, 0.0]])), [1.0, 0.0])
    with pytest.raises(DataError, match="equal dimensions"):
        pair_score([1.0], [1.0, 2.0])
    with pytest.raises(DataError, match="unknown similarity"):
        pair_score([1.0], [1.0], similarity="l2")


def test_embedding_strings_round_trip_exactly():
    vector = np.array([0.1, -2.5, 1e-300, 1 / 3])
    text = format_embedding(vector)
    assert text.startswith("[0.1, -2.5, 1e-300, 0.333")
    np.testing.assert_array_equal(parse_embedding(text), vector)
    assert parse_embedding("[1, 2]").tolist() == [1.0, 2.0]
    for bad in ("[]", "[1, \"a\"]", "nope", "[NaN]", "[true]"):
        with pytest.raises(DataError):
            parse_embedding(bad)
    with pytest.raises(DataError, match="1024"):
        parse_embedding(format_embedding(np.zeros(1025)))


def test_write_read_score_real_embeddings(tmp_path):
    truth = truth_frame(4, [1, 0, 1, 0])
    src = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    tgt = np.array([[0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [1.0, 1.0]])  # cos: .994, 0, .994, 1
    path = write_result_file(tmp_path / "result.jsonl", truth, src, tgt, 0.5)
    first = json.loads(path.read_text().splitlines()[0])
    assert list(first) == ["src_item_id", "src_item_emb", "tgt_item_id", "tgt_item_emb", "threshold"]
    assert first["src_item_emb"] == "[1.0, 0.0]" and first["threshold"] == 0.5
    result = read_result_file(path)
    np.testing.assert_array_equal(np.stack(result["tgt_item_emb"]), tgt)
    scores = score_result_file(path, write_truth(tmp_path / "truth.jsonl", truth))
    # predicted 1, 0, 1, 1 against 1, 0, 1, 0: tp 2, pred 3, true 2
    assert scores.precision == pytest.approx(2 / 3) and scores.recall == 1.0 and scores.f1 == pytest.approx(0.8)
    # per-pair thresholds; a frame as the truth
    write_result_file(path, truth, src, tgt, [0.5, 0.5, 0.5, 1.5])
    assert score_result_file(path, truth).f1 == 1.0
    predicted = predict_result_file(path)
    assert predicted["item_label"].tolist() == [1, 0, 1, 0]


def test_seed_format_line_with_tgt0(tmp_path):
    # two lines in the seed team's submitted form (extra fields are ignored)
    lines = [
        {"src_item_id": "a", "src_item_emb": "[0.9998658]", "tgt_item_id": "b",
         "tgt_item_emb": "[-1.6181049495966024]", "threshold": 0.0, "0": 5.8713, "1": 0.7777},
        {"src_item_id": "c", "src_item_emb": "[0.05429894]", "tgt_item_id": "d",
         "tgt_item_emb": "[4.458567356599496]", "threshold": 0.0, "0": 0.0, "1": 6.649},
    ]
    path = tmp_path / "seed.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    truth = pd.DataFrame({"src_item_id": ["a", "c"], "tgt_item_id": ["b", "d"], "item_label": [0, 1]})
    assert score_result_file(path, truth, similarity="tgt0").f1 == 1.0
    np.testing.assert_allclose(result_scores(read_result_file(path), "tgt0"), [-1.6181049495966024, 4.458567356599496])


def test_lookup_embeddings():
    matrix = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(lookup_embeddings(["c", "a"], ["a", "b", "c"], matrix), [[4, 5], [0, 1]])
    with pytest.raises(DataError, match="'zz'"):
        lookup_embeddings(["a", "zz"], ["a", "b", "c"], matrix)


def test_bad_lines_are_named(tmp_path):
    good = {"src_item_id": "s0", "src_item_emb": "[1.0]", "tgt_item_id": "t0", "tgt_item_emb": "[1.0]", "threshold": 0.0}
    cases = {
        "not valid JSON": ["{oops"],
        "lacks field": [{k: v for k, v in good.items() if k != "threshold"}],
        "src_item_emb": [dict(good, src_item_emb="[1.0, oops]")],
        "threshold must be": [dict(good, threshold="0.5")],
        "non-empty id": [dict(good, tgt_item_id="")],
        "repeats the pair": [good, good],
    }
    for message, rows in cases.items():
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(good) + "\n" + "".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                                                           for r in rows))
        with pytest.raises(DataError, match=message) as err:
            read_result_file(path)
        assert "line 2" in str(err.value)
    truth = truth_frame(2, [1, 0])
    path = tmp_path / "r.jsonl"
    write_result_file(path, pd.DataFrame({"src_item_id": ["s0", "x"], "tgt_item_id": ["t0", "t1"]}),
                      np.ones((2, 1)), np.ones((2, 1)), 0.0)
    with pytest.raises(DataError, match=r"line 2: pair \(x, t1\) is not in the truth"):
        score_result_file(path, truth)
    write_result_file(path, truth.iloc[:1], np.ones((1, 1)), np.ones((1, 1)), 0.0)
    with pytest.raises(DataError, match=r"1 truth pair\(s\) have no result line"):
        score_result_file(path, truth)
    with pytest.raises(DataError, match="limit"):
        write_result_file(path, truth, np.ones((2, 1025)), np.ones((2, 1025)), 0.0)
    with pytest.raises(DataError, match="non-finite"):
        write_result_file(path, truth, np.array([[1.0], [np.inf]]), np.ones((2, 1)), 0.0)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.integers(1, 40),
                  elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=True)),
       st.floats(-1e6, 1e6), st.booleans())
def test_encoded_decisions_reproduce_exactly(scores, threshold, inclusive):
    src, tgt, shared = encode_decision_as_embeddings(scores, threshold, inclusive=inclusive)
    expected = scores >= threshold if inclusive else scores > threshold
    assert shared == 0.0 and src.shape == tgt.shape == (len(scores), 2)
    cos = pair_score(src, tgt)
    np.testing.assert_array_equal(cos > shared, expected)
    np.testing.assert_array_equal(cos >= shared, expected)  # robust to a ">=" scorer too
    c32 = (src.astype(np.float32) * tgt.astype(np.float32)).sum(1)  # and to float32 arithmetic
    np.testing.assert_array_equal(c32 > 0, expected)
    order = np.argsort(scores, kind="stable")  # the encoding is monotone in the margin
    assert (np.diff(cos[order]) >= -1e-12).all()


def test_ensemble_decisions_through_the_file(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    y = rng.random(n) < 0.35
    models = np.clip(y[:, None] * 0.3 + rng.random((n, 3)) * 0.7, 0, 1)
    truth = truth_frame(n, y)
    truth_path = write_truth(tmp_path / "truth.jsonl", truth)
    for ens, inclusive in ((ThresholdEnsemble(), False), (F1Vote(), True)):
        ens.fit(y, models)
        predicted = ens.predict(models)
        path = write_decision_result(tmp_path / "result.jsonl", truth, ens.decision_function(models), 0.0,
                                     inclusive=inclusive)
        assert predict_result_file(path)["item_label"].astype(bool).tolist() == predicted.tolist()
        assert score_result_file(path, truth_path) == pair_scores(y, predicted)
    # a single model with its own threshold, written the same way
    path = write_decision_result(tmp_path / "single.jsonl", truth, models[:, 0], 0.55)
    assert score_result_file(path, truth_path) == pair_scores(y, models[:, 0] > 0.55)
