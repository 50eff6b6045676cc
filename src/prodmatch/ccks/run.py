"""The CCKS stage: a CCKS folder -> members scored -> rules fitted on the held-out pairs -> the entry
with the best cross-validated held-out F1 writes result.jsonl. Protocol: ccks/README.md."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import load_config, to_dict
from ..io import atomic_dir, atomic_path, check_out, code_version, write_csv, write_json
from ..summary import f1_entry, write_summary
from ..resources import torch_threads
from .config import CcksRunConfig
from .data import CcksData, load_data
from .members import ScoreBook, build_members, score_members
from .report import score_table, write_scoring
from .reuse import EarlierRun
from ..data.folds import pair_components
from .select import SELECTION, choose, entry_rules, fit_entries, selection_folds

log = logging.getLogger(__name__)

def ccks_run(data_dir, config, out, *, overwrite: bool = False, progress: bool = True, reuse=None,
             train_size: str | None = None) -> dict:
    """Train / score the members, fit ensembles on the held-out pairs, write ``out/`` (protocol:
    ccks/README.md); `reuse`: an earlier run folder whose unchanged members' scores are taken over
    (`ccks.reuse`). The submission entry is the best cross-validated held-out F1; returns a summary dict
    (``chosen``, ``chosen_cv_f1``, ``chosen_held_out_f1``, per entry ``cv_f1`` / ``held_out_f1`` /
    ``valid_f1``, ``chosen_valid``, the artifact paths). A benchmark folder of the field (Ditto lines,
    DeepMatcher CSVs; `train_size` picks a WDC size) runs under its protocol: fit on train, choose on
    valid, score test (``predictions.csv``). A run that fails after a member finished keeps the finished
    members in ``<out>.failed[-k]/``, a run `reuse` takes."""
    started = time.time()
    config = load_config(config, CcksRunConfig)
    out = Path(out)
    check_out(out, overwrite)
    members = build_members(config)
    earlier = EarlierRun.read(reuse) if reuse is not None else None
    if earlier is not None and overwrite:
        earlier.check_not_replaced(out, config)
    with atomic_dir(out, replace=overwrite) as tmp, torch_threads(config.threads):
        data = load_data(data_dir, config, tmp, needs_images=any(m.reads_images for m in members),
                         train_size=train_size)
        if earlier is not None:
            earlier.check_compatible(data, config)
        log.info("ccks: %d training / %d %s / %d %s pairs", len(data.train), len(data.holdout), data.split_names[0],
                 len(data.valid), data.split_names[1])
        reused = earlier.member_scores(config, data) if earlier is not None else {}
        book = ScoreBook()
        try:
            score_members(members, data, progress, reused, book)
            hold, valid = book.frames()
            summary = write_run(tmp, data_dir, config, data, hold, valid, book.info, started)
        except BaseException:
            keep_finished_members(tmp, out, data_dir, config, data, book)
            raise
    summary.update({k: out / v.name for k, v in summary.items() if isinstance(v, Path)}, out=out)
    log.info("ccks: chosen %s (cv F1 %.4f, held-out F1 %.4f)", summary["chosen"], summary["chosen_cv_f1"],
             summary["chosen_held_out_f1"])
    return summary

def keep_finished_members(tmp: Path, out: Path, data_dir, config: CcksRunConfig, data: CcksData,
                          book: ScoreBook) -> Path | None:
    """After a failure: when a member finished scoring here, the run folder so far (members/, their
    scores in scores.parquet, run.json marked failed) moves to a fresh ``<out>.failed[-k]``, which
    ``--reuse`` takes; the folder, or None when nothing finished."""
    trained = [name for name, info in book.info.items() if "reused_from" not in info]
    if not trained:
        return None
    hold, valid = book.frames()
    with atomic_path(tmp / "scores.parquet") as path:
        score_table(data, hold, valid).to_parquet(path, index=False)
    write_json(tmp / "run.json", {**run_record(data_dir, config, data, book.info, None), "status": "failed"})
    kept = fresh_sibling(out, "failed")
    os.replace(tmp, kept)
    log.error("ccks: the run failed after %d member(s) finished (%s); they are kept in %s: rerun with --reuse %s",
              len(trained), ", ".join(trained), kept, kept)
    return kept

def fresh_sibling(path: Path, tag: str) -> Path:
    """``<path>.<tag>``, or ``<path>.<tag>-2`` ... : the first that does not exist yet."""
    for k in range(1, 1000):
        candidate = path.parent / (f"{path.name}.{tag}" + (f"-{k}" if k > 1 else ""))
        if not candidate.exists():
            return candidate
    raise FileExistsError(f"no free {path.name}.{tag}-k folder beside {path}")

def run_record(data_dir, config: CcksRunConfig, data: CcksData, info: dict, chosen) -> dict:
    """run.json's common part: what ran on what (config, data hashes, code version, splits)."""
    return {"stage": "ccks", "config": to_dict(config), "data_dir": str(data_dir), "data": data.hashes,
            "code_version": code_version(), "members": info, "chosen": chosen, "data_facts": data.facts,
            "split_names": {"holdout": data.split_names[0], "valid": data.split_names[1]},
            "split": {"train_pairs": len(data.train), "holdout_pairs": len(data.holdout),
                      "valid_pairs": len(data.valid), "valid_unseen_pairs": int(data.unseen_valid.sum()),
                      "holdout_pseudo_unseen_pairs": int(data.unseen_holdout.sum())}}

