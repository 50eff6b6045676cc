"""The pair benchmark stage (`prodmatch pairs`): a hand-made Ditto folder, the em-test members (tiny random
BERT), fit on train / choose on valid / score test, the failure that keeps members, the leak-free stackers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prodmatch.ccks import ccks_run
from prodmatch.ccks.data import summarize_values
from prodmatch.ccks.select import prune_members, stacker_rule
from prodmatch.cli import main
from prodmatch.errors import DataError
from prodmatch.stack.lgbm import LgbmParams, fit_with_oof

BRANDS = ("sony", "canon", "nikon", "samsung", "apple", "lenovo")
KINDS = ("camera", "laptop", "monitor", "printer", "router")
FILLER = ("black", "silver", "new", "pro", "kit", "bundle", "hd", "wifi", "compact", "series")


def offer(rng, product, variant: bool) -> str:
    """One shop's offer of `product` (brand, code, kind, price); the variant writes the code without its dash."""
    brand, code, kind, price = product
    words = [brand, code.replace("-", "") if variant else code, kind, *rng.choice(FILLER, 2, replace=False)]
    return f"COL title VAL {' '.join(words)} COL brand VAL {brand} COL price VAL {price * (1.05 if variant else 1):.2f}"


def write_benchmark(folder: Path, seed: int = 0, pairs=(120, 60, 60)) -> Path:
    """A Ditto folder: half the pairs are two offers of one product, half of two products of one brand;
    test.txt repeats its first line at the end."""
    rng = np.random.default_rng(seed)
    products = [(b, f"{b[:2]}-{rng.integers(100, 999)}{'abcdef'[k % 6]}", KINDS[k % 5], float(rng.integers(50, 900)))
                for k, b in enumerate(BRANDS * 8)]
    folder.mkdir(parents=True)
    for name, n in zip(("train.txt", "valid.txt", "test.txt"), pairs):
        lines = []
        for k in range(n):
            a = int(rng.integers(len(products)))
            if k % 2:
                lines.append(f"{offer(rng, products[a], False)}\t{offer(rng, products[a], True)}\t1")
            else:
                b = (a + len(BRANDS) * int(rng.integers(1, 7))) % len(products)  # same brand, other product
                lines.append(f"{offer(rng, products[a], False)}\t{offer(rng, products[b], True)}\t0")
        if name == "test.txt":
            lines.append(lines[0])
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return write_benchmark(tmp_path_factory.mktemp("em") / "shop")


@pytest.fixture(scope="module")
def run(bench, tmp_path_factory):
    return ccks_run(bench, "em-test", tmp_path_factory.mktemp("runs") / "run", progress=False)


def test_benchmark_run_fits_on_train_chooses_on_valid_scores_test_once(run, bench):
    out = run["out"]
    predictions = pd.read_csv(out / "predictions.csv")
    assert list(predictions.columns) == ["line", "score", "prediction"]
    assert predictions["line"].tolist() == list(range(1, 62))  # every test line in file order, the repeat too
    assert predictions.iloc[0, 1:].tolist() == predictions.iloc[60, 1:].tolist()
    record = json.loads((out / "run.json").read_text())
    assert record["split"] == {"train_pairs": 120, "holdout_pairs": 60, "valid_pairs": 61, "valid_unseen_pairs": 0,
                               "holdout_pseudo_unseen_pairs": 0}
    assert record["split_names"] == {"holdout": "valid", "valid": "test"}
    assert set(record["data"]) == {"train.txt", "valid.txt", "test.txt"}
    assert record["data_facts"]["repeats"] == {"train": 0, "valid": 0, "test": 1}
    entries = record["entries"]
    assert record["chosen"] in entries and "lgbm stacker, members + comparisons" in entries
    assert any(name.endswith(", pruned") for name in entries)
    for row in entries.values():
        assert set(row) == {"valid", "valid_cv_f1", "test"} and set(row["test"]) == {"f1", "precision", "recall"}
    y = np.array([1 if line.endswith("\t1") else 0 for line in (bench / "test.txt").read_text().splitlines()])
    tp = int((predictions["prediction"].to_numpy() & y).sum())
    f1 = 2 * tp / (predictions["prediction"].sum() + y.sum())
    assert entries[record["chosen"]]["test"]["f1"] == pytest.approx(f1) == run["chosen_valid"]["f1"]
    table = pd.read_csv(out / "compare.csv")
    assert {"valid F1", "cv F1", "test F1", "P", "R"} <= set(table.columns) and "unseen F1" not in table.columns
    assert (out / "members" / "comparisons_lgbm" / "model.txt").is_file()
    assert "not run" not in (out / "report.md").read_text()


