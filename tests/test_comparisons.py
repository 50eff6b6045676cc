"""Named pair comparisons (`prodmatch.stack.comparisons`): exact values on hand-made offers, symmetry,
registry and id checks; seconds."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from prodmatch.errors import DataError
from prodmatch.stack.comparisons import (
    COMPARISONS, Comparison, build_comparisons, compare_pairs, model_codes, text_fields,
)

NAMES = ("codes", "numbers", "brand", "price", "length", "strings", "tfidf", "rare_tokens")


def offers(*titles: str, **columns) -> pd.DataFrame:
    """Items o0, o1, ... with these titles and extra attribute columns (one value per title)."""
    return pd.DataFrame({"item_id": [f"o{k}" for k in range(len(titles))], "title": list(titles), **columns})


def features(items: pd.DataFrame, name: str, pairs: list[tuple[int, int]]) -> pd.DataFrame:
    """One comparison fitted on `items`, computed on (o<i>, o<j>) pairs, without the name prefix."""
    frame = compare_pairs(items, [f"o{i}" for i, _ in pairs], [f"o{j}" for _, j in pairs],
                          build_comparisons([name], items))
    return frame.rename(columns=lambda c: c.removeprefix(f"{name}:"))


def values(frame: pd.DataFrame, column: str) -> list[float]:
    return frame[column].tolist()


# ------------------------------------------------------------------------------------------ codes


def test_model_codes_keep_written_and_plain_forms():
    assert model_codes("denon dvd-3800bdci player", known=set()) == {"dvd-3800bdci", "dvd3800bdci"}
    assert model_codes("DVD3800BDCI", known=set()) == {"dvd3800bdci"}
    assert model_codes("ab 12 cd") == {"ab12", "12cd"}  # no corpus: every join that makes a code
    assert model_codes("sl 330", known={"sl330"}) == {"sl330"}
    assert model_codes("with 3 arms", known={"sl330"}) == set()
    assert model_codes("2 x 4") == set()  # "2x", "x4": shorter than 3


def test_codes_title_features():
    items = offers(
        "sony cyber-shot dsc-w120 black",  # {dsc-w120, dscw120}
        "sony dscw120 camera",  # {dscw120}
        "lg ldf6920bb dishwasher",
        "lg lds4821ww dishwasher",
        "apple ipod case",  # no code
        "canon sl 330 printer",  # "sl 330" joined: "sl330" is written as one token in o6
        "canon sl330",
    )
    f = features(items, "codes", [(0, 1), (2, 3), (4, 1), (5, 6)])
    assert values(f, "title_shared") == [1.0, 0.0, 0.0, 1.0]
    assert values(f, "title_jaccard")[:2] == [0.5, 0.0]  # 1 shared / 2 in the union; 0 / 2
    assert math.isnan(values(f, "title_jaccard")[2])  # one side has no code
    assert values(f, "title_jaccard")[3] == 1.0
    assert values(f, "title_any") == [1.0, 0.0, 0.0, 1.0]
    assert values(f, "title_conflict") == [0.0, 1.0, 0.0, 0.0]
    assert values(f, "title_missing") == [0.0, 0.0, 1.0, 0.0]
    assert values(f, "title_longest_shared") == [7.0, 0.0, 0.0, 5.0]  # "dscw120", "sl330"
    # title only: the whole offer is the title
    for feature in ("shared", "any", "conflict", "missing", "longest_shared"):
        assert values(f, f"all_{feature}") == values(f, f"title_{feature}")


def test_codes_whole_offer_reads_every_text_field():
    items = offers("lg dishwasher", "lg dishwasher ldf6920bb black",
                   description=["model ldf6920bb white", ""], price=["10", "12"])
    f = features(items, "codes", [(0, 1)])
    assert values(f, "title_missing") == [1.0]
    assert values(f, "title_conflict") == [0.0]
    assert values(f, "all_shared") == [1.0]
    assert values(f, "all_jaccard") == [1.0]
    assert values(f, "all_missing") == [0.0]


# ---------------------------------------------------------------------------------------- numbers


def test_numbers_unit_conflict_and_plain_numbers():
    items = offers("coca cola 500ml", "coca cola 1.5 l", "coca cola 1500 ml", "coca cola",
                   "tv 32 inch 2 hdmi", "tv 32 in 3 hdmi")
    f = features(items, "numbers", [(0, 1), (1, 2), (0, 3), (4, 5)])
    assert values(f, "conflict") == [1.0, 0.0, 0.0, 0.0]
    nj = values(f, "num_jaccard")
    assert nj[:2] == [0.0, 0.0]  # {500} vs {1.5}; {1.5} vs {1500}
    assert math.isnan(nj[2])  # "coca cola" states no number
    assert nj[3] == pytest.approx(1 / 3, abs=1e-15)  # {32, 2} vs {32, 3}: 1 shared of 3


# ------------------------------------------------------------------------------------------ price


def test_price_ratio_and_log_difference():
    items = offers("a", "b", "c", "d", "e", "f", price=["104.95", "$209.90", "", "1,299.00", "1299", "0"])
    f = features(items, "price", [(0, 1), (0, 2), (3, 4), (4, 5)])
    ratio, log_diff = values(f, "ratio"), values(f, "log_diff")
    assert ratio[0] == pytest.approx(0.5, abs=1e-12)
    assert log_diff[0] == pytest.approx(math.log(2), abs=1e-12)
    assert math.isnan(ratio[1]) and math.isnan(log_diff[1])  # missing price
    assert ratio[2] == 1.0 and log_diff[2] == 0.0  # "1,299.00" is 1299
    assert math.isnan(ratio[3])  # a price of 0 is no price


def test_price_without_a_price_column_is_all_nan():
    f = features(offers("a", "b"), "price", [(0, 1), (1, 0)])
    assert list(f.columns) == ["ratio", "log_diff"]
    assert f.isna().all().all()


# ------------------------------------------------------------------------------------------ brand


def test_brand_features():
    items = offers(
        "Sony Cyber-shot DSC-W120", "sony dscw120 camera", "dscw120 digital camera by sony",
        "hewlett packard laserjet p1005", "hp laserjet p1005", "canon camera", "laserjet by hewlett packard",
        brand=["Sony", "sony", "", "Hewlett Packard", "hp", "", ""],
    )
    f = features(items, "brand", [(0, 1), (1, 2), (3, 4), (2, 5), (3, 6)])
    assert values(f, "first_token_equal") == [1.0, 0.0, 0.0, 0.0, 0.0]  # case ignored
    equal = values(f, "attr_equal")
    assert equal[0] == 1.0 and equal[2] == 0.0
    assert all(math.isnan(x) for x in (equal[1], equal[3], equal[4]))  # a brand is empty
    inside = values(f, "brand_in_other_title")
    # o0/o1 both; o1's "sony" is a word of o2's title; hp / hewlett packard are not in the other
    # title; o2 and o5 have no brand; "hewlett packard" as two consecutive words of o6's title
    assert inside[:3] == [1.0, 1.0, 0.0] and math.isnan(inside[3]) and inside[4] == 1.0


def test_brand_without_a_brand_column():
    f = features(offers("sony a", "sony b"), "brand", [(0, 1)])
    assert values(f, "first_token_equal") == [1.0]
    assert f[["attr_equal", "brand_in_other_title"]].isna().all().all()


# ----------------------------------------------------------------------------------------- length


def test_length_in_word_tokens():
    # words: sony cyber shot dsc w120 black (6) | sony dscw120 camera (3) | none (0)
    items = offers("sony cyber-shot dsc-w120 black", "sony dscw120 camera", "")
    f = features(items, "length", [(0, 1), (1, 0), (1, 2)])
    assert values(f, "title_len_ratio")[:2] == [0.5, 0.5]  # 3 / 6
    assert math.isnan(values(f, "title_len_ratio")[2])
    assert values(f, "title_len_diff") == [3.0, 3.0, 3.0]


# ------------------------------------------------------------------------------------ rare tokens


def test_rare_tokens_idf_overlap():
    items = offers("red apple", "red pear", "green apple", "red apple pie", "")
    # n = 5 titles; df: red 3, apple 3, pear 1, green 1, pie 1; idf = ln((1 + n) / (1 + df)) + 1
    common, rare = math.log(6 / 4) + 1, math.log(6 / 2) + 1
    f = features(items, "rare_tokens", [(0, 3), (0, 1), (1, 2), (4, 4), (0, 4)])
    overlap, top = values(f, "idf_overlap"), values(f, "max_shared_idf")
    assert overlap[0] == pytest.approx(2 * common / (2 * common + rare), abs=1e-12)  # {red, apple} of {+pie}
    assert overlap[1] == pytest.approx(common / (2 * common + rare), abs=1e-12)  # {red} of {red, apple, pear}
    assert overlap[2] == 0.0 and top[2] == 0.0  # nothing shared
    assert math.isnan(overlap[3]) and top[3] == 0.0  # no words on either side
    assert overlap[4] == 0.0
    assert top[:2] == pytest.approx([common, common], abs=1e-12)
    # words on one side only: pie (0, 3); apple, pear (0, 1); red, pear, green, apple (1, 2); none (3); red, apple (4)
    unshared, total = values(f, "max_unshared_idf"), values(f, "unshared_idf")
    assert unshared == pytest.approx([rare, rare, rare, 0.0, common], abs=1e-12)
    assert total == pytest.approx([rare, common + rare, 2 * common + 2 * rare, 0.0, 2 * common], abs=1e-12)


def test_rare_tokens_unseen_word_is_rarest():
    comparison = build_comparisons(["rare_tokens"], offers("red apple", "red pear", "green apple", "red apple pie"))[0]
    # n = 4: red, apple df 3 -> ln(5/4) + 1; kiwi unseen (df 0) -> ln(5) + 1
    common, unseen = math.log(5 / 4) + 1, math.log(5) + 1
    a, b = pd.DataFrame({"title": ["red kiwi", "kiwi"]}), pd.DataFrame({"title": ["red apple", "big kiwi"]})
    out = comparison.compute(a, b)
    assert out["idf_overlap"][0] == pytest.approx(common / (2 * common + unseen), abs=1e-12)
    assert out["max_shared_idf"].tolist() == pytest.approx([common, unseen], abs=1e-12)


# ------------------------------------------------------------------------------------ tfidf, strings


def test_tfidf_identical_disjoint_and_empty():
    items = offers("sony dscw120 camera", "sony dscw120 camera", "abc", "xyz", "")
    f = features(items, "tfidf", [(0, 1), (2, 3), (0, 4)])
    assert list(f.columns) == ["title_word", "title_char", "all_word", "all_char"]
    np.testing.assert_allclose(f.iloc[0].to_numpy(), 1.0, atol=1e-12)
    assert (f.iloc[1] == 0.0).all() and (f.iloc[2] == 0.0).all()


def test_tfidf_needs_fit():
    with pytest.raises(RuntimeError, match="fit"):
        COMPARISONS["tfidf"]().compute(pd.DataFrame({"title": ["a"]}), pd.DataFrame({"title": ["b"]}))


def test_strings_scores_per_field():
    long = "lorem ipsum " * 50  # 600 characters: no partial_ratio for this field
    items = offers("abcd", "abce", "sony camera", "camera sony black",
                   description=[long, long + "x", "", long], price=["1", "2", "3", "4"])
    f = features(items, "strings", [(0, 1), (2, 3)])
    assert list(f.columns) == ["title_token_set", "title_ratio", "title_partial",
                               "description_token_set", "description_ratio"]
    assert values(f, "title_ratio")[0] == 0.75  # Indel: 2 * 3 / 8
    assert values(f, "title_token_set")[1] == 1.0  # one title's words are a subset of the other's
    assert values(f, "description_ratio")[0] == 1.0  # the first 500 characters only, and both equal
    assert math.isnan(values(f, "description_ratio")[1])


def test_text_fields_leave_out_ids_numbers_and_title_copies():
    items = offers("a b", "c d", name=["a b", "c d"], description=["x", ""], price=["1.5", "$2"],
                   item_pvs=["k:v", ""], image_path=["p", "q"], count=[1, 2], empty=["", ""])
    assert text_fields(items) == ["title", "description"]


# ---------------------------------------------------------------------------------------- symmetry

WORDS = ["sony", "lg", "dsc-w120", "dscw120", "sl", "330", "sl330", "500ml", "1.5", "l", "camera",
         "black", "2", "x", "64gb", "red", "apple", "hewlett", "packard"]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join), min_size=2, max_size=5),
       st.data())
def test_every_comparison_is_symmetric(titles, data):
    n = len(titles)
    brands = data.draw(st.lists(st.sampled_from(["", "sony", "LG", "hewlett packard"]), min_size=n, max_size=n))
    prices = data.draw(st.lists(st.sampled_from(["", "10", "$20.5", "0", "1,299.00"]), min_size=n, max_size=n))
    items = offers(*titles, brand=brands, price=prices)
    comparisons = build_comparisons(None, items)
    src, tgt = zip(*[(f"o{i}", f"o{j}") for i in range(n) for j in range(n)])
    forward = compare_pairs(items, src, tgt, comparisons)
    backward = compare_pairs(items, tgt, src, comparisons)
    for name in forward.columns:
        np.testing.assert_array_equal(forward[name].to_numpy(), backward[name].to_numpy(), err_msg=name)


# ---------------------------------------------------------------------------------------- registry


def test_registry_holds_every_comparison():
    assert set(NAMES) <= set(COMPARISONS)
    for name, cls in COMPARISONS.items():
        assert issubclass(cls, Comparison) and cls.name == name


def test_unknown_or_repeated_comparison_names():
    items = offers("a", "b")
    with pytest.raises(DataError, match="unknown comparison 'codez'; did you mean codes"):
        build_comparisons(["codez"], items)
    with pytest.raises(DataError, match="repeated"):
        build_comparisons(["codes", "codes"], items)


def test_compare_pairs_columns_are_stable_and_prefixed():
    items = offers("sony dscw120", "sony dsc-w120 camera", "lg tv", brand=["sony", "", "lg"])
    comparisons = build_comparisons(None, items)
    full = compare_pairs(items, ["o0", "o1"], ["o1", "o2"], comparisons)
    one = compare_pairs(items, ["o2"], ["o2"], comparisons)
    none = compare_pairs(items, [], [], comparisons)
    assert list(full.columns) == list(one.columns) == list(none.columns)
    assert len(full) == 2 and len(one) == 1 and len(none) == 0
    assert all(col.split(":")[0] in COMPARISONS for col in full.columns)
    assert {"price:ratio", "price:log_diff"} <= set(full.columns)  # without a price column too
    assert (full.dtypes == np.float64).all()
    # pair order: o0 vs o1 share the code "dscw120"
    assert full["codes:title_shared"].tolist() == [1.0, 0.0]


def test_compare_pairs_rejects_unknown_and_repeated_ids():
    items = offers("a", "b")
    comparisons = build_comparisons(["length"], items)
    with pytest.raises(DataError, match="'nope'"):
        compare_pairs(items, ["o0", "nope"], ["o1", "o0"], comparisons)
    with pytest.raises(DataError, match="differ in length"):
        compare_pairs(items, ["o0"], ["o1", "o0"], comparisons)
    with pytest.raises(DataError, match="repeats item ids"):
        compare_pairs(pd.concat([items, items]), ["o0"], ["o1"], comparisons)
