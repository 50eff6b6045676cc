"""Shared fixtures: tiny hand-made Shopee folders (the generators have their own tests)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

# The real sample is never committed; tests that use it skip when it is not beside the checkout.
REAL_TITLES = Path(os.environ.get("PRODMATCH_REAL_TITLES",
                                  Path(__file__).resolve().parents[2] / "shared" / "data" / "shopee_titles"))


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Toy models gain nothing from intra-op threads; one thread also keeps them steady when other
    processes share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_shopee(folder: Path, rows: list[dict], *, stem: str = "train", images: bool = True) -> Path:
    """Write ``<stem>.csv`` (+ ``<stem>_images/`` with small random JPEGs) and return the CSV path."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    if images:
        image_dir = folder / f"{stem}_images"
        image_dir.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        for name in frame["image"]:
            pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(image_dir / name, format="JPEG")
    path = folder / f"{stem}.csv"
    frame.to_csv(path, index=False)
    return path


def shopee_rows(n: int, *, labelled: bool = True, prefix: str = "train") -> list[dict]:
    rows = []
    for i in range(n):
        row = {
            "posting_id": f"{prefix}_{1000 + i}",
            "image": f"{i:032x}.jpg",
            "image_phash": f"{(i * 0x9E3779B97F4A7C15) % (1 << 64):016x}",
            "title": f"Produk {i // 2} 250ml ORIGINAL",
        }
        if labelled:
            row["label_group"] = 500 + i // 2
        rows.append(row)
    return rows


@pytest.fixture
def shopee_folder(tmp_path) -> Path:
    """A 6-row labelled train.csv with images (3 groups of 2)."""
    write_shopee(tmp_path, shopee_rows(6))
    return tmp_path


def preset_folder(tmp_path_factory, task: str, name: str | None = None) -> Path:
    """The synthetic `test` preset of `task` (seed 0) in a fresh temp folder: a module fixture's data."""
    from prodmatch.data.synth import generate

    folder = tmp_path_factory.mktemp(name or task) / "data"
    generate(task, folder, seed=0, preset="test")
    return folder


def matched_run(root: Path, *, seed: int = 0, methods=("tfidf", "phash"), k: int = 10) -> tuple[Path, Path]:
    """Synthetic `test` preset -> TF-IDF / phash embedding run -> matcher: (data folder, run folder)."""
    from prodmatch.data.synth import generate
    from prodmatch.embedders.run import embed_unsupervised
    from prodmatch.post.run import match_run

    data = root / "data"
    generate("shopee", data, seed=seed, preset="test")
    run = root / "run"
    for method in methods:
        embed_unsupervised(data, method, run)
    match_run(run, data_dir=data, config={"k": k}, progress=False)
    return data, run


@pytest.fixture(scope="session")
def kdd_preset(tmp_path_factory):
    """The KDD test preset, one per session (test_kdd and test_kdd_rescore share it)."""
    return preset_folder(tmp_path_factory, "kdd")


@pytest.fixture(scope="session")
def kdd_test_run(kdd_preset, tmp_path_factory):
    """One kdd-test run on it, shared the same way (tests copy it before changing anything)."""
    from prodmatch.kdd import kdd_run

    return kdd_run(kdd_preset, "kdd-test", tmp_path_factory.mktemp("runs") / "run")
