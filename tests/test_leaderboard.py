"""`prodmatch leaderboard`: runs of every kind collected, best first, plots written."""
from __future__ import annotations

import pandas as pd

from prodmatch.cli import main
from prodmatch.leaderboard import collect, write_leaderboard
from prodmatch.baseline import run_baseline
from prodmatch.post.run import match_run

from .conftest import shopee_rows, write_shopee
from .test_matcher import run_folder  # noqa: F401  (fixture)


def test_leaderboard_collects_matcher_and_baseline_runs(run_folder, tmp_path, capsys):  # noqa: F811
    run, data = run_folder
    info = match_run(run, data_dir=data, config={"k": 10}, progress=False, test_rows=2_000)["info"]
    assert info["predicted"]["test_rows"] == 2_000 and 0 < info["predicted"]["f1"] <= 1
    assert {e["rows"] for e in info["size_table"]} >= {256, 2_000, 262_144}
    assert {"curves.csv", "sizes.csv"} <= {p.name for p in run.iterdir()}
    sizes = pd.read_csv(run / "sizes.csv")
    assert sizes["truth"].sum() == sizes["before_chisel"].sum() == sizes["after_chisel"].sum()  # one entry per row
    base_data = tmp_path / "base"
    write_shopee(base_data, shopee_rows(12), images=False)
    write_shopee(base_data, shopee_rows(4, labelled=False, prefix="test"), stem="test", images=False)
    run_baseline(base_data, out_root=tmp_path, image_policy="text-only")

    table = collect(tmp_path)
    assert set(table["entry"]) >= {"matcher", "baseline"}
    assert table["f1"].is_monotonic_decreasing
    matcher = table[table["entry"] == "matcher"].iloc[0]
    assert "+chisel" in matcher["stages"] or "+chisel" in table[table["entry"] == "matcher"]["stages"].str.cat()
    sized = table[table["test_rows"] == 2_000]
    assert len(sized) == 1 and sized.iloc[0]["predicted_f1"] == round(info["predicted"]["f1"], 4)

    result = write_leaderboard(tmp_path)
    names = {p.name for p in result["plots"]}
    assert {f"{run.name}-f1-vs-threshold.png", f"{run.name}-sizes.png"} <= names
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result["plots"])
    text = result["markdown"].read_text()
    assert "| run | entry |" in text and "![" in text
    assert main(["leaderboard", "--root", str(tmp_path), "--no-plots"]) == 0
    assert "wrote" in capsys.readouterr().out


def test_leaderboard_missing_root(tmp_path, capsys):
    assert main(["leaderboard", "--root", str(tmp_path / "nope")]) == 2
    assert "no runs folder" in capsys.readouterr().err
