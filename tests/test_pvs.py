"""pvs alignment (v3.4), key frequencies and the pair frame join."""
from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from prodmatch.errors import DataError
from prodmatch.pairs.pvs import align_pvs, key_frequencies, merge_pvs, order_pvs, pair_frame


def test_shared_keys_first_then_own_keys_by_frequency():
    a = "颜色#:#红色#;#品牌#:#A牌#;#产地#:#广东"
    b = "型号#:#X1#;#品牌#:#A牌#;#颜色#:#蓝色"
    order = {"品牌": 10, "颜色": 5, "型号": 7, "产地": 1}
    text_a, text_b = align_pvs(a, b, order)
    assert text_a == "品牌:A牌;颜色:红色;产地:广东"
    assert text_b == "品牌:A牌;颜色:蓝色;型号:X1"


def test_ties_and_unknown_keys_sort_by_key_string():
    text_a, _ = align_pvs("c#:#3#;#b#:#2#;#a#:#1#;#z#:#9", "", {"z": 2, "b": 1, "c": 1})
    assert text_a == "z:9;b:2;c:3;a:1"  # z most frequent; b/c tie -> by string; a unknown (0) last
    assert align_pvs("b#:#2#;#a#:#1", None, None)[0] == "a:1;b:2"
    assert align_pvs("b#:#2#;#a#:#1", None, ["b", "a"])[0] == "b:2;a:1"  # a sequence is a rank order


def test_repeated_keys_keep_all_values_in_order():
    a = "颜色分类#:#银色#;#品牌#:#Y#;#颜色分类#:#透明#;#颜色分类#:#黑色"
    b = "颜色分类#:#白色"
    text_a, text_b = align_pvs(a, b, {"品牌": 3, "颜色分类": 2})
    assert text_a == "颜色分类:银色;颜色分类:透明;颜色分类:黑色;品牌:Y"  # shared key first
    assert text_b == "颜色分类:白色"


def test_missing_or_empty_pvs():
    assert align_pvs(None, "", {}) == ("", "")
    assert align_pvs(float("nan"), "k#:#v", None) == ("", "k:v")
    assert align_pvs({"k": ["v"]}, {"k": ["w"]}) == ("k:v", "k:w")  # parsed mappings work too
    assert order_pvs("noKeyValue") == "noKeyValue"  # malformed entry -> key "" -> value alone


def test_merge_drops_restated_values():
    assert merge_pvs("颜色#:#红#;#品牌#:#A", "颜色#:#红#;#颜色#:#蓝#;#尺码#:#L") == {
        "颜色": ["红", "蓝"], "品牌": ["A"], "尺码": ["L"]}


def test_key_frequencies_counts_items_per_category():
    items = pd.DataFrame({
        "item_id": ["1", "2", "3"], "cate_id": ["c1", "c1", "c2"],
        "item_pvs": ["品牌#:#A#;#颜色#:#红#;#颜色#:#蓝", "品牌#:#B", None],
        "sku_pvs": ["尺码#:#L", "", "型号#:#X"],
    })
    assert key_frequencies(items) == {"c1": {"品牌": 2, "尺码": 1, "颜色": 1}, "c2": {"型号": 1}}


_SCRIPT = r"""
import random
from prodmatch.pairs.pvs import align_pvs
rng = random.Random(0)
keys = [f"k{i}" for i in range(30)] + ["品牌", "型号", "颜色", "尺码", "材质"]
for _ in range(200):
    a = "#;#".join(f"{rng.choice(keys)}#:#{rng.randint(0, 9)}" for _ in range(rng.randint(0, 12)))
    b = "#;#".join(f"{rng.choice(keys)}#:#{rng.randint(0, 9)}" for _ in range(rng.randint(0, 12)))
    order = {k: rng.randint(0, 3) for k in keys}
    print(align_pvs(a, b, order))
"""


def test_deterministic_across_hash_seeds():
    outputs = []
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True,
                              encoding="utf-8", check=True)
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 200


def _items():
    return pd.DataFrame({
        "item_id": ["a", "b", "c"], "cate_id": ["x", "x", "y"], "title": ["Phone X1 128GB", None, "Case"],
        "item_pvs": ["品牌#:#A#;#型号#:#X1", "型号#:#X1#;#品牌#:#A#;#颜色#:#黑", ""],
        "sku_pvs": ["", "", "颜色#:#红"],
    })


def test_pair_frame_joins_and_aligns():
    pairs = pd.DataFrame({"src_item_id": ["a", "c"], "tgt_item_id": ["b", "a"], "item_label": [1, 0]})
    frame = pair_frame(pairs, _items())
    assert frame["item_label"].tolist() == [1, 0]
    assert frame["title_a"].tolist() == ["Phone X1 128GB", "Case"]
    assert frame["title_b"].tolist() == ["", "Phone X1 128GB"]  # missing title -> ""
    assert frame.loc[0, "pvs_a"] == "品牌:A;型号:X1"
    assert frame.loc[0, "pvs_b"] == "品牌:A;型号:X1;颜色:黑"
    assert frame.loc[1, "pvs_a"] == "颜色:红" and frame.loc[1, "pvs_b"] == "品牌:A;型号:X1"
    assert frame.loc[1, "own_pvs_a"] == "颜色:红"


def test_pair_frame_unknown_ids_and_empty():
    with pytest.raises(DataError, match="not in the items table.*'nope'"):
        pair_frame(pd.DataFrame({"src_item_id": ["a"], "tgt_item_id": ["nope"]}), _items())
    empty = pair_frame(pd.DataFrame({"src_item_id": [], "tgt_item_id": []}), _items())
    assert len(empty) == 0 and {"title_a", "pvs_b"} <= set(empty.columns)


def test_pair_frame_shopee_titles_only():
    items = pd.DataFrame({"posting_id": ["p1", "p2"], "title": ["Kaos Polos Hitam", "kaos polos hitam XL"]})
    frame = pair_frame(pd.DataFrame({"src_item_id": ["p1"], "tgt_item_id": ["p2"]}), items)
    assert frame.loc[0, "title_b"] == "kaos polos hitam XL" and frame.loc[0, "pvs_a"] == "" == frame.loc[0, "pvs_b"]
