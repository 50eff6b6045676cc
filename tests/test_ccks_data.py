"""CCKS 2022 task 9.2 data layer: pvs parsing, JSONL loaders, image checks and the synthetic generator."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prodmatch.ccks.data import INFO_FIELDS, check_ccks_images, read_ccks_items, read_ccks_pairs
from prodmatch.data.synth.ccks import INFO_KEYS, build_ccks_tables, generate_ccks
from prodmatch.errors import DataError
from prodmatch.pairs.pvs import parse_pvs

JSONL_FILES = ("item_train_info.jsonl", "item_train_pair.jsonl", "item_valid_info.jsonl",
               "item_valid_pair.jsonl", "item_valid_pair_truth.jsonl")


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def item(item_id, **fields):
    return json.dumps({"item_id": item_id, **fields}, ensure_ascii=False)


@pytest.fixture(scope="module")
def ccks_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ccks")
    report = generate_ccks(out, seed=0, preset="test")
    return out, report


@pytest.fixture(scope="module")
def tables():
    return build_ccks_tables(0, "test")


# ---------------------------------------------------------------------------------------------
# parse_pvs
# ---------------------------------------------------------------------------------------------
def test_parse_pvs_repeated_keys_keep_order():
    s = "颜色分类#:#黑色#;#尺码#:#XL#;#颜色分类#:#白色"
    assert parse_pvs(s) == {"颜色分类": ["黑色", "白色"], "尺码": ["XL"]}
    assert list(parse_pvs(s)) == ["颜色分类", "尺码"]


@pytest.mark.parametrize("empty", [None, "", float("nan"), pd.NA, "   ", "#;##;#"])
def test_parse_pvs_empty(empty):
    assert parse_pvs(empty) == {}


def test_parse_pvs_strips_whitespace_and_skips_empty_values():
    assert parse_pvs(" 品牌 #:# 佳诺 #;# 型号#:# #;#容量#:#256GB ") == {"品牌": ["佳诺"], "容量": ["256GB"]}


def test_parse_pvs_malformed_entry_goes_under_empty_key():
    assert parse_pvs("品牌#:#佳诺#;#包邮#;#型号#:#X20") == {"品牌": ["佳诺"], "": ["包邮"], "型号": ["X20"]}


def test_parse_pvs_value_may_contain_separator_text():
    assert parse_pvs("规格#:#a#:#b") == {"规格": ["a#:#b"]}


def test_parse_pvs_rejects_non_strings():
    with pytest.raises(TypeError):
        parse_pvs(123)


# ---------------------------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------------------------
def test_read_items_missing_fields_become_empty_strings(tmp_path):
    path = write_lines(tmp_path / "info.jsonl", [
        item("a", title="佳诺 X20 手机", cate_id=123, item_pvs=None),
        "",  # blank lines are ignored
        item("b", sku_pvs="", extra_field="kept"),
    ])
    items = read_ccks_items(path)
    assert list(items.columns[:len(INFO_FIELDS)]) == list(INFO_FIELDS)
    assert items["item_id"].tolist() == ["a", "b"]
    assert items.loc[0, "cate_id"] == "123"
    assert items.loc[0, "item_pvs"] == "" and items.loc[1, "title"] == ""
    assert (items[list(INFO_FIELDS)].map(type) == str).all().all()
    assert items.loc[1, "extra_field"] == "kept"


def test_read_items_invalid_json_names_line(tmp_path):
    path = write_lines(tmp_path / "info.jsonl", [item("a"), item("b"), '{"item_id": "c",'])
    with pytest.raises(DataError, match="line 3"):
        read_ccks_items(path)


def test_read_items_non_object_line(tmp_path):
    with pytest.raises(DataError, match="line 2 is not a JSON object"):
        read_ccks_items(write_lines(tmp_path / "info.jsonl", [item("a"), "[1, 2]"]))


def test_read_items_duplicate_ids_are_listed(tmp_path):
    path = write_lines(tmp_path / "info.jsonl", [item("a"), item("b"), item("a"), item("c"), item("c")])
    with pytest.raises(DataError, match="duplicate item_id.*'a', 'c'"):
        read_ccks_items(path)


def test_read_items_missing_id_names_line(tmp_path):
    path = write_lines(tmp_path / "info.jsonl", [item("a"), json.dumps({"title": "x"}), item("")])
    with pytest.raises(DataError, match=r"line\(s\) 2, 3"):
        read_ccks_items(path)


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_read_items_empty_file(tmp_path, content):
    path = tmp_path / "info.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        read_ccks_items(path)


def test_read_items_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_ccks_items(tmp_path / "nope.jsonl")


def pair(src, tgt, label=None):
    obj = {"src_item_id": src, "tgt_item_id": tgt}
    if label is not None:
        obj["item_label"] = label
    return json.dumps(obj)


def test_read_pairs_labelled_and_unlabelled(tmp_path):
    labelled = read_ccks_pairs(write_lines(tmp_path / "p.jsonl", [pair("a", "b", "1"), pair("a", "c", "0")]))
    assert labelled["item_label"].tolist() == [1, 0]
    assert labelled["item_label"].dtype == np.int64
    assert list(labelled.columns) == ["src_item_id", "tgt_item_id", "item_label"]
    unlabelled = read_ccks_pairs(write_lines(tmp_path / "u.jsonl", [pair("a", "b")]))
    assert list(unlabelled.columns) == ["src_item_id", "tgt_item_id"]


def test_read_pairs_bad_label_names_line(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [pair("a", "b", "1"), pair("a", "c", "2")])
    with pytest.raises(DataError, match="line 2: '2'"):
        read_ccks_pairs(path)


def test_read_pairs_label_missing_on_some_lines(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [pair("a", "b", "1"), pair("a", "c")])
    with pytest.raises(DataError, match="line 2"):
        read_ccks_pairs(path)


def test_read_pairs_requires_ids(tmp_path):
    path = write_lines(tmp_path / "p.jsonl", [pair("a", "b"), json.dumps({"src_item_id": "a"})])
    with pytest.raises(DataError, match=r"tgt_item_id missing or empty on line\(s\) 2"):
        read_ccks_pairs(path)


def test_read_pairs_unknown_ids_are_listed(tmp_path):
    items = read_ccks_items(write_lines(tmp_path / "i.jsonl", [item("a"), item("b")]))
    path = write_lines(tmp_path / "p.jsonl", [pair("a", "b", "0"), pair("x", "a", "1"), pair("b", "y", "0")])
    with pytest.raises(DataError, match="2 item id.*'x', 'y'"):
        read_ccks_pairs(path, items)
    ok = write_lines(tmp_path / "ok.jsonl", [pair("a", "b", "0")])
    assert len(read_ccks_pairs(ok, items)) == 1


# ---------------------------------------------------------------------------------------------
# Image checks
# ---------------------------------------------------------------------------------------------
@pytest.fixture()
def image_case(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    Image.new("RGB", (8, 8), "red").save(folder / "good.jpg")
    (folder / "bad.jpg").write_bytes(b"not an image")
    items = pd.DataFrame({"item_id": ["1", "2", "3", "4"],
                          "item_image_name": ["good.jpg", "bad.jpg", "gone.jpg", ""]})
    return items, folder


def test_check_images_error_lists_missing_and_corrupt(image_case):
    items, folder = image_case
    with pytest.raises(DataError, match="1 missing 'gone.jpg'.*1 unreadable 'bad.jpg'"):
        check_ccks_images(items, folder)


def test_check_images_lenient_policies(image_case):
    items, folder = image_case
    assert check_ccks_images(items, folder, policy="placeholder") == ["gone.jpg", "bad.jpg"]
    assert check_ccks_images(items, folder, policy="text-only") == []  # images not looked at


def test_check_images_unknown_policy(image_case):
    with pytest.raises(ValueError, match="policy"):
        check_ccks_images(*image_case, policy="ignore")


def test_check_images_truncated_jpeg_needs_decode(image_case):
    _, folder = image_case
    Image.effect_noise((64, 64), 60).convert("RGB").save(folder / "trunc.jpg", quality=95)
    data = (folder / "trunc.jpg").read_bytes()
    (folder / "trunc.jpg").write_bytes(data[: len(data) // 2])
    only = pd.DataFrame({"item_image_name": ["trunc.jpg"]})
    assert check_ccks_images(only, folder, policy="placeholder") == []  # header is fine: verify() passes
    assert check_ccks_images(only, folder, policy="placeholder", decode=True) == ["trunc.jpg"]


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------
def test_generator_is_deterministic(ccks_dir, tmp_path):
    out, _ = ccks_dir
    again = tmp_path / "again"
    generate_ccks(again, seed=0, preset="test")
    for name in JSONL_FILES:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_generator_seeds_differ(ccks_dir):
    items_a, _ = build_ccks_tables(1, "test")
    out, _ = ccks_dir
    first_line = (out / "item_train_info.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert json.loads(first_line)["item_id"] not in set(items_a["item_id"])


def test_generator_report(ccks_dir):
    out, report = ccks_dir
    assert report.out == out
    assert [p.name for p in report.files] == list(JSONL_FILES)
    c = report.counts
    assert 120 <= c["train_items"] + c["valid_items"] <= 180
    assert c["train_pairs"] == 200 and c["valid_pairs"] == 80
    assert 0.3 <= c["train_positive"] / c["train_pairs"] <= 0.4


def test_generator_file_formats(ccks_dir):
    out, _ = ccks_dir
    for split in ("train", "valid"):
        for line in (out / f"item_{split}_info.jsonl").read_text(encoding="utf-8").splitlines():
            obj = json.loads(line)
            keys = list(obj)
            assert keys == [k for k in INFO_KEYS if k in keys] and keys[0] == "item_id"
            assert all(v is None or isinstance(v, str) for v in obj.values())
    raw = (out / "item_train_info.jsonl").read_text(encoding="utf-8")
    assert "\\u" not in raw and "#;#" in raw and "#:#" in raw  # ensure_ascii=False, pvs format
    for name, keys in [("item_train_pair.jsonl", ["src_item_id", "tgt_item_id", "item_label"]),
                       ("item_valid_pair.jsonl", ["src_item_id", "tgt_item_id"]),
                       ("item_valid_pair_truth.jsonl", ["src_item_id", "tgt_item_id", "item_label"])]:
        objs = [json.loads(x) for x in (out / name).read_text(encoding="utf-8").splitlines()]
        assert all(list(o) == keys for o in objs), name
        if "item_label" in keys:
            assert {o["item_label"] for o in objs} == {"0", "1"}


def test_generator_has_missing_fields_and_repeated_keys(tables):
    items, _ = tables
    records = items["record"].tolist()
    assert any(not r.get("item_pvs") for r in records)
    assert any(not r.get("item_image_name") for r in records)
    repeated = [parse_pvs(r.get("item_pvs")).get("颜色分类", []) for r in records]
    assert max(len(v) for v in repeated) >= 3


def test_valid_items_never_in_train_pairs(ccks_dir):
    out, _ = ccks_dir
    train_items = read_ccks_items(out / "item_train_info.jsonl")
    valid_items = read_ccks_items(out / "item_valid_info.jsonl")
    train_pairs = read_ccks_pairs(out / "item_train_pair.jsonl", train_items)
    train_ids = set(train_pairs["src_item_id"]) | set(train_pairs["tgt_item_id"])
    assert not train_ids & set(valid_items["item_id"])


def test_some_valid_categories_absent_from_train(ccks_dir, tables):
    out, _ = ccks_dir
    train_items = read_ccks_items(out / "item_train_info.jsonl")
    valid_items = read_ccks_items(out / "item_valid_info.jsonl").set_index("item_id")
    truth = read_ccks_pairs(out / "item_valid_pair_truth.jsonl")
    train_cates = set(train_items["cate_id"]) - {""}
    src_cate = valid_items.loc[truth["src_item_id"], "cate_id"].to_numpy()
    tgt_cate = valid_items.loc[truth["tgt_item_id"], "cate_id"].to_numpy()
    new = ~pd.Series(src_cate).isin(train_cates) & (src_cate != "") | ~pd.Series(tgt_cate).isin(train_cates) & (tgt_cate != "")
    assert 0.15 <= new.mean() <= 0.4
    _, pairs = tables
    valid = pairs[pairs["split"] == "valid"]
    assert 0.2 <= valid["unseen"].mean() <= 0.3


def test_hard_negatives_share_category_and_brand(tables):
    items, pairs = tables
    info = items.set_index("item_id")
    src, tgt = info.loc[pairs["src_item_id"]], info.loc[pairs["tgt_item_id"]]
    same = lambda col: src[col].to_numpy() == tgt[col].to_numpy()  # noqa: E731
    kind = pairs["kind"].to_numpy()
    hard = np.isin(kind, ["hard_model", "hard_spec", "hard_look"])
    assert (same("leaf") & same("brand"))[hard].all()
    assert (~same("model"))[kind == "hard_model"].all()
    assert (same("model") & ~same("spec") & same("look"))[kind == "hard_spec"].all()  # one drawing
    assert (same("model") & same("spec") & ~same("look") & ~same("product"))[kind == "hard_look"].all()
    assert same("product")[kind == "positive"].all() and (pairs["item_label"] == (kind == "positive")).all()
    assert (~same("leaf"))[kind == "easy"].all()
    negatives = kind != "positive"
    assert hard[negatives].mean() > 0.5


def test_each_modality_decides_pairs_the_others_cannot(tables):
    """Look variants: one product description, two drawings; spec variants: one drawing; generic
    sellers' listings name nothing of their product."""
    items, pairs = tables
    info = items.set_index("item_id")
    src, tgt = info.loc[pairs["src_item_id"]], info.loc[pairs["tgt_item_id"]]
    look = pairs["kind"].to_numpy() == "hard_look"
    assert look.any() and (pairs["kind"] == "hard_spec").any()
    assert (src["look"].to_numpy() != tgt["look"].to_numpy())[look].all()
    generic = items[items["generic"]]
    assert len(generic) and all(not r["item_pvs"] and not r["sku_pvs"] for r in generic["record"])
    assert all(r["title"] and r["title"].find(b) < 0 for r, b in zip(generic["record"], generic["brand"]))


