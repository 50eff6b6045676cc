"""KDD Cup 2020 recall (`prodmatch.kdd`): reader, NDCG@5, synthetic data, baselines and the stage; seconds."""
from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.config import load_config, read_yaml
from prodmatch.data.synth import generate
from prodmatch.errors import DataError
from prodmatch.kdd import KddRunConfig, Method, kdd_run, register_method
from prodmatch.kdd.data import COLUMNS, iter_tsv, read_answers, read_candidates, read_labels, read_tsv
from prodmatch.kdd.metrics import ndcg_at_k, rank_ndcg, score_kdd_submission, submission_frame, top_k
from prodmatch.kdd.methods import words


DIM = 32  # the test preset's feature dim


def kdd_test_with(*kinds: str) -> dict:
    """The shipped kdd-test config with only its members of these kinds, in their shipped order: a test
    file's own run of what it checks (the full config grows as trained kinds are added)."""
    shipped = read_yaml("kdd-test")
    return {**shipped, "methods": [m for m in shipped["methods"] if m["kind"] in kinds]}


@pytest.fixture(scope="session")
def data(kdd_preset):
    return kdd_preset


@pytest.fixture(scope="session")
def run(kdd_test_run):
    return kdd_test_run


def b64(array) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def row(pid=1, qid=1, n=2, dim=4, query="red dress", **override) -> dict:
    rng = np.random.default_rng(pid)
    r = {"product_id": pid, "image_h": 100, "image_w": 80, "num_boxes": n,
         "boxes": b64(rng.random((n, 4), dtype=np.float32)), "features": b64(rng.random((n, dim), dtype=np.float32)),
         "class_labels": b64(np.arange(n, dtype=np.int64)), "query": query, "query_id": qid}
    r.update(override)
    return r


