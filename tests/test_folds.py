import numpy as np
import pandas as pd
import pytest

from prodmatch.data.folds import ccks_folds, group_folds, pair_components, read_folds, shopee_folds, write_folds
from prodmatch.errors import DataError


def test_group_folds_never_split_a_group():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 40, 300)
    folds = group_folds(groups, 5, seed=1)
    per_group = pd.Series(folds).groupby(groups).nunique()
    assert (per_group == 1).all()
    assert set(folds) == set(range(5))
    assert np.array_equal(folds, group_folds(groups, 5, seed=1))


def test_group_folds_errors():
    with pytest.raises(DataError, match="cannot fill"):
        group_folds([1, 1, 2], 5)
    with pytest.raises(DataError, match=">= 2"):
        group_folds([1, 2, 3], 1)


def test_shopee_folds_needs_labels():
    with pytest.raises(DataError, match="label_group"):
        shopee_folds(pd.DataFrame({"posting_id": ["a"]}))


def test_pair_components_hand_computed():
    comp = pair_components(["a", "b", "x", "c"], ["b", "c", "y", "a"])
    assert comp.tolist() == [0, 0, 1, 0]  # numbered by first appearance: a's component, then x's


def test_pair_components_take_ids_of_mixed_types():
    """CCKS ids are strings, KDD's integers: one function serves both (no sort of mixed types)."""
    assert pair_components([7, "7", 7], ["7", 8, 9]).tolist() == [0, 0, 0]
    assert pair_components([1, "x"], [2, "y"]).tolist() == [0, 1]


def test_ccks_folds_keep_items_in_one_fold():
    rng = np.random.default_rng(0)
    src = [f"i{v}" for v in rng.integers(0, 400, 300)]
    tgt = [f"i{v}" for v in rng.integers(0, 400, 300)]
    table = ccks_folds(pd.DataFrame({"src_item_id": src, "tgt_item_id": tgt}), n_folds=3)
    items = pd.concat([table[["src_item_id", "fold"]].set_axis(["item", "fold"], axis=1),
                       table[["tgt_item_id", "fold"]].set_axis(["item", "fold"], axis=1)])
    assert (items.groupby("item")["fold"].nunique() == 1).all()


def test_write_folds_roundtrip_and_no_silent_overwrite(tmp_path):
    table = pd.DataFrame({"posting_id": ["a", "b"], "label_group": [1, 2], "fold": [0, 1]})
    path = write_folds(table, tmp_path / "folds.csv")
    assert write_folds(table, path) == path  # same content: fine
    other = table.assign(fold=[1, 0])
    with pytest.raises(FileExistsError):
        write_folds(other, path)
    write_folds(other, path, overwrite=True)
    assert read_folds(path)["fold"].tolist() == [1, 0]