def test_test_labels_only_score(run, bench, tmp_path):
    flipped = tmp_path / "flipped"
    flipped.mkdir()
    for name in ("train.txt", "valid.txt"):
        (flipped / name).write_text((bench / name).read_text())
    lines = [line.rsplit("\t", 1) for line in (bench / "test.txt").read_text().splitlines()]
    (flipped / "test.txt").write_text("".join(f"{text}\t{1 - int(label)}\n" for text, label in lines))
    other = ccks_run(flipped, "em-test", tmp_path / "run", progress=False)
    before, after = (pd.read_csv(r["out"] / "predictions.csv") for r in (run, other))
    pd.testing.assert_frame_equal(before, after)  # members, ensembles and the choice never read test labels
    assert other["chosen"] == run["chosen"] and other["chosen_valid"]["f1"] != run["chosen_valid"]["f1"]


def test_a_failure_after_training_keeps_members_that_reuse_takes(bench, tmp_path, monkeypatch):
    import prodmatch.ccks.run as stage

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(stage, "write_run", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        ccks_run(bench, "em-test", tmp_path / "run", progress=False)
    monkeypatch.undo()
    kept = tmp_path / "run.failed"
    assert not (tmp_path / "run").exists() and (kept / "members" / "cross" / "train_config.json").is_file()
    record = json.loads((kept / "run.json").read_text())
    assert record["status"] == "failed" and set(record["members"]) == {
        "comparisons_lgbm", "tfidf_char_offer", "tfidf_word_title", "encoder_cosine", "cross"}
    again = ccks_run(bench, "em-test", tmp_path / "run", progress=False, reuse=kept)
    members = json.loads((again["out"] / "run.json").read_text())["members"]
    assert {m["reused_from"] for m in members.values()} == {str(kept)}
    assert (again["out"] / "predictions.csv").is_file()


def test_reusing_the_run_being_overwritten_is_refused(run, bench):
    with pytest.raises(DataError, match="--overwrite replaces"):
        ccks_run(bench, "em-test", run["out"], overwrite=True, reuse=run["out"], progress=False)


def test_cli_pairs_writes_predictions_and_names_bad_input(bench, tmp_path, capsys):
    assert main(["pairs", "--data", str(bench), "--config", "em-test", "--out", str(tmp_path / "r"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "predictions.csv (61 test pairs)" in printed and "test F1" in printed
    assert main(["pairs", "--data", str(bench), "--train-size", "huge", "--config", "em-test",
                 "--out", str(tmp_path / "r2")]) == 2
    assert "one train size" in capsys.readouterr().err
    assert main(["pairs", "--data", str(tmp_path), "--config", "em-test", "--out", str(tmp_path / "r3")]) == 2
    assert "not a benchmark folder" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_out_of_fold_probabilities_never_see_their_own_label():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=300), "b:c": rng.normal(size=300)})
    y = (x["a"] + 0.5 * rng.normal(size=300) > 0).astype(int).to_numpy()
    fold = np.arange(300) % 5
    params = LgbmParams(n_estimators=40, num_threads=1)
    first = fit_with_oof(x, y, fold, params)
    flipped = y.copy()
    flipped[fold == 0] = 1 - flipped[fold == 0]
    second = fit_with_oof(x, flipped, fold, params)
    np.testing.assert_array_equal(first.prob[fold == 0], second.prob[fold == 0])
    assert not np.array_equal(first.prob[fold == 1], second.prob[fold == 1])  # fold 0 trains the others
    assert first.predict(x).shape == (300,) and first.features == ["a", "b:c"]


def test_prune_drops_a_member_only_while_that_raises_the_fit_f1():
    y = np.array([1, 1, 1, 0, 0, 0])
    votes = {"good": np.array([1, 1, 1, 0, 0, 0]), "ok": np.array([1, 1, 0, 0, 0, 0]),
             "noise": np.array([1, 1, 1, 0, 0, 1])}

    def predict(cols):  # majority vote, ties positive
        return np.mean([votes[c] for c in cols], axis=0) >= 0.5

    # all three: rows 0-2 get 2 or 3 votes of 3, row 5 one: F1 1.0 already, nothing to gain
    assert prune_members(y, ["good", "ok", "noise"], predict) == ["good", "ok", "noise"]
    votes["noise"] = np.array([0, 0, 0, 1, 1, 1])  # all three: row 2 gets 1 vote of 3, F1 0.8; without noise 1.0
    assert prune_members(y, ["good", "ok", "noise"], predict) == ["good", "ok"]


def test_stacker_rule_thresholds_its_out_of_fold_probabilities():
    rng = np.random.default_rng(1)
    scores = pd.DataFrame({"m": rng.random(200), "cmp:codes": rng.random(200)})
    y = (scores["m"] > 0.6).astype(int).to_numpy()
    fitted = stacker_rule(["m", "cmp:codes"], seed=0).fit(y, scores, np.zeros(200, bool))
    pred = fitted.predict(scores, np.zeros(200, bool))
    assert (pred == y.astype(bool)).mean() > 0.95 and 0.0 < fitted.threshold < 1.0
    assert fitted.params["features"] == 2


def test_summarize_keeps_the_rarest_words_of_long_values_in_order():
    items = pd.DataFrame({"item_id": ["1", "2", "3"],
                          "item_pvs": ["description#:#the sony dscw120 the camera#;#price#:#10",
                                       "description#:#the camera", "description#:#the sony"]})
    out = summarize_values(items, 2)
    # idf: the 0, camera/sony log(3/2), dscw120 log 3, "10" log 3: the two rarest of value 1 are dscw120, then
    # camera/sony by position (sony first)
    assert out["item_pvs"].tolist() == ["description#:#sony dscw120#;#price#:#10", "description#:#the camera",
                                        "description#:#the sony"]
    assert summarize_values(items, 0) is items


@pytest.mark.parametrize("config", [{"comparisons": ["codez"]},
                                    {"members": [{"name": "c", "kind": "comparisons_lgbm",
                                                  "options": {"comparisons": ["prize"]}}]}])
def test_an_unknown_comparison_is_refused_when_the_config_loads(config):
    from prodmatch.ccks import CcksRunConfig
    from prodmatch.config import load_config

    with pytest.raises(DataError, match="did you mean"):
        load_config({"members": [{"name": "t", "kind": "tfidf_cosine"}], **config}, CcksRunConfig)


@pytest.mark.parametrize("name", ["em-cpu", "em-fast", "em-test"])
def test_shipped_pair_configs_load(name):
    from prodmatch.ccks import CcksRunConfig, build_members
    from prodmatch.config import load_config

    config = load_config(name, CcksRunConfig)
    assert config.stacker and config.prune and len(build_members(config)) == len(config.members)


def test_a_split_too_small_to_choose_on_is_refused_before_any_training(bench, tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    for name in ("train.txt", "test.txt"):
        (folder / name).write_text((bench / name).read_text())
    valid = (bench / "valid.txt").read_text().splitlines()
    (folder / "valid.txt").write_text("\n".join(valid[:3]) + "\n")  # 1 positive, 2 negatives
    with pytest.raises(DataError, match=r"valid.txt: 1 positive and 2 negative pairs; at least 3"):
        ccks_run(folder, "em-test", tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists() and not (tmp_path / "run.failed").exists()