def write_tsv(path, rows, columns=COLUMNS):
    lines = ["\t".join(columns)] + ["\t".join(str(r[c]) for c in columns) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------- reader
def test_chunked_reading_equals_reading_at_once(data):
    whole = read_tsv(data / "train.tsv", chunk_rows=100_000, feature_dim=DIM)
    chunks = list(iter_tsv(data / "train.tsv", chunk_rows=37, feature_dim=DIM))
    assert len(whole) > 37 * 3 and len(chunks) == -(-len(whole) // 37)
    assert [len(c) for c in chunks[:-1]] == [37] * (len(chunks) - 1)
    joined = read_tsv(data / "train.tsv", chunk_rows=37, feature_dim=DIM)
    pd.testing.assert_frame_equal(joined.rows, whole.rows)
    for name in ("boxes", "features", "class_labels"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(whole, name))
    np.testing.assert_array_equal(joined.offsets, whole.offsets)
    assert whole.rows["line"].tolist() == list(range(2, len(whole) + 2))
    assert whole.features.shape == (whole.offsets[-1], DIM) and whole.features.dtype == np.float32


def test_decoded_arrays_are_the_written_ones(tmp_path):
    rows = [row(pid=7, n=3), row(pid=8, n=1), row(pid=9, n=0)]
    chunk = read_tsv(write_tsv(tmp_path / "v.tsv", rows), feature_dim=4, chunk_rows=2)
    np.testing.assert_array_equal(chunk.offsets, [0, 3, 4, 4])
    expected = np.concatenate([np.frombuffer(base64.b64decode(r["features"]), np.float32) for r in rows])
    np.testing.assert_array_equal(chunk.features.ravel(), expected)
    assert chunk.class_labels.tolist() == [0, 1, 2, 0] and chunk.box_rows().tolist() == [0, 0, 0, 1]


def test_undecoded_columns_are_still_length_checked(tmp_path):
    path = write_tsv(tmp_path / "v.tsv", [row(), row(pid=2, features=b64(np.zeros((2, 5), np.float32)))])
    with pytest.raises(DataError, match=r"v.tsv: line 3: features decodes to 40 bytes, num_boxes needs 32"):
        next(iter_tsv(path, feature_dim=4, decode=("class_labels",)))
    chunk = next(iter_tsv(write_tsv(tmp_path / "w.tsv", [row()]), feature_dim=4, decode=("class_labels",)))
    assert chunk.features is None and chunk.boxes is None and chunk.class_labels.tolist() == [0, 1]


@pytest.mark.parametrize("bad, message", [
    ({"boxes": "not*base64"}, r"line 3: boxes is not valid base64"),
    ({"num_boxes": 3}, r"line 3: boxes decodes to 32 bytes, num_boxes needs 48"),
    ({"class_labels": b64(np.zeros(3, np.int64))}, r"line 3: class_labels decodes to 24 bytes, num_boxes needs 16"),
    ({"query_id": "x1"}, r"query_id not an integer on line\(s\) 3"),
    ({"product_id": ""}, r"line 3: empty product_id"),
])
def test_bad_rows_are_data_errors_naming_file_and_line(tmp_path, bad, message):
    path = write_tsv(tmp_path / "valid.tsv", [row(), row(pid=2, **bad)])
    with pytest.raises(DataError, match=r"valid.tsv: .*" + message if "line(" in message else message):
        read_tsv(path, feature_dim=4)


def test_wrong_feature_dim_and_missing_column(tmp_path):
    path = write_tsv(tmp_path / "t.tsv", [row(dim=4)])
    with pytest.raises(DataError, match="features decodes to 32 bytes, num_boxes needs 16384.*feature_dim"):
        read_tsv(path)  # default 2048
    no_query = write_tsv(tmp_path / "q.tsv", [row()], columns=[c for c in COLUMNS if c != "query"])
    with pytest.raises(DataError, match="q.tsv: missing column\\(s\\) query"):
        read_tsv(no_query, feature_dim=4)
    ragged = tmp_path / "r.tsv"
    ragged.write_text(write_tsv(tmp_path / "ok.tsv", [row()]).read_text() + "1\t2\n")
    with pytest.raises(DataError, match="r.tsv"):
        read_tsv(ragged, feature_dim=4)


def test_candidate_checks(tmp_path):
    path = write_tsv(tmp_path / "valid.tsv", [row(pid=1, qid=5), row(pid=2, qid=5), row(pid=3, qid=6)])
    cands = read_candidates(path, {5: [1]}, feature_dim=4)
    assert cands.query_ids.tolist() == [5, 6] and cands.codes.tolist() == [0, 0, 1]
    with pytest.raises(DataError, match=r"answer.json: query_id\(s\) 9 have no candidates in .*valid.tsv"):
        read_candidates(path, {5: [1], 9: [4]}, "answer.json", feature_dim=4)
    twice = write_tsv(tmp_path / "twice.tsv", [row(pid=1), row(pid=1)])
    with pytest.raises(DataError, match=r"listed twice for one query on line\(s\) 3"):
        read_candidates(twice, feature_dim=4)
    texts = write_tsv(tmp_path / "texts.tsv", [row(pid=1), row(pid=2, query="blue")])
    with pytest.raises(DataError, match="more than one query text"):
        read_candidates(texts, feature_dim=4)


def test_answers_and_labels_files(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"12": [3, "4", 4]}))
    assert read_answers(tmp_path / "a.json") == {12: [3, 4]}
    (tmp_path / "b.json").write_text(json.dumps({"12": "3"}))
    with pytest.raises(DataError, match="b.json: query '12'"):
        read_answers(tmp_path / "b.json")
    (tmp_path / "l.txt").write_text("category_id\tcategory_name\n1\ttops\n0\tothers\n")
    assert read_labels(tmp_path / "l.txt") == ["others", "tops"]
    (tmp_path / "m.txt").write_text("0\tothers\n2\ttops\n")
    with pytest.raises(DataError, match="class ids must be 0..1"):
        read_labels(tmp_path / "m.txt")


# ---------------------------------------------------------------- NDCG@5
D = 1 / np.log2(np.arange(2, 7))


@pytest.mark.parametrize("hits, n, expected", [
    ([1, 1, 1, 1, 1], 5, 1.0),
    ([1, 1, 0, 0, 0], 2, 1.0),
    ([0, 1, 0, 1, 0], 2, (1 / np.log2(3) + 1 / np.log2(5)) / (1 + 1 / np.log2(3))),
    ([0, 0, 0, 0, 0], 5, 0.0),
    ([1, 0, 0, 0, 0], 5, 1 / D.sum()),
    ([0, 0, 0, 0, 1], 1, 1 / np.log2(6)),
    ([1, 1, 1, 1, 1], 8, 1.0),  # IDCG over min(5, answers)
    ([0, 0, 0, 0, 0], 0, 0.0),  # no answers: 0, as the official scorer
])
def test_ndcg_exact_values(hits, n, expected):
    assert ndcg_at_k([hits], [n])[0] == pytest.approx(expected, abs=1e-12)


def reference_ndcg(ranked, truth, k=5):
    """The official scorer's formula, one query at a time."""
    ref = [1.0] * len(set(truth))
    pred = [1.0 if p in truth else 0.0 for p in ranked]
    dcg = lambda r: sum(x / np.log2(i + 2) for i, x in enumerate(r[:k]))  # noqa: E731
    return dcg(pred) / dcg(ref) if dcg(ref) else 0.0


