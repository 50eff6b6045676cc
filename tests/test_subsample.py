"""data.subsample: whole label groups up to a row budget, and a smaller Shopee folder built from them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prodmatch.data.subsample import subsample_shopee, take_groups
from prodmatch.data.synth import generate
from prodmatch.errors import DataError

FRAME = pd.DataFrame({"label_group": list("aaabbccccd"), "x": range(10)})  # sizes a 3, b 2, c 4, d 1


def many_groups(n=200, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"label_group": rng.integers(0, 60, n), "x": np.arange(n)})


def test_whole_groups_in_random_order_until_the_budget_is_reached():
    # pinned draws (seed 0 orders the groups a, c, ...: 3 rows < 5, then 7 >= 5)
    assert "".join(take_groups(FRAME, 5, 0)["label_group"]) == "aaacccc"
    assert "".join(take_groups(FRAME, 5, 1)["label_group"]) == "aaabb"
    assert "".join(take_groups(FRAME, 5, 2)["label_group"]) == "ccccd"
    frame = many_groups()
    sizes = frame["label_group"].value_counts()
    for rows in (1, 10, 57, 150):
        for seed in range(5):
            taken = take_groups(frame, rows, seed)
            counts = taken["label_group"].value_counts()
            assert counts.to_dict() == sizes[counts.index].to_dict()  # whole groups only
            assert rows <= len(taken) < rows + counts.max()  # the budget, over by less than one group
            assert taken["x"].is_monotonic_increasing  # rows keep their order


def test_deterministic_by_seed_and_a_generator_is_advanced():
    frame = many_groups()
    assert take_groups(frame, 50, 7).equals(take_groups(frame, 50, 7))
    assert not take_groups(frame, 50, 7).equals(take_groups(frame, 50, 8))
    rng = np.random.default_rng(7)
    first, second = take_groups(frame, 50, rng), take_groups(frame, 50, rng)
    assert first.equals(take_groups(frame, 50, 7)) and not second.equals(first)


def test_small_frames_come_back_whole_and_bad_arguments():
    assert take_groups(FRAME, 10, 0) is FRAME and take_groups(FRAME, 99, 0) is FRAME
    with pytest.raises(DataError, match="rows must be >= 1"):
        take_groups(FRAME, 0, 0)
    with pytest.raises(DataError, match="no 'group' column"):
        take_groups(FRAME, 3, 0, column="group")


@pytest.fixture(scope="module")
def shopee(tmp_path_factory):
    out = tmp_path_factory.mktemp("shopee")
    generate("shopee", out, seed=0, preset="test")
    return out


def test_subsample_shopee_folder(shopee, tmp_path):
    dst = tmp_path / "small"
    counts = subsample_shopee(shopee, dst, train_rows=100, test_rows=25, seed=0)
    read = lambda folder, name: pd.read_csv(folder / name, dtype=str, keep_default_na=False)  # noqa: E731
    train, test, truth = (read(dst, n) for n in ("train.csv", "test.csv", "test_truth.csv"))
    full_train, full_truth = read(shopee, "train.csv"), read(shopee, "test_truth.csv")
    assert counts == {"train": len(train), "test": len(test), "train_groups": train["label_group"].nunique(),
                      "test_groups": truth["label_group"].nunique()}
    assert 100 <= len(train) < 150 and 25 <= len(test) < 40
    whole_groups = lambda part, full: part.value_counts().to_dict() == full.value_counts()[part.unique()].to_dict()  # noqa: E731
    assert whole_groups(train["label_group"], full_train["label_group"])
    assert list(test["posting_id"]) == list(truth["posting_id"])
    assert whole_groups(truth["label_group"], full_truth["label_group"])
    lines = set((shopee / "train.csv").read_text().splitlines())
    assert set((dst / "train.csv").read_text().splitlines()) <= lines  # rows as they were, byte for byte
    assert (dst / "train_images").resolve() == (shopee / "train_images").resolve()
    assert all((dst / "test_images" / name).is_file() for name in test["image"])
    # the same seed, the same folder; none given: every row
    again = subsample_shopee(shopee, tmp_path / "again", train_rows=100, test_rows=25, seed=0)
    assert again == counts and (tmp_path / "again" / "test.csv").read_bytes() == (dst / "test.csv").read_bytes()
    whole = subsample_shopee(shopee, tmp_path / "whole")
    assert (whole["train"], whole["test"]) == (150, 40)
    assert (tmp_path / "whole" / "train.csv").read_bytes() == (shopee / "train.csv").read_bytes()


def test_subsample_refuses_to_replace_unless_told(shopee, tmp_path):
    dst = tmp_path / "small"
    subsample_shopee(shopee, dst, train_rows=60, seed=0)
    with pytest.raises(FileExistsError, match="overwrite"):
        subsample_shopee(shopee, dst, train_rows=80, seed=0)
    assert subsample_shopee(shopee, dst, train_rows=80, seed=0, overwrite=True)["train"] >= 80
    (dst / "train_images").unlink()
    (dst / "train_images").mkdir()
    with pytest.raises(DataError, match="real folder"):
        subsample_shopee(shopee, dst, train_rows=80, seed=0, overwrite=True)
    with pytest.raises(DataError, match="source folder itself"):
        subsample_shopee(shopee, shopee, train_rows=80, overwrite=True)


def test_a_refused_subsample_writes_nothing_and_bad_folders_are_named(shopee, tmp_path):
    """The real-folder check comes before any write (the CSVs were once rewritten first); a missing
    source and a file as destination are one DataError each."""
    dst = tmp_path / "small"
    subsample_shopee(shopee, dst, train_rows=60, seed=0)
    before = (dst / "train.csv").read_bytes()
    (dst / "train_images").unlink()
    (dst / "train_images").mkdir()
    with pytest.raises(DataError, match="real folder"):
        subsample_shopee(shopee, dst, train_rows=80, seed=1, overwrite=True)
    assert (dst / "train.csv").read_bytes() == before
    with pytest.raises(DataError, match="has no train.csv"):
        subsample_shopee(tmp_path / "nowhere", tmp_path / "x")
    (tmp_path / "a_file").write_text("")
    with pytest.raises(DataError, match="is a file"):
        subsample_shopee(shopee, tmp_path / "a_file")


def test_missing_labels_are_one_group():
    """NaN labels form one whole group (np.isin never matched NaN: such rows were silently dropped)."""
    frame = pd.DataFrame({"label_group": [np.nan, np.nan, "a", "b"]})
    kept = take_groups(frame, 2, 0)
    assert kept["label_group"].isna().sum() in (0, 2) and len(kept) >= 2
