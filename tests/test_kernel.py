"""The Kaggle kernel script, run against a fake /kaggle/input built from synthetic data.

The prodmatch wheel is built from this checkout and installed offline (--no-index) into a
target folder (PIP_TARGET), so the test's own environment is left alone.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from prodmatch.metrics import read_submission, score_submission
from prodmatch.metrics import read_truth
from prodmatch.predict import make_bundle

from .conftest import matched_run

REPO = Path(__file__).resolve().parents[1]


def load_builder():
    spec = importlib.util.spec_from_file_location("build_datasets", REPO / "kernels" / "build_datasets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    root = tmp_path_factory.mktemp("kaggle")
    data, run = matched_run(root, seed=1)
    models = make_bundle(run, root / "models")
    inputs = root / "input"
    comp = inputs / "shopee-product-matching"
    comp.mkdir(parents=True)
    pd.read_csv(data / "test.csv").to_csv(comp / "test.csv", index=False)
    (comp / "test_images").symlink_to(data / "test_images")
    builder = load_builder()
    builder.main(["--models", str(models), "--out", str(inputs)])
    return root, inputs, data


def test_datasets_have_metadata_and_the_wheel(kaggle):
    _, inputs, _ = kaggle
    assert list((inputs / "prodmatch-wheels").glob("prodmatch-*.whl"))
    for name in ("prodmatch-wheels", "prodmatch-models"):
        assert (inputs / name / "dataset-metadata.json").is_file()
    assert (inputs / "prodmatch-models" / "bundle.json").is_file()


def test_kernel_script_writes_the_submission_offline(kaggle):
    root, inputs, data = kaggle
    working = root / "working"
    working.mkdir()
    target = root / "site"
    env = {**os.environ, "KAGGLE_INPUT": str(inputs), "KAGGLE_WORKING": str(working), "PIP_TARGET": str(target),
           "PIP_NO_DEPS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run([sys.executable, str(REPO / "kernels" / "shopee" / "kernel.py")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (target / "prodmatch" / "predict.py").is_file()  # ran the wheel it installed
    sub = read_submission(working / "submission.csv")
    assert len(sub) == len(pd.read_csv(inputs / "shopee-product-matching" / "test.csv"))
    assert score_submission(read_truth(data / "test_truth.csv"), sub).f1 > 0.5
    assert "timing:" in done.stdout


def test_kernel_names_a_missing_dataset(tmp_path):
    env = {**os.environ, "KAGGLE_INPUT": str(tmp_path)}
    done = subprocess.run([sys.executable, str(REPO / "kernels" / "shopee" / "kernel.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "missing input dataset" in done.stderr