def test_ranked_ndcg_equals_the_per_query_reference_and_the_submission_scorer():
    rng = np.random.default_rng(0)
    n_queries = 40
    sizes = rng.integers(7, 12, n_queries)
    codes = np.repeat(np.arange(n_queries), sizes)
    rng.shuffle(codes)  # a query's rows need not be contiguous
    query_ids = np.arange(100, 100 + n_queries)
    products = rng.permutation(len(codes)) + 1000
    scores = rng.integers(0, 4, len(codes)).astype(float)  # many ties: file order decides
    answers = {int(q): [int(p) for p in rng.choice(products[codes == i], int(rng.integers(0, 7)), replace=False)]
               for i, q in enumerate(query_ids)}
    got = rank_ndcg(query_ids, codes, products, scores, answers)
    want = []
    for i, q in enumerate(query_ids):
        rows = np.flatnonzero(codes == i)
        ranked = products[rows[np.argsort(-scores[rows], kind="stable")]].tolist()
        want.append(reference_ndcg(ranked, set(answers[int(q)])))
    np.testing.assert_allclose(got, want, atol=1e-12)
    table = submission_frame(query_ids, top_k(codes, scores, n_queries), products)
    assert score_kdd_submission(table, answers) == pytest.approx(np.mean(want), abs=1e-12)


def test_top_k_ties_keep_file_order_and_short_queries_pad():
    top = top_k([1, 0, 0, 0, 1], [0.5, 1.0, 2.0, 1.0, 0.5], 2, k=3)
    assert top.tolist() == [[2, 1, 3], [0, 4, -1]]
    with pytest.raises(DataError, match="fewer than 3 candidates"):
        submission_frame(np.array([7, 8]), top, np.arange(5))


def test_submission_checks_follow_the_official_scorer():
    table = pd.DataFrame([[1, 10, 11, 12, 13, 14]], columns=["query-id"] + [f"product{i}" for i in range(1, 6)])
    assert score_kdd_submission(table, {1: [10]}) == 1.0
    with pytest.raises(DataError, match="no prediction for query-id"):
        score_kdd_submission(table, {1: [10], 2: [5]})
    with pytest.raises(DataError, match="duplicate products"):
        score_kdd_submission(table.assign(product5=10), {1: [10]})


# ---------------------------------------------------------------- synthetic data
def test_synth_is_deterministic_and_in_the_competition_format(data, tmp_path):
    again = tmp_path / "again"
    report = generate("kdd", again, seed=0, preset="test")
    for name in ("train.tsv", "valid.tsv", "valid_answer.json", "testA.tsv", "multimodal_labels.txt"):
        assert (again / name).read_bytes() == (data / name).read_bytes(), name
    other = tmp_path / "other"
    generate("kdd", other, seed=1, preset="test")
    assert (other / "valid.tsv").read_bytes() != (data / "valid.tsv").read_bytes()
    with pytest.raises(FileExistsError):
        generate("kdd", again, seed=0, preset="test")
    assert json.loads((data / "synth_report.json").read_text())["feature_dim"] == DIM
    assert (data / "valid.tsv").read_text().split("\n", 1)[0].split("\t") == list(COLUMNS)
    answers = read_answers(data / "valid_answer.json")
    cands = read_candidates(data / "valid.tsv", answers, feature_dim=DIM)
    per_query = np.bincount(cands.codes)
    assert per_query.min() >= 25 and all(len(v) == 5 for v in answers.values())
    assert report.counts["valid_queries"] == len(answers) == len(cands.query_ids)
    labels = read_labels(data / "multimodal_labels.txt")
    assert labels[0] == "others" and cands.data.class_labels.max() < len(labels)


def test_query_words_stem_plurals():
    assert words("Red Shoes, 2 dresses with glasses, dress") == ["red", "shoe", "2", "dress", "with", "glass", "dress"]
    assert words("Shoes", stem=False) == ["shoes"]


# ---------------------------------------------------------------- the stage
def test_stage_writes_its_artifacts_and_label_overlap_beats_random(run, data):
    out = run["out"]
    compare = pd.read_csv(out / "compare.csv")
    valid = compare[compare["split"] == "valid"].set_index("method")["NDCG@5"]
    assert valid["box_label_overlap"] > valid["random"] + 0.05
    assert run["chosen"] == valid.idxmax() and set(compare["split"]) == {"valid", "testA", "testB"}  # level 2 included
    record = json.loads((out / "run.json").read_text())
    assert record["stage"] == "kdd" and record["config"]["feature_dim"] == DIM and record["code_version"]
    assert {"valid.tsv", "valid_answer.json", "multimodal_labels.txt", "testA.tsv"} <= set(record["data"])
    assert record["splits"]["valid"]["answers_not_in_candidates"] == 0 and record["decoded"] == ["boxes", "class_labels", "features"]
    sub = pd.read_csv(out / "testA" / "submission.csv")
    assert list(sub.columns) == ["query-id", "product1", "product2", "product3", "product4", "product5"]
    cands = read_candidates(data / "testA.tsv", feature_dim=DIM)
    assert sorted(sub["query-id"]) == sorted(cands.query_ids.tolist())
    assert set(sub.iloc[:, 1:].to_numpy().ravel()) <= set(cands.product_ids.tolist())
    test_a = compare[(compare["split"] == "testA") & (compare["method"] == run["chosen"])]["NDCG@5"].item()
    assert run["test"]["testA"] == pytest.approx(test_a, abs=1e-6)  # the written file re-scores to the table
    scores = pd.read_parquet(out / "scores.parquet")
    assert {"split", "query_id", "product_id", "random", "box_label_overlap"} <= set(scores.columns)


