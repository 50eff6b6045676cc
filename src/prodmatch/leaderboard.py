"""The local CV leaderboard: every run under ``oof/`` in one table (+ plots), best first.

A run is listed by the ``summary.json`` files its stages wrote (`prodmatch.summary`: the run's own,
``stack/``'s, ``models/<name>/``'s), whatever the task. Writes ``leaderboard.md`` and
``leaderboard.csv`` beside the runs and PNGs under ``leaderboard/``: F1 vs threshold per model,
match-set sizes before/after chisel against the truth, stacker feature importance.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .errors import DataError
from .extras import optional, require
from .io import atomic_path, write_csv, write_text
from .report import markdown_table
from .summary import ENTRY_FIELDS, read_summary, run_summaries

log = logging.getLogger(__name__)

COLUMNS = ["run", *ENTRY_FIELDS]
"""`metric` names a row's score: ``F1`` (f1 / precision / recall / predicted_f1) or ``NDCG@5`` (KDD runs:
ndcg5 on valid, test_ndcg5 on the first scored test split); F1 rows come first, then NDCG@5 rows, each best first."""


def collect(root) -> pd.DataFrame:
    """One row per summary entry of every run under `root` (runs are its direct sub-folders); a
    summary that cannot be read is skipped with a warning naming it."""
    root = Path(root)
    rows: list[dict] = []
    for run in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "leaderboard") if root.is_dir() else []:
        for path in run_summaries(run):
            try:
                rows += [{"run": run.name, **e} for e in read_summary(path)["entries"]]
            except DataError as err:
                log.warning("leaderboard: skipped %s", err)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["test_rows"] = frame["test_rows"].astype("Int64")
    return frame.sort_values(["f1", "ndcg5"], ascending=False, na_position="last", ignore_index=True)


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
