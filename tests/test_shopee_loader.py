import pandas as pd
import pytest

from prodmatch.data.shopee import read_shopee_csv
from prodmatch.errors import DataError

from .conftest import shopee_rows, write_shopee


def test_loads_and_types(shopee_folder):
    frame = read_shopee_csv(shopee_folder / "train.csv")
    assert list(frame.columns) == ["posting_id", "image", "image_phash", "title", "label_group", "image_path", "image_ok"]
    assert frame.index.tolist() == list(range(6))
    assert frame["label_group"].dtype == "int64"
    assert frame["image_ok"].all()


def test_unnamed_index_column_is_dropped(tmp_path):
    path = write_shopee(tmp_path, shopee_rows(4), images=False)
    frame = pd.read_csv(path)
    frame.to_csv(path)  # like the real sample: leading unnamed index
    assert "Unnamed: 0" not in read_shopee_csv(path, image_policy="text-only").columns


@pytest.mark.parametrize("n", [1, 3])
def test_tiny_test_csv(tmp_path, n):
    path = write_shopee(tmp_path, shopee_rows(n, labelled=False, prefix="test"), stem="test")
    frame = read_shopee_csv(path)
    assert len(frame) == n and "label_group" not in frame


def test_missing_columns(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "image_phash"} for r in shopee_rows(3)]
    path = write_shopee(tmp_path, rows)
    with pytest.raises(DataError, match=r"missing column\(s\) \['image_phash'\]"):
        read_shopee_csv(path)


def test_duplicate_ids(tmp_path):
    rows = shopee_rows(4)
    rows[3]["posting_id"] = rows[1]["posting_id"]
    with pytest.raises(DataError, match="duplicate posting_id.*train_1001"):
        read_shopee_csv(write_shopee(tmp_path, rows))


def test_malformed_phash_names_offender(tmp_path):
    rows = shopee_rows(4)
    rows[2]["image_phash"] = "xyz"
    with pytest.raises(DataError, match="16 hex digits.*train_1002='xyz'"):
        read_shopee_csv(write_shopee(tmp_path, rows))


def test_phash_is_lowercased(tmp_path):
    rows = shopee_rows(2)
    rows[0]["image_phash"] = "ABCDEF0123456789"
    frame = read_shopee_csv(write_shopee(tmp_path, rows))
    assert frame.loc[0, "image_phash"] == "abcdef0123456789"


@pytest.mark.parametrize("content", ["", "posting_id,image,image_phash,title\n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "train.csv"
    path.write_text(content)
    with pytest.raises(DataError, match="empty file|no rows"):
        read_shopee_csv(path, image_policy="text-only")


def test_file_not_found(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_shopee_csv(tmp_path / "nope.csv")


def test_empty_and_nan_titles_are_kept_as_empty(tmp_path, caplog):
    rows = shopee_rows(3)
    rows[0]["title"] = ""
    rows[1]["title"] = float("nan")
    frame = read_shopee_csv(write_shopee(tmp_path, rows))
    assert frame["title"].tolist()[:2] == ["", ""]
    assert "2 empty title" in caplog.text


def test_titles_like_na_stay_text(tmp_path):
    rows = shopee_rows(2)
    rows[0]["title"] = "NA"
    assert read_shopee_csv(write_shopee(tmp_path, rows))["title"][0] == "NA"


def test_bad_label_group(tmp_path):
    rows = shopee_rows(2)
    rows[1]["label_group"] = "abc"
    with pytest.raises(DataError, match="label_group must be an integer.*train_1001"):
        read_shopee_csv(write_shopee(tmp_path, rows))


def test_missing_and_corrupt_images_named(shopee_folder):
    images = shopee_folder / "train_images"
    (images / f"{1:032x}.jpg").unlink()
    (images / f"{4:032x}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"1 missing '0+1\.jpg'; 1 unreadable '0+4\.jpg'"):
        read_shopee_csv(shopee_folder / "train.csv")
    frame = read_shopee_csv(shopee_folder / "train.csv", image_policy="placeholder")
    assert frame["image_ok"].tolist() == [True, False, True, True, False, True]
    assert len(read_shopee_csv(shopee_folder / "train.csv", image_policy="text-only")) == 6


def test_missing_image_folder_suggests_text_only(tmp_path):
    path = write_shopee(tmp_path, shopee_rows(2), images=False)
    with pytest.raises(DataError, match="text-only"):
        read_shopee_csv(path)


def test_unknown_policy(shopee_folder):
    with pytest.raises(ValueError, match="unknown image policy"):
        read_shopee_csv(shopee_folder / "train.csv", image_policy="ignore")
