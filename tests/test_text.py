import pandas as pd
import pytest

from prodmatch.data.shopee import read_shopee_csv
from prodmatch.data.text import decode_title, decode_titles

from .conftest import REAL_TITLES


@pytest.mark.parametrize(
    "raw, expected",
    [
        (r"COD \xe2\x9c\x94 SET KULOT", "COD ✔ SET KULOT"),
        (r"Nescafe \xc3\x89clair Latte 220ml", "Nescafe Éclair Latte 220ml"),
        (r"\xe3\x80\x90BISA COD\xe3\x80\x91Jam", "【BISA COD】Jam"),
        ('b"AL-QUR\'AN Terjemahan"', "AL-QUR'AN Terjemahan"),
        ("b'plain wrapped'", "plain wrapped"),
        (r"Azalea\nZaitun Oil", "Azalea Zaitun Oil"),
        (r"Tas \\ Wanita", "Tas \\ Wanita"),
        ("  already ✔ clean  ", "already ✔ clean"),
        (r"bad \xzz hex stays", r"bad \xzz hex stays"),
        ("baju biru", "baju biru"),  # starts with b but no wrapper
        (None, ""),
        (float("nan"), ""),
    ],
)
def test_decode_title(raw, expected):
    assert decode_title(raw) == expected


def test_truncated_utf8_run_becomes_replacement_char():
    assert decode_title(r"x \xe2\x9c y") == "x \ufffd y"


def test_decode_titles_keeps_index():
    series = pd.Series([r"a \xc2\xae", "b"], index=[5, 7])
    out = decode_titles(series)
    assert out.tolist() == ["a ®", "b"] and out.index.tolist() == [5, 7]


@pytest.mark.skipif(not REAL_TITLES.is_dir(), reason="real Shopee sample not present")
def test_real_rows_load_and_decode():
    frames = [read_shopee_csv(REAL_TITLES / f"sample_{x}.csv", image_policy="text-only") for x in "ab"]
    real = pd.concat(frames, ignore_index=True)
    assert len(real) == 4557
    assert not real["title"].str.contains(r"\\x[0-9a-fA-F]{2}", regex=True).any()
    assert not real["title"].str.match(r"^b[\"']").any()
    assert real["title"].str.contains("✔").any()
    assert real["label_group"].nunique() == 1500
