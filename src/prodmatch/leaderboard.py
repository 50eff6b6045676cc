"""The local CV leaderboard: every run under ``oof/`` in one table (+ plots), best first.

A run folder is recognised by what it holds: ``result.json`` (baseline), ``models/*/model.json``
(stored embeddings, with OOF F1 when an encoder wrote one), ``ablation.csv`` + ``matcher.json``
(matcher), ``stack/stack.json`` (stacker), ``run.json`` of stage ``ccks`` (CCKS: the chosen entry's
valid-pair F1) or ``kdd`` (KDD recall: the chosen method's NDCG@5, in its own columns). Writes
``leaderboard.md`` and ``leaderboard.csv`` beside the runs and PNGs under ``leaderboard/``: F1 vs threshold per model, match-set sizes
before/after chisel against the truth, stacker feature importance.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .extras import optional, require
from .io import atomic_path, write_csv, write_text
from .report import markdown_table

COLUMNS = ["run", "entry", "what", "data", "metric", "f1", "precision", "recall", "predicted_f1", "ndcg5", "test_ndcg5",
           "test_rows", "stages", "seconds"]
"""`metric` names a row's score: ``F1`` (f1 / precision / recall / predicted_f1) or ``NDCG@5`` (KDD runs:
ndcg5 on valid, test_ndcg5 on the first scored test split); F1 rows come first, then NDCG@5 rows, each best first."""


def collect(root) -> pd.DataFrame:
    """One row per scored thing found under `root` (runs are its direct sub-folders)."""
    root = Path(root)
    rows: list[dict] = []
    for run in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "leaderboard") if root.is_dir() else []:
        for reader in READERS:
            rows += reader(run)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["test_rows"] = frame["test_rows"].astype("Int64")
    return frame.sort_values(["f1", "ndcg5"], ascending=False, na_position="last", ignore_index=True)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _data_hash(info: dict) -> str:
    data = info.get("data") or {}
    first = next(iter(data.values()), "") if isinstance(data, dict) else ""
    return str(first)[:12]


def _baseline(run: Path) -> list[dict]:
    info = _read_json(run / "result.json")
    if info.get("stage") != "baseline":
        return []
    score = info.get("test") or info.get("train") or {}
    what = f"{info.get('method')} threshold {info.get('threshold')} ({'held-out test' if 'test' in info else 'train'})"
    return [_row(run, "baseline", what, info, score)]


def _models(run: Path) -> list[dict]:
    out = []
    for meta_path in sorted((run / "models").glob("*/model.json")):
        info = _read_json(meta_path)
        f1 = info.get("oof_f1")
        if f1 is None:
            continue
        score = {"f1": f1, "precision": info.get("oof_precision"), "recall": info.get("oof_recall")}
        how = ("threshold tuned on all train rows" if info.get("unsupervised")
               else "OOF, each fold searched alone, one threshold tuned on all OOF rows")
        out.append(_row(run, "model", f"{info.get('name')} ({info.get('kind')}): {how} {info.get('oof_threshold')}",
                        info, score))
    return out


def _matcher(run: Path) -> list[dict]:
    if not (run / "ablation.csv").is_file():
        return []
    table = pd.read_csv(run / "ablation.csv")
    info = _read_json(run / "matcher.json")
    chain = table[~table["stage"].isin(["threshold", "+min2", "+nb"])]
    last = (chain if len(chain) else table).iloc[-1]
    best = table.loc[table["f1"].idxmax()]
    stages = " -> ".join(f"{r.stage} {r.f1:.4f}" for r in chain.itertuples()) or f"{last['stage']} {last['f1']:.4f}"
    singles = table[table["stage"] == "threshold"]
    stages = "; ".join([", ".join(f"{r.models} {r.f1:.4f}" for r in singles.itertuples()), stages])
    score = {"f1": float(last["f1"]), "precision": float(last["precision"]), "recall": float(last["recall"])}
    rows = [_row(run, "matcher", f"full chain: {last['models']}", info, score, stages)]
    if info.get("predicted"):  # what predict runs: the best chain stage, thresholds for the test size
        rows.append(_row(run, "matcher", "predict's chain, tuned for the test size", info,
                         {"f1": info.get("oof_f1")}, predicted=info["predicted"]))
    if best["f1"] > last["f1"]:
        rows.append(_row(run, "matcher", f"best stage: {best['stage']} {best['models']}", info,
                         {k: float(best[k]) for k in ("f1", "precision", "recall")}))
    return rows


def _stacker(run: Path) -> list[dict]:
    info = _read_json(run / "stack" / "stack.json")
    if info.get("stage") != "stack":
        return []
    what = f"LightGBM on {info.get('pairs')} pairs of {'+'.join(info.get('models', []))}"
    return [_row(run, "stacker", what, info, info.get("oof", {}), predicted=info.get("predicted"))]


def _ccks(run: Path) -> list[dict]:
    info = _read_json(run / "run.json")
    if info.get("stage") != "ccks" or not info.get("chosen_valid"):
        return []
    members = "+".join(info.get("members", {}))
    what = f"CCKS valid pairs: {info.get('chosen')} (members {members})"
    cv = info.get("chosen_cv_f1")
    return [_row(run, "ccks", what, info, info["chosen_valid"], "" if cv is None else f"cv F1 {float(cv):.4f}")]


def _kdd(run: Path) -> list[dict]:
    """KDD recall: the chosen method's valid NDCG@5 (held-out, or out-of-fold for a level-2 method) and
    its test NDCG@5 where the test answers were known (synthetic testA / testB)."""
    info = _read_json(run / "run.json")
    chosen = info.get("chosen")
    if info.get("stage") != "kdd" or chosen not in (info.get("valid_ndcg5") or {}):
        return []
    how = {"oof": "out-of-fold", "in_sample": "in-sample"}.get((info.get("valid_score_kind") or {}).get(chosen), "held-out")
    tests = info.get("test_ndcg5") or {}
    row = _row(run, "kdd", f"KDD recall: {chosen} (valid NDCG@5 {how}; of {', '.join(info['valid_ndcg5'])})", info, {},
               " ".join(f"{split} {float(v):.4f}" for split, v in tests.items()))
    first = next(iter(tests.values()), None)
    return [{**row, "metric": "NDCG@5", "ndcg5": round(float(info["valid_ndcg5"][chosen]), 4),
             "test_ndcg5": None if first is None else round(float(first), 4)}]


READERS = (_baseline, _models, _matcher, _stacker, _ccks, _kdd)


def _row(run: Path, entry: str, what: str, info: dict, score: dict, stages: str = "", predicted: dict | None = None) -> dict:
    def num(key, source=score):
        value = source.get(key)
        return None if value is None else round(float(value), 4)

    predicted = predicted or {}
    return {"run": run.name, "entry": entry, "what": what, "data": _data_hash(info), "metric": "F1", "f1": num("f1"),
            "precision": num("precision"), "recall": num("recall"), "predicted_f1": num("f1", predicted),
            "test_rows": predicted.get("test_rows"), "stages": stages, "seconds": info.get("seconds")}


def plot_run(run: Path, out_dir: Path) -> list[Path]:
    """The run's PNGs (those its files allow): F1 vs threshold, sizes vs chisel, importance."""
    matplotlib = require("matplotlib", "leaderboard plots")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if (run / "curves.csv").is_file():
        curves = pd.read_csv(run / "curves.csv")
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for name, part in curves.groupby("model", sort=True):
            ax.plot(part["threshold"], part["f1"], label=name)
        ax.set(xlabel="similarity threshold", ylabel="mean row-F1 (each model alone)", title=f"{run.name}: F1 vs threshold")
        ax.legend()
        written.append(_save(fig, out_dir / f"{run.name}-f1-vs-threshold.png", plt))
    if (run / "sizes.csv").is_file():
        sizes = pd.read_csv(run / "sizes.csv")
        sizes = sizes[(sizes[["truth", "before_chisel", "after_chisel"]].sum(axis=1) > 0)]
        fig, ax = plt.subplots(figsize=(6.5, 4))
        width = 0.28
        for offset, column in zip((-width, 0, width), ("truth", "before_chisel", "after_chisel")):
            ax.bar(sizes["size"] + offset, sizes[column], width=width, label=column.replace("_", " "))
        ax.set(xlabel="match-set size (self included)", ylabel="rows", title=f"{run.name}: set sizes vs truth")
        ax.set_xlim(0.4, min(int(sizes["size"].max()), 20) + 0.6)
        ax.legend()
        written.append(_save(fig, out_dir / f"{run.name}-sizes.png", plt))
    if (run / "stack" / "importance.csv").is_file():
        from .stack.lgbm import plot_importance

        written.append(plot_importance(pd.read_csv(run / "stack" / "importance.csv"), out_dir / f"{run.name}-importance.png"))
    return written


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def write_leaderboard(root="oof", *, plots: bool = True) -> dict:
    """Collect, write leaderboard.md / .csv under `root`, and the plots under root/leaderboard/."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no runs folder")
    table = collect(root)
    images: list[Path] = []
    if plots and optional("matplotlib", "the leaderboard's PNG plots") is not None:
        for run in sorted(set(table["run"])):
            images += plot_run(root / run, root / "leaderboard")
    write_csv(root / "leaderboard.csv", table)
    lines = ["# Local CV leaderboard", "", f"{len(table)} entries from {table['run'].nunique()} runs under `{root}`, best F1 first, then KDD rows (metric NDCG@5) best ndcg5 first.",
             "Matcher, stacker and encoder F1 are out-of-fold with thresholds tuned on other folds; a baseline's is its held-out test (synthetic) or train score.",
             "KDD rows (metric NDCG@5): ndcg5 is the chosen method's valid score (held-out, or out-of-fold for a level-2 method), "
             "test_ndcg5 its score on the first test split with answers.",
             "predicted_f1: the F1 the matcher / stacker expects on a test set of test_rows rows (thresholds tuned for that size; "
             "decide by this one when the test set is bigger than a CV pool).",
             "", markdown_table(table.astype(object).where(table.notna(), "-")) if len(table) else "(no scored runs yet)"]
    if images:
        lines += ["", "## Plots", ""] + [f"![{p.stem}](leaderboard/{p.name})" for p in images]
    write_text(root / "leaderboard.md", "\n".join(lines) + "\n")
    return {"table": table, "markdown": root / "leaderboard.md", "csv": root / "leaderboard.csv", "plots": images}
