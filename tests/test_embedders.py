"""The embedding-method registry: every stage finds a method by name, and a new one is one class."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.embedders import Embedder, _registry, embedder_names, get_embedder, register_embedder
from prodmatch.errors import DataError
from prodmatch.metrics import read_submission


def test_builtin_methods_and_their_kinds():
    assert embedder_names(trained=False) == ["phash", "tfidf", "tfidf-char"]
    assert embedder_names(trained=True) == ["encoder"]
    assert {n: get_embedder(n).kind for n in embedder_names(trained=False)} == {
        "phash": "phash", "tfidf": "sparse", "tfidf-char": "sparse"}
    frame = pd.DataFrame({"title": ["kopi susu 1kg", "kopi susu 1 kg"], "image_phash": ["ff00ff00ff00ff00"] * 2})
    assert get_embedder("phash").transform(frame).tolist() == [0xFF00FF00FF00FF00] * 2
    word, char = get_embedder("tfidf").transform(frame), get_embedder("tfidf-char").transform(frame)
    assert word.shape[0] == char.shape[0] == 2 and char.shape[1] > word.shape[1]
    with pytest.raises(DataError, match=r"unknown embedding method 'tfidff'; did you mean tfidf, tfidf-char\? known: encoder, phash"):
        get_embedder("tfidff")


@pytest.fixture
def title_length():
    """A new unsupervised method, registered the way a new module under embedders/ would be."""

    @register_embedder("title-length")
    class TitleLength(Embedder):
        """Dense 2-d: (title length, word count), normalised; a toy that still separates sizes."""

        kind = "dense"

        def transform(self, frame):
            titles = frame["title"].astype(str)
            x = np.stack([titles.str.len(), titles.str.split().str.len()], axis=1).astype(np.float32)
            return x / np.linalg.norm(x, axis=1, keepdims=True)

    yield TitleLength
    del _registry.EMBEDDERS["title-length"]


def test_a_new_method_runs_through_embed_match_bundle_predict(title_length, tmp_path, capsys):
    """Adding a method is one class: the CLI offers it, and embed -> match -> bundle -> predict use it."""
    from prodmatch.data.synth import generate

    data = tmp_path / "data"
    generate("shopee", data, seed=0, preset="test")
    run = tmp_path / "run"
    for method in ("tfidf", "title-length"):
        assert main(["embed", method, "--data", str(data), "--out", str(run)]) == 0
    meta = json.loads((run / "models" / "title-length" / "model.json").read_text())
    assert meta["kind"] == "dense" and meta["config"]["method"] == "title-length"
    (tmp_path / "all.yaml").write_text("union_select: all\n")  # keep the toy in the union, so the bundle needs it
    assert main(["match", "--run", str(run), "--data", str(data), "--config", str(tmp_path / "all.yaml")]) == 0
    assert main(["bundle", "--run", str(run), "--out", str(tmp_path / "models"), "--use", "matcher"]) == 0
    bundle = json.loads((tmp_path / "models" / "bundle.json").read_text())
    assert bundle["models"]["title-length"] == {"kind": "dense", "source": "title-length", "folders": []}
    assert main(["predict", "--data", str(data), "--models", str(tmp_path / "models"),
                 "--out", str(tmp_path / "sub.csv")]) == 0
    assert len(read_submission(tmp_path / "sub.csv")) == len(pd.read_csv(data / "test.csv"))
    assert main(["baseline", "--data", str(data), "--method", "title-length", "--out-root", str(tmp_path / "b")]) == 0
    capsys.readouterr()


def test_embed_names_the_known_methods_on_a_typo(tmp_path, capsys):
    assert main(["embed", "tfidff", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not an unsupervised method (phash, tfidf, tfidf-char)" in err and "image, text" in err


def test_fold_encoders_need_images_by_kind_even_without_it_in_the_bundle(tmp_path):
    """Was: a bundle entry without encoder_kind (older bundles) raised 'unknown encoder kind None'."""
    from prodmatch.embedders import embedder_from_bundle

    for kind, wanted in (("text", False), ("image", True)):
        fold = tmp_path / kind / "0"
        fold.mkdir(parents=True)
        (fold / "encoder.json").write_text(json.dumps({"format": 1, "kind": kind, "dim": 8, "config": {}}))
        spec = {"kind": "dense", "source": "encoder", "folders": [f"{kind}/0"]}
        assert embedder_from_bundle(tmp_path, spec).needs_images is wanted
        assert embedder_from_bundle(tmp_path, {**spec, "encoder_kind": kind}).needs_images is wanted
    with pytest.raises(DataError, match="unknown encoder kind 'imgae'"):
        embedder_from_bundle(tmp_path, {**spec, "encoder_kind": "imgae"}).needs_images