def write_run(folder: Path, data_dir, config: CcksRunConfig, data: CcksData, hold: pd.DataFrame,
              valid: pd.DataFrame, info: dict, started: float) -> dict:
    """Fit and cross-validate the entries, choose one, write every artifact into `folder`; the summary dict."""
    from .output import write_decision_result

    y = data.holdout["item_label"].to_numpy(np.int64)
    folds = selection_folds(y, pair_components(data.holdout["src_item_id"], data.holdout["tgt_item_id"]),
                            config.select_folds, config.seed)
    members = list(hold.columns)
    features = stacker_features(data, config) if config.stacker else None
    if features is not None:
        hold, valid = hold.join(features[0]), valid.join(features[1])
    rules = entry_rules(members, unseen=bool(data.unseen_holdout.any()), prune=config.prune,
                        stacker_columns=None if features is None else list(hold.columns), seed=config.seed)
    entries = fit_entries(rules, y, hold, data.unseen_holdout, valid, data.unseen_valid, folds.fold)
    hold, valid = hold[members], valid[members]
    chosen = choose(entries)
    held_out = {e.name: e.held_out_f1 for e in entries}
    cv = {e.name: e.cv_f1 for e in entries}
    log.info("ccks: %d-fold %s selection folds", folds.k, folds.scheme)
    write_json(folder / "ensembles.json", {
        "format": 2, "selection": SELECTION, "cv": folds.to_dict(), "chosen": chosen.name,
        "held_out_f1": held_out, "cv_f1": cv,
        "members": {e.name.removeprefix("member "): e.params for e in entries if e.kind == "member"},
        "pseudo_unseen_categories": data.pseudo_unseen,
        "ensembles": {e.name: e.params for e in entries if e.kind != "member"}})
    with atomic_path(folder / "scores.parquet") as tmp:
        score_table(data, hold, valid, chosen.valid_pred, folds).to_parquet(tmp, index=False)
    if data.lines is None:
        result = write_decision_result(folder / "result.jsonl", data.valid[["src_item_id", "tgt_item_id"]],
                                       chosen.valid_margin, chosen.threshold, inclusive=chosen.inclusive)
    else:
        result = write_csv(folder / "predictions.csv", pd.DataFrame(
            {"line": data.lines, "score": chosen.valid_margin, "prediction": chosen.valid_pred.astype(np.int8)}))
    summary = {"run": folder / "run.json", "scores": folder / "scores.parquet", "ensembles": folder / "ensembles.json",
               "result": result, "compare": None, "report": None, "chosen": chosen.name,
               "chosen_cv_f1": chosen.cv_f1, "chosen_held_out_f1": chosen.held_out_f1, "cv_f1": cv,
               "held_out_f1": held_out, "valid_f1": None, "chosen_valid": None, "valid_pairs": len(data.valid),
               "cv": folds.to_dict()}
    if data.y_valid is not None:
        summary.update(write_scoring(folder, data_dir, data, entries, chosen, folds))
    record = {**run_record(data_dir, config, data, info, chosen.name),
              "chosen_cv_f1": chosen.cv_f1, "chosen_held_out_f1": chosen.held_out_f1,
              "chosen_valid": summary["chosen_valid"], "cv": folds.to_dict(),
              "entries": entry_scores(entries, data), "seconds": round(time.time() - started, 2)}
    write_json(folder / "run.json", record)
    if record["chosen_valid"]:
        write_summary(folder, task="ccks", stage="ccks", entries=[summary_entry(record)])
    return summary


def summary_entry(record: dict) -> dict:
    """The run's summary entry: the chosen entry's valid-pair F1 (and its cross-validated F1)."""
    members = "+".join(record.get("members", {}))
    cv = record.get("chosen_cv_f1")
    return f1_entry("ccks", f"CCKS valid pairs: {record.get('chosen')} (members {members})", record,
                    record["chosen_valid"], "" if cv is None else f"cv F1 {float(cv):.4f}")

def stacker_features(data: CcksData, config: CcksRunConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The named pair comparisons of the held-out and the valid pairs (the stacker entry's features)."""
    from ..stack.comparisons import build_comparisons
    from .members import pair_comparisons

    comparisons = build_comparisons(config.comparisons or None, data.items)
    return tuple(pair_comparisons(data.items, frame, comparisons) for frame in (data.holdout, data.valid))

def entry_scores(entries, data: CcksData) -> dict:
    """Per entry, under the protocol's split names: the held-out (choosing) pairs' in-sample F1 / P / R
    and cross-validated F1, and with the truth the scored pairs' F1 / P / R."""
    from ..metrics import pair_scores

    hold_name, valid_name = data.split_names
    y = data.holdout["item_label"].to_numpy(np.int64)
    out = {}
    for e in entries:
        s = pair_scores(y, e.in_sample_pred)
        row = {hold_name: {"f1": s.f1, "precision": s.precision, "recall": s.recall}, f"{hold_name}_cv_f1": e.cv_f1}
        if data.y_valid is not None:
            t = pair_scores(data.y_valid, e.valid_pred)
            row[valid_name] = {"f1": t.f1, "precision": t.precision, "recall": t.recall}
        out[e.name] = row
    return out
