"""The CCKS run's tables and report: scores.parquet, compare.csv, report.md."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import preview
from ..io import write_csv, write_text
from ..metrics import pair_scores
from .data import CcksData
from .select import SELECTION, Entry, Folds

def score_table(data: CcksData, hold: pd.DataFrame, valid: pd.DataFrame, chosen: np.ndarray | None = None,
                folds: Folds | None = None) -> pd.DataFrame:
    """scores.parquet: one row per held-out / valid pair, member scores, label where known, unseen flag
    (held-out: pseudo-unseen), the held-out pairs' CV fold and the chosen entry's valid decision
    (both absent in a failed run's table: its members' scores only)."""
    y_valid = data.y_valid if data.y_valid is not None else np.full(len(data.valid), pd.NA)
    parts = []
    for split, frame, scores, y, unseen, fold, pred in (
            ("holdout", data.holdout, hold, data.holdout["item_label"], data.unseen_holdout,
             None if folds is None else folds.fold, None),
            ("valid", data.valid, valid, y_valid, data.unseen_valid, None, chosen)):
        part = frame[["src_item_id", "tgt_item_id", "cate_a", "cate_b"]].reset_index(drop=True)
        part.insert(0, "split", split)
        part = pd.concat([part, scores.reset_index(drop=True)], axis=1)
        part["item_label"] = pd.array(np.asarray(y, dtype=object), dtype="Int8")
        part["unseen"] = np.asarray(unseen, bool)
        part["cv_fold"] = pd.array(np.full(len(frame), pd.NA) if fold is None else fold, dtype="Int8")
        part["chosen"] = pd.array(np.full(len(frame), pd.NA) if pred is None else pred, dtype="boolean")
        parts.append(part)
    return pd.concat(parts, ignore_index=True)

def compare_table(entries: list[Entry], data: CcksData, chosen: Entry) -> pd.DataFrame:
    """compare.csv: per entry held-out F1 (in-sample), CV F1 (the choice) and valid F1 / P / R, seen
    and unseen F1 (needs the truth); a benchmark's columns are its valid (in-sample, cv) and test
    F1 / P / R, without the category split."""
    y, unseen = data.y_valid, data.unseen_valid
    hold_name, valid_name = data.split_names
    rows = []
    for e in entries:
        pred = e.valid_pred
        s = pair_scores(y, pred)
        row = {"entry": e.name, "kind": e.kind, f"{hold_name} F1": round(e.held_out_f1, 4), "cv F1": round(e.cv_f1, 4),
               f"{valid_name} F1": round(s.f1, 4), "P": round(s.precision, 4), "R": round(s.recall, 4)}
        if data.lines is None:
            a, b = pair_scores(y[~unseen], pred[~unseen]), pair_scores(y[unseen], pred[unseen])
            row.update({"seen F1": round(a.f1, 4), "unseen F1": round(b.f1, 4)})
        rows.append({**row, "chosen": e.name == chosen.name})
    return pd.DataFrame(rows)

def report_text(table: pd.DataFrame, data_dir, data: CcksData, chosen: Entry, folds: Folds, rescored) -> str:
    """report.md: what was run, the compare table, the result file's re-scored F1."""
    from ..report import markdown_table

    if data.lines is not None:
        return benchmark_report(table, data_dir, data, chosen, folds, rescored)
    n_unseen = int(data.unseen_valid.sum())
    return "\n".join([
        f"# CCKS run: {data_dir}", "",
        f"{len(data.train)} training / {len(data.holdout)} held-out train pairs (item-disjoint), "
        f"{len(data.valid)} valid pairs ({len(data.valid) - n_unseen} seen / {n_unseen} unseen categories). "
        f"Every threshold and ensemble is fitted on the held-out pairs; unseen-category thresholds on the "
        f"held-out pairs of the pseudo-unseen categories {preview(data.pseudo_unseen)}. "
        f"\"held-out F1\": each rule fitted and scored on all held-out pairs (in-sample); \"cv F1\": "
        f"refitted on {folds.k - 1} of {folds.k} folds ({folds.scheme} folds, {folds.components} connected "
        f"components), F1 of the pooled out-of-fold decisions.", "",
        f"Submission entry ({SELECTION}): **{chosen.name}** (cv F1 {chosen.cv_f1:.4f}, "
        f"held-out F1 {chosen.held_out_f1:.4f}).", "",
        markdown_table(table), "",
        f"result.jsonl re-scored with the cosine scorer: F1 {rescored.f1:.4f} (P {rescored.precision:.4f}, "
        f"R {rescored.recall:.4f}).", ""])

def write_scoring(folder: Path, data_dir, data: CcksData, entries: list[Entry], chosen: Entry, folds: Folds) -> dict:
    """compare.csv + report.md against the valid truth; the result file is re-scored as a check."""
    from .output import score_result_file

    table = compare_table(entries, data, chosen)
    if data.lines is None:
        truth = data.valid[["src_item_id", "tgt_item_id"]].assign(item_label=data.y_valid)
        rescored = score_result_file(folder / "result.jsonl", truth)
    else:
        rescored = pair_scores(data.y_valid, pd.read_csv(folder / "predictions.csv")["prediction"].to_numpy(bool))
    write_csv(folder / "compare.csv", table)
    write_text(folder / "report.md", report_text(table, data_dir, data, chosen, folds, rescored))
    chosen_valid = {"f1": rescored.f1, "precision": rescored.precision, "recall": rescored.recall}
    return {"compare": folder / "compare.csv", "report": folder / "report.md", "table": table,
            "valid_f1": dict(zip(table["entry"], table[f"{data.split_names[1]} F1"])), "chosen_valid": chosen_valid}

def benchmark_report(table: pd.DataFrame, data_dir, data: CcksData, chosen: Entry, folds: Folds, rescored) -> str:
    """report.md of a benchmark run: fit on train, chosen on valid, test scored once."""
    from ..report import markdown_table

    facts = data.facts
    return "\n".join([
        f"# Pair benchmark run: {data_dir}" + (f" (train size {facts['train_size']})" if facts.get("train_size") else ""),
        "",
        f"{len(data.train)} train / {len(data.holdout)} valid / {len(data.valid)} test pairs over {facts['items']} "
        f"records ({facts['format']} format; repeated pair lines kept: {facts['repeats']}). Members fit on train; "
        f"every threshold, ensemble and the choice on valid (\"cv F1\": refitted on {folds.k - 1} of {folds.k} "
        f"{folds.scheme} folds of the valid pairs, F1 of the pooled out-of-fold decisions); test labels only score.",
        *(f"- warning: {w}" for w in facts.get("warnings", [])), "",
        f"Chosen entry ({SELECTION}): **{chosen.name}** (valid cv F1 {chosen.cv_f1:.4f}, in-sample "
        f"{chosen.held_out_f1:.4f}).", "",
        markdown_table(table), "",
        f"predictions.csv re-scored: test F1 {rescored.f1:.4f} (P {rescored.precision:.4f}, R {rescored.recall:.4f}).",
        ""])
