"""Hostile but realistic input: each case the hostile-input pass found is a clear error (exit 2,
one line naming the problem) or a correct result. Each test failed before its fix."""
from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from prodmatch.cli import main
from prodmatch.ccks.data import iter_jsonl
from prodmatch.data.shopee import read_shopee_csv
from prodmatch.errors import DataError
from prodmatch.metrics import read_truth

from .conftest import matched_run, shopee_rows, write_shopee


def test_an_unclosed_quote_is_an_error_naming_its_line(tmp_path):
    """Was: 62 rows silently swallowed into one 7,885-character title, exit 0."""
    csv = write_shopee(tmp_path, shopee_rows(20), images=False)
    lines = csv.read_text().splitlines()
    lines.insert(6, 'train_y,a.jpg,e91886e799997a62,"unclosed title,123')
    lines.insert(14, 'train_z,b.jpg,e91886e799997a62,"""Quoted"" title",42')  # its quote closes the first one
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 6 \(line 7\).*unclosed quote"):
        read_shopee_csv(csv, image_policy="text-only")


def test_label_group_beyond_int64_is_an_error(tmp_path):
    """Was: 1e30 became -9223372036854775808."""
    rows = shopee_rows(4)
    rows[1]["label_group"] = "1e30"
    csv = write_shopee(tmp_path, rows, images=False)
    with pytest.raises(DataError, match="label_group must be an integer below 2\\*\\*63.*train_1001"):
        read_shopee_csv(csv, image_policy="text-only")


def test_non_utf8_jsonl_line_is_an_error_naming_it(tmp_path):
    """Was: a UnicodeDecodeError traceback from iter_jsonl."""
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"item_id": "a"}\n{"item_id": "caf\xe9"}\n')
    with pytest.raises(DataError, match="line 2 is not UTF-8 \\(byte 0xe9"):
        list(iter_jsonl(path))


def test_truth_with_duplicates_or_bad_labels_is_refused(tmp_path):
    """Was: InvalidIndexError for a duplicate id; a NaN label_group scored silently."""
    path = tmp_path / "truth.csv"
    path.write_text("posting_id,label_group\na,1\nb,1\na,2\n")
    with pytest.raises(DataError, match="duplicate posting_id.*'a'"):
        read_truth(path)
    path.write_text("posting_id,label_group\na,1\nb,\nc,1.5\n")
    with pytest.raises(DataError, match="label_group must be an integer"):
        read_truth(path)
    path.write_text("posting_id,label_group\na,1\nb,1\n")
    assert read_truth(path)["label_group"].tolist() == [1, 1]