def test_overwrite_protection(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "item_valid_pair.jsonl").write_text("old\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="item_valid_pair.jsonl"):
        generate_ccks(out, seed=0, preset="test")
    assert sorted(p.name for p in out.iterdir()) == ["item_valid_pair.jsonl"]  # nothing written
    generate_ccks(out, seed=0, preset="test", overwrite=True)
    assert (out / "item_valid_pair.jsonl").read_text(encoding="utf-8") != "old\n"


def test_unknown_preset(tmp_path):
    with pytest.raises(ValueError, match="preset"):
        generate_ccks(tmp_path, seed=0, preset="huge")


def test_round_trip_load_and_images(ccks_dir):
    out, report = ccks_dir
    for split in ("train", "valid"):
        items = read_ccks_items(out / f"item_{split}_info.jsonl")
        pair_file = "item_train_pair.jsonl" if split == "train" else "item_valid_pair_truth.jsonl"
        pairs = read_ccks_pairs(out / pair_file, items)
        assert len(items) == report.counts[f"{split}_items"] and len(pairs) == report.counts[f"{split}_pairs"]
        assert check_ccks_images(items, out / f"item_{split}_images", decode=True) == []
        name = items.loc[items["item_image_name"] != "", "item_image_name"].iloc[0]
        with Image.open(out / f"item_{split}_images" / name) as im:
            assert im.format == "JPEG" and im.size == (96, 96)
    unlabelled = read_ccks_pairs(out / "item_valid_pair.jsonl")
    assert "item_label" not in unlabelled.columns


def test_titles_are_not_trivially_separable(tables):
    """Char n-gram TF-IDF cosine on titles: best-threshold F1 well below 1 (hard negatives, noise)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    items, pairs = tables
    titles = pd.Series([r.get("title") or "" for r in items["record"]], index=items["item_id"])
    train = pairs[pairs["split"] == "train"]
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3)).fit(titles)
    a, b = vec.transform(titles[train["src_item_id"]]), vec.transform(titles[train["tgt_item_id"]])
    score = np.asarray(a.multiply(b).sum(axis=1)).ravel()
    y = train["item_label"].to_numpy() == 1
    f1 = [2 * (y & (score >= t)).sum() / ((score >= t).sum() + y.sum()) for t in np.unique(score)]
    assert 0.4 < max(f1) < 0.95
    assert not math.isnan(max(f1))