def test_stage_refuses_a_full_folder_and_needs_the_answers(run, data, tmp_path):
    with pytest.raises(FileExistsError, match="already holds a run"):
        kdd_run(data, "kdd-test", run["out"])
    bare = tmp_path / "bare"
    shutil.copytree(data, bare, ignore=lambda _, names: [n for n in names if n == "valid_answer.json"])
    with pytest.raises(DataError, match="no valid_answer.json"):
        kdd_run(bare, "kdd-test", tmp_path / "out")
    nested = tmp_path / "nested"  # the competition archives' layout: valid/valid.tsv, testA/testA.tsv
    for split in ("train", "valid", "testA"):  # train/train.tsv: the trained kinds find it there
        (nested / split).mkdir(parents=True)
        for name in (f"{split}.tsv", f"{split}_answer.json"):
            if (data / name).is_file():
                shutil.copy(data / name, nested / split / name)
    shutil.copy(data / "multimodal_labels.txt", nested)
    again = kdd_run(nested, "kdd-test", tmp_path / "nested-run")
    assert again["valid"] == run["valid"] and list(again["submissions"]) == ["testA"]


def test_config_errors_name_the_method():
    with pytest.raises(DataError, match="unknown kind 'box_label_overlab'; did you mean box_label_overlap"):
        load_config({"methods": [{"name": "x", "kind": "box_label_overlab"}]}, KddRunConfig)
    with pytest.raises(DataError, match="method 'r' options: unknown key 'sed'"):
        load_config({"methods": [{"name": "r", "kind": "random", "options": {"sed": 1}}]}, KddRunConfig)
    with pytest.raises(DataError, match="repeated method name"):
        load_config({"methods": [{"name": "r", "kind": "random"}] * 2}, KddRunConfig)
    dims = {name: load_config(name, KddRunConfig).feature_dim for name in ("kdd", "kdd-demo", "kdd-test")}
    assert dims == {"kdd": 2048, "kdd-demo": 64, "kdd-test": DIM}


def test_a_new_method_kind_is_one_class(data, tmp_path):
    @register_method("fewest_boxes")
    class FewestBoxes(Method):
        def score(self, split, candidates, context):
            return -candidates.data.rows["num_boxes"].to_numpy(float)

    config = {"feature_dim": DIM, "test_splits": [], "methods": [{"name": "few", "kind": "fewest_boxes"}]}
    result = kdd_run(data, config, tmp_path / "run")
    assert set(result["valid"]) == {"few"} and not result["submissions"]


def test_cli_runs_on_the_test_preset(data, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["kdd", "--data", str(data), "--config", "kdd-test", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "box_label_overlap" in printed and "testA/submission.csv" in printed
    assert main(["kdd", "--data", str(data), "--config", "kdd-test", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["synth", "kdd", "--preset", "test", "--out", str(tmp_path / "syn")]) == 0
    assert main(["check", "kdd", str(data / "valid.tsv"), "--feature-dim", str(DIM)]) == 0
    assert main(["check", "kdd", str(data / "valid.tsv")]) == 2


def test_no_answers_at_all_is_a_clear_error_and_scores_nothing(tmp_path):
    from prodmatch.kdd.data import read_answers
    from prodmatch.kdd.metrics import relevance

    path = tmp_path / "valid_answer.json"
    path.write_text("{}")
    with pytest.raises(DataError, match="no queries"):
        read_answers(path)
    assert relevance([1, 2], [3, 4], {}).tolist() == [False, False]
    assert relevance([1, 2], [3, 4], {1: []}).tolist() == [False, False]


def test_check_kdd_does_not_import_torch(data):
    """`prodmatch check kdd` reads and decodes a .tsv without the trained kinds: torch is never imported."""
    import subprocess
    import sys

    code = ("import sys; from prodmatch.cli import main; "
            f"rc = main(['check', 'kdd', {str(data / 'valid.tsv')!r}, '--feature-dim', '{DIM}']); "
            "print('torch' in sys.modules, rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["False", "0"]