def test_predict_refuses_to_replace_a_submission(tmp_path, capsys):
    """Was: a 40-row submission silently replaced by 3 rows."""
    data, run = matched_run(tmp_path, methods=("tfidf",))
    models = tmp_path / "models"
    assert main(["bundle", "--run", str(run), "--out", str(models)]) == 0
    out = tmp_path / "submission.csv"
    out.write_text("posting_id,matches\nx,x\n")
    assert main(["predict", "--data", str(data), "--models", str(models), "--out", str(out), "--quiet"]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_text() == "posting_id,matches\nx,x\n"
    assert main(["predict", "--data", str(data), "--models", str(models), "--out", str(out), "--quiet",
                 "--overwrite"]) == 0
    assert len(pd.read_csv(out)) == len(pd.read_csv(data / "test.csv"))


@pytest.fixture(scope="module")
def stacked_models(tmp_path_factory):
    from prodmatch.stack.run import stack_run
    from prodmatch.predict import make_bundle

    root = tmp_path_factory.mktemp("hostile")
    data, run = matched_run(root, methods=("tfidf", "phash"))
    stack_run(run, data_dir=data, config={"k": 10, "lgbm": {"n_estimators": 20, "num_leaves": 7,
                                                             "min_child_samples": 5, "num_threads": 1}},
              progress=False)
    return data, make_bundle(run, root / "models", use="stacker")


@pytest.mark.parametrize("damage, message", [
    (lambda m: (m / "bundle.json").write_text((m / "bundle.json").read_text()[:40]), "bundle is not valid JSON"),
    (lambda m: (m / "bundle.json").write_text(json.dumps({"version": "x"})), "not a bundle.json"),
    (lambda m: (m / "stacker" / "model.txt").write_text("not a model\n"), "not a LightGBM model"),
    (lambda m: (m / "bundle.json").write_text(json.dumps(
        {**json.loads((m / "bundle.json").read_text()), "models": {}})), "the bundle lacks"),
])
def test_corrupt_models_folder_is_one_line_before_any_work(stacked_models, tmp_path, capsys, damage, message):
    """Was: JSONDecodeError / KeyError / LightGBMError tracebacks (the last after all embedding work)."""
    data, models = stacked_models
    broken = tmp_path / "broken"
    shutil.copytree(models, broken)
    damage(broken)
    assert main(["predict", "--data", str(data), "--models", str(broken), "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prodmatch predict: error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "s.csv").exists()


def test_a_one_character_encoder_json_is_refused(tmp_path):
    from prodmatch.predict import _check_encoder_configs

    folder = tmp_path / "m" / "enc"
    folder.mkdir(parents=True)
    (folder / "encoder.json").write_text("{")
    with pytest.raises(DataError, match="encoder description is not valid JSON"):
        _check_encoder_configs(tmp_path / "m", {"models": {"text": {"folders": ["enc"]}}})


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    import prodmatch.metrics as metrics

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(metrics, "read_truth", interrupted)
    assert main(["score", "--truth", "t.csv", "--pred", "p.csv"]) == 130
    assert capsys.readouterr().err.strip() == "prodmatch score: interrupted"


def test_check_decodes_images_and_finds_a_truncated_jpeg(tmp_path, capsys):
    """Was: `check` reported `bad images: 0` (header-only check) for a truncated JPEG."""
    from PIL import Image

    csv = write_shopee(tmp_path, shopee_rows(4), images=False)
    folder = tmp_path / "train_images"
    folder.mkdir(exist_ok=True)
    for i, row in enumerate(shopee_rows(4)):
        Image.new("RGB", (64, 64), (40 * i, 90, 160)).save(folder / row["image"], quality=95)
    whole = (folder / shopee_rows(4)[2]["image"]).read_bytes()
    (folder / shopee_rows(4)[2]["image"]).write_bytes(whole[:-10])  # the header check still passes it
    assert main(["check", "shopee", str(csv), "--image-policy", "placeholder"]) == 0
    assert "bad images: 1" in capsys.readouterr().out


def test_training_skips_an_image_that_does_not_decode(tmp_path):
    """Was: a truncated JPEG (passes the header check) trained as a grey placeholder under its label."""
    import torch
    from PIL import Image

    from prodmatch.encoders import create_encoder
    from prodmatch.encoders.train import _usable_rows

    rows = shopee_rows(4)
    folder = tmp_path / "train_images"
    folder.mkdir()
    for i, row in enumerate(rows):
        Image.new("RGB", (64, 64), (40 * i, 90, 160)).save(folder / row["image"], quality=95)
    whole = (folder / rows[1]["image"]).read_bytes()
    (folder / rows[1]["image"]).write_bytes(whole[:-10])
    frame = read_shopee_csv(write_shopee(tmp_path, rows, images=False), image_policy="placeholder")
    assert frame["image_ok"].all()  # the loader's header check passes it
    encoder = create_encoder("image", {"backbone": "test_efficientnet", "image_size": 32, "dim": 8})
    dataset = encoder.dataset(frame, train=True, labels=frame["label_group"].to_numpy() - 500)
    batch, labels = encoder.collate([dataset[i] for i in range(4)])
    assert labels.tolist() == [0, -1, 1, 1]
    kept, kept_labels = _usable_rows(batch, labels)
    assert kept.shape[0] == 3 and kept_labels.tolist() == [0, 1, 1] and torch.equal(kept[1], batch[2])
    # at inference the same row is a placeholder, kept in place
    assert [label for _, label in (encoder.dataset(frame, train=False)[i] for i in range(4))] == [-1] * 4


def test_artifacts_get_the_umask_mode_not_0600(tmp_path):
    """Was: every atomically written file 0600 and folder 0700 (mkstemp / mkdtemp) under umask 0022."""
    import os

    from prodmatch.io import atomic_dir, write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755


def test_frozen_training_skips_an_image_that_does_not_decode(tmp_path):
    """The frozen-backbone path caches features from the inference transform, where such an image
    is the grey placeholder: that row is left out of training too."""
    from PIL import Image

    from prodmatch.encoders import create_encoder
    from prodmatch.encoders.train import TrainConfig, fit

    rows = shopee_rows(6)
    folder = tmp_path / "train_images"
    folder.mkdir()
    for i, row in enumerate(rows):
        Image.new("RGB", (64, 64), (40 * i, 90, 25 * i)).save(folder / row["image"], quality=95)
    whole = (folder / rows[1]["image"]).read_bytes()
    (folder / rows[1]["image"]).write_bytes(whole[:-10])
    frame = read_shopee_csv(write_shopee(tmp_path, rows, images=False), image_policy="placeholder")
    encoder = create_encoder("image", {"backbone": "test_efficientnet", "image_size": 32, "dim": 8})
    config = TrainConfig(epochs=1, batch_size=2, freeze_backbone=True, save_checkpoints=False)
    result = fit(encoder, frame, None, config, tmp_path / "fit", progress=False)
    assert result.skipped == 1


def test_min2_on_empty_lists_and_knn_on_sparse_input():
    """Were: a raw 'argmax of an empty sequence' ValueError; 'must be a 2-D matrix, got shape ()'."""
    import numpy as np
    import scipy.sparse as sp

    from prodmatch.neighbors import knn
    from prodmatch.post.threshold import min2

    out = min2(np.zeros((3, 0), np.float32), np.zeros((3, 0), np.int64), 0.5, 0.3)
    assert out.pair_set() == {(0, 0), (1, 1), (2, 2)}  # each row matches itself only
    with pytest.raises(DataError, match="scipy sparse matrix.*SparseModel.search"):
        knn(sp.random(5, 4, density=0.5, format="csr", random_state=0), 2)
