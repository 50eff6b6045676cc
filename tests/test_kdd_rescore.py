"""Re-scoring a KDD run from its saved models (`prodmatch.kdd.rescore`, `prodmatch kdd --rescore`):
the test scores equal the run's own, bit for bit, without training; seconds."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.errors import DataError
from prodmatch.kdd import kdd_rescore

from .test_kdd import data, run  # noqa: F401  (module fixtures: the test preset and its run)


def test_every_trained_model_is_saved_with_config_and_data_hash(run):
    record = json.loads((run["out"] / "run.json").read_text())
    for name in ("two_tower", "sentence_match", "word_match"):
        folder = run["out"] / "models" / name
        manifest = json.loads((folder / "kdd_model.json").read_text())
        assert manifest["kind"] == name and manifest["config"]["name"] == name
        assert manifest["config"]["options"] == next(m["options"] for m in record["config"]["methods"] if m["name"] == name)
        assert set(manifest["data"]) == {"train.tsv", "multimodal_labels.txt"}
        assert (folder / "model.safetensors").is_file() and (folder / "vocab.json").is_file()
        assert f"models/{name}/kdd_model.json" in record["methods"][name]["saved"]
    assert (run["out"] / "models" / "two_tower" / "text" / "config.json").is_file()  # the tiny text encoder it reads
    assert record["methods"]["weighted_ensemble"]["saved"] == ["models/weighted_ensemble/weights.json"]


def test_rescored_test_scores_equal_the_runs_exactly(run, data, tmp_path, monkeypatch):
    import prodmatch.kdd.methods as methods

    def no_training(self, context):
        raise AssertionError(f"{self.spec.name} trained while re-scoring")

    monkeypatch.setattr(methods.Method, "fit", no_training)
    for kind in ("two_tower", "sentence_match", "word_match"):
        monkeypatch.setattr(methods.METHODS[kind], "fit", no_training)
    result = kdd_rescore(run["out"], data, tmp_path / "again")
    original = pd.read_parquet(run["out"] / "scores.parquet")
    original = original[original["split"] != "valid"].reset_index(drop=True)
    assert pd.read_parquet(result["scores"]).equals(original)
    compare = pd.read_csv(run["out"] / "compare.csv")
    assert pd.read_csv(result["compare"]).equals(compare[compare["split"] != "valid"].reset_index(drop=True))
    for split in ("testA", "testB"):
        assert (result["out"] / split / "submission.csv").read_bytes() == \
            (run["out"] / split / "submission.csv").read_bytes()
    assert json.loads((result["out"] / "run.json").read_text())["stage"] == "kdd_rescore"


def test_cli_rescore_writes_a_new_folder_and_never_overwrites(run, data, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["kdd", "--data", str(data), "--rescore", str(run["out"]), "--out", str(out)]) == 0
    assert "testB/submission.csv" in capsys.readouterr().out
    assert main(["kdd", "--data", str(data), "--rescore", str(run["out"]), "--out", str(out)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert main(["kdd", "--data", str(data), "--rescore", str(run["out"]), "--out", str(tmp_path / "x"),
                 "--overwrite"]) == 2


def test_a_missing_or_foreign_model_is_a_clear_error(run, data, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(run["out"], broken)
    shutil.rmtree(broken / "models" / "word_match")
    with pytest.raises(DataError, match="no kdd_model.json"):
        kdd_rescore(broken, data, tmp_path / "out1")
    shutil.copytree(run["out"] / "models" / "sentence_match", broken / "models" / "word_match")
    with pytest.raises(DataError, match="does not fit method 'word_match'"):
        kdd_rescore(broken, data, tmp_path / "out2")
    with pytest.raises(DataError, match="not a KDD run"):
        kdd_rescore(data, data, tmp_path / "out3")
    assert not (tmp_path / "out1").exists() and not (tmp_path / "out2").exists()


def _damage_run_json(folder):
    (folder / "run.json").write_text('{"stage": "kdd", "conf')


def _damage_weights(folder):
    path = folder / "models" / "weighted_ensemble" / "weights.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "weights": saved["weights"][:-1]}))


def _damage_vocab(folder):
    (folder / "models" / "word_match" / "vocab.json").write_text("[1, 2]")


def _damage_manifest(folder):
    path = folder / "models" / "word_match" / "kdd_model.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "config": {**meta["config"], "zzz": 1}}))


def _damage_reranker(folder):
    (folder / "models" / "lgbm_rerank" / "model.txt").write_text("not a model\n")


DAMAGES = {"truncated run.json": (_damage_run_json, "run.json is not valid JSON"),
           "a weight short": (_damage_weights, "weights must be"),
           "vocabulary not an object": (_damage_vocab, "vocabulary is not a JSON object"),
           "manifest config with an unknown key": (_damage_manifest, "zzz"),
           "reranker not a LightGBM model": (_damage_reranker, "not a LightGBM model")}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_run_is_one_line_exit_2_and_nothing_written(damage, run, data, tmp_path, capsys):
    """Each of these was a traceback (JSONDecodeError, TypeError, LightGBMError), exit 1."""
    broken = tmp_path / "broken"
    shutil.copytree(run["out"], broken)
    change, message = DAMAGES[damage]
    change(broken)
    assert main(["kdd", "--data", str(data), "--rescore", str(broken), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("prodmatch kdd: error:") and message in err[0], err
    assert not (tmp_path / "out").exists()
