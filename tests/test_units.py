"""Unit extraction and the unit-mismatch filter, by hand-written titles."""
from __future__ import annotations

import numpy as np
import pytest

from prodmatch.post.units import UNITS, conflict, conflicts, extract, pair_conflicts, parse_number


@pytest.mark.parametrize(
    "text, value",
    [
        ("250", 250.0),
        ("0,25", 0.25),
        ("1.5", 1.5),
        ("1.000", 1000.0),
        ("1,000", 1000.0),
        ("10.000.000", 10_000_000.0),
        ("0,250", 0.25),  # zero integer part: decimal
        ("1.50", 1.5),
        ("1.5000", 1.5),
        ("1.234,5", 1234.5),
        ("1,234.5", 1234.5),
        ("1.2.3", None),
        ("1.000,5,5", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize(
    "title, expected",
    [
        ("Kojie San Face Lightening Cream 30g", [(30.0, "weight")]),
        ("Kojie San Cream 30 gr", [(30.0, "weight")]),
        ("cream 30gram", [(30.0, "weight")]),
        ("cream 30 grams", [(30.0, "weight")]),
        ("cream 30 gramm", [(30.0, "weight")]),
        ("cream 0,03kg", [(30.0, "weight")]),
        ("beras 0,25 kg", [(250.0, "weight")]),
        ("beras 1.5kg", [(1500.0, "weight")]),
        ("beras 2 kilo", [(2000.0, "weight")]),
        ("vitamin 500mg", [(0.5, "weight")]),
        ("kopi 2 ons", [(200.0, "weight")]),
        ("Fresh Sari Lemon 250ml", [(250.0, "volume")]),
        ("Fresh Sari Lemon 250 ML", [(250.0, "volume")]),
        ("minyak 1L", [(1000.0, "volume")]),
        ("minyak 1 liter", [(1000.0, "volume")]),
        ("minyak 1,5 ltr", [(1500.0, "volume")]),
        ("air 1.000 ml", [(1000.0, "volume")]),
        ("oli 800cc", [(800.0, "volume")]),
        ("kabel 5 meter", [(5000.0, "length")]),
        ("kabel 150 cm", [(1500.0, "length")]),
        ("tv 32 inch", [(812.8, "length")]),
        ("tv 32 inci", [(812.8, "length")]),
        ("handuk 30x40cm", [(300.0, "length"), (400.0, "length")]),
        ("masker isi 50 pcs", [(50.0, "pieces")]),
        ("masker 50pcs", [(50.0, "pieces")]),
        ("tisu 250 lembar", [(250.0, "pieces")]),
        ("telur 10 butir", [(10.0, "pieces")]),
        ("sabun isi 3", [(3.0, "pieces")]),
        ("kopi 10 sachet", [(10.0, "pieces")]),
        ("Samsung A52s 8/128GB", [(131072.0, "memory")]),
        ("flashdisk 64GB", [(65536.0, "memory")]),
        ("hdd 1TB", [(1024.0**2, "memory")]),
        ("susu 2x250ml", [(2.0, "pieces"), (250.0, "volume")]),
        ("susu 2 x 250 ml", [(2.0, "pieces"), (250.0, "volume")]),
        ("susu 250ml x 2", [(250.0, "volume"), (2.0, "pieces")]),
        ("paket 250ml + 500ml", [(250.0, "volume"), (500.0, "volume")]),
        ("susu 250ml 250 ml", [(250.0, "volume")]),  # duplicates collapse
        ("Hanasui HK900 serum", []),  # a model code, not a quantity
        ("Xiaomi Redmi 9A", []),
        ("kaos 100% cotton", []),
        ("tas 10member", []),  # the unit must end the word
        ("Samsung 4G LTE", []),  # network generation, not grams
        ("HP 5G 128GB", [(131072.0, "memory")]),
        ("garam 5 g", [(5.0, "weight")]),  # lower case / spaced: grams
        ("", []),
    ],
)
def test_extract(title, expected):
    got = extract(title)
    assert [d for _, d in got] == [d for _, d in expected]
    np.testing.assert_allclose([v for v, _ in got], [v for v, _ in expected])


def test_extract_non_string():
    assert extract(None) == [] and extract(float("nan")) == []


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("Cream 30g", "Cream 30 gr", False),
        ("Cream 30g", "Cream 30gram", False),
        ("Cream 30g", "Cream 0,03kg", False),
        ("Cream 30gr", "Cream 0.03 kg", False),
        ("Lemon 250ml", "Lemon 500ml", True),
        ("Lemon 250ml", "Lemon 250 ML", False),
        ("Minyak 1L", "Minyak 1000ml", False),
        ("Minyak 1L", "Minyak 1.000 ml", False),
        ("Minyak 2L", "Minyak 1000ml", True),
        ("Flashdisk 64GB", "Flashdisk 128GB", True),
        ("Flashdisk 64GB", "Flashdisk 64 gb", False),
        ("Lemon 250ml", "Lemon 30g", False),  # different dimensions
        ("Lemon 250ml", "Lemon", False),  # one side states nothing
        ("Hanasui HK900", "Hanasui HK800", False),
        ("Paket 250ml + 500ml", "Lemon 500ml", False),  # value sets overlap
        ("Paket 250ml + 500ml", "Lemon 1L", True),
        ("Susu 2x250ml", "Susu 250ml", False),
        ("Susu 2x250ml", "Susu 3x250ml", True),  # piece counts differ
        ("Susu 2x250ml", "Susu 2x200ml", True),
        ("Masker isi 50 pcs", "Masker 50pcs", False),
        ("Masker isi 50", "Masker isi 30", True),
        ("Cream 30g 100ml", "Cream 30g 50ml", True),  # one dimension agrees, another conflicts
        ("TV 32 inch", "TV 81,28 cm", False),
        ("", "", False),
    ],
)
def test_conflict(a, b, expected):
    assert conflict(a, b) is expected
    assert conflict(b, a) is expected
    assert conflicts([a], [b]).tolist() == [expected]


def test_conflicts_vectorised_matches_scalar():
    titles = [
        "Cream 30g", "Cream 30 gr", "Lemon 250ml", "Lemon 500ml", "Minyak 1L", "Minyak 1000ml", "Susu 2x250ml",
        "Susu 250ml", "HK900", "Flashdisk 64GB", "Flashdisk 128GB", "Paket 250ml + 500ml", "Cream 30g 100ml", "",
    ]
    rng = np.random.default_rng(0)
    a = rng.integers(0, len(titles), 500)
    b = rng.integers(0, len(titles), 500)
    expect = [conflict(titles[i], titles[j]) for i, j in zip(a, b)]
    got = conflicts([titles[i] for i in a], [titles[j] for j in b])
    assert got.dtype == bool and got.tolist() == expect
    assert pair_conflicts(titles, a, b).tolist() == expect
    assert conflicts([], []).tolist() == []
    with pytest.raises(ValueError):
        conflicts(["a"], [])


def test_unit_table_is_lower_case_and_known_dimensions():
    assert all(u == u.lower() for u in UNITS)
    assert {d for d, _ in UNITS.values()} == {"weight", "volume", "length", "pieces", "memory"}
