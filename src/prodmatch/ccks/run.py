"""The CCKS stage: a CCKS folder -> members scored -> rules fitted on the held-out pairs -> the entry
with the best cross-validated held-out F1 writes result.jsonl. Protocol: ccks/README.md."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import load_config, to_dict
from ..io import atomic_dir, atomic_path, check_out, code_version, write_json
from ..resources import torch_threads
from .config import CcksRunConfig
from .data import CcksData, ccks_hashes, load_data
from .members import build_members, score_members
from .report import score_table, write_scoring
from .reuse import EarlierRun
from .select import SELECTION, choose, entry_rules, fit_entries, pair_components, selection_folds

log = logging.getLogger(__name__)

def ccks_run(data_dir, config, out, *, overwrite: bool = False, progress: bool = True, reuse=None) -> dict:
    """Train / score the members, fit ensembles on the held-out pairs, write ``out/`` (protocol:
    ccks/README.md); `reuse`: an earlier run folder whose unchanged members' scores are taken over
    (`ccks.reuse`). The submission entry is the best cross-validated held-out F1; returns a summary dict
    (``chosen``, ``chosen_cv_f1``, ``chosen_held_out_f1``, per entry ``cv_f1`` / ``held_out_f1`` /
    ``valid_f1``, ``chosen_valid``, the artifact paths)."""
    started = time.time()
    config = load_config(config, CcksRunConfig)
    out = Path(out)
    check_out(out, overwrite)
    members = build_members(config)
    earlier = None
    if reuse is not None:
        earlier = EarlierRun.read(reuse)
        earlier.check_compatible(data_dir, config)
    with atomic_dir(out) as tmp, torch_threads(config.threads):
        data = load_data(data_dir, config, tmp, needs_images=any(m.reads_images for m in members))
        log.info("ccks: %d training / %d held-out / %d valid pairs", len(data.train), len(data.holdout), len(data.valid))
        reused = earlier.member_scores(config, data) if earlier is not None else {}
        hold, valid, info = score_members(members, data, progress, reused)
        summary = write_run(tmp, data_dir, config, data, hold, valid, info, started)
    summary.update({k: out / v.name for k, v in summary.items() if isinstance(v, Path)}, out=out)
    log.info("ccks: chosen %s (cv F1 %.4f, held-out F1 %.4f)", summary["chosen"], summary["chosen_cv_f1"],
             summary["chosen_held_out_f1"])
    return summary

def write_run(folder: Path, data_dir, config: CcksRunConfig, data: CcksData, hold: pd.DataFrame,
              valid: pd.DataFrame, info: dict, started: float) -> dict:
    """Fit and cross-validate the entries, choose one, write every artifact into `folder`; the summary dict."""
    from .output import write_decision_result

    y = data.holdout["item_label"].to_numpy(np.int64)
    folds = selection_folds(y, pair_components(data.holdout["src_item_id"], data.holdout["tgt_item_id"]),
                            config.select_folds, config.seed)
    rules = entry_rules(hold.columns, unseen=bool(data.unseen_holdout.any()))
    entries = fit_entries(rules, y, hold, data.unseen_holdout, valid, data.unseen_valid, folds.fold)
    chosen = choose(entries)
    held_out = {e.name: e.held_out_f1 for e in entries}
    cv = {e.name: e.cv_f1 for e in entries}
    log.info("ccks: %d-fold %s selection folds", folds.k, folds.scheme)
    write_json(folder / "ensembles.json", {
        "format": 2, "selection": SELECTION, "cv": folds.to_dict(), "chosen": chosen.name,
        "held_out_f1": held_out, "cv_f1": cv,
        "members": {e.name.removeprefix("member "): e.params for e in entries if e.kind == "member"},
        "pseudo_unseen_categories": data.pseudo_unseen,
        "ensembles": {e.name: e.params for e in entries if e.kind == "ensemble"}})
    with atomic_path(folder / "scores.parquet") as tmp:
        score_table(data, hold, valid, chosen.valid_pred, folds).to_parquet(tmp, index=False)
    result = write_decision_result(folder / "result.jsonl", data.valid[["src_item_id", "tgt_item_id"]],
                                   chosen.valid_margin, chosen.threshold, inclusive=chosen.inclusive)
    summary = {"run": folder / "run.json", "scores": folder / "scores.parquet", "ensembles": folder / "ensembles.json",
               "result": result, "compare": None, "report": None, "chosen": chosen.name,
               "chosen_cv_f1": chosen.cv_f1, "chosen_held_out_f1": chosen.held_out_f1, "cv_f1": cv,
               "held_out_f1": held_out, "valid_f1": None, "chosen_valid": None, "valid_pairs": len(data.valid),
               "cv": folds.to_dict()}
    if data.y_valid is not None:
        summary.update(write_scoring(folder, data_dir, data, entries, chosen, folds))
    record = {"stage": "ccks", "config": to_dict(config), "data_dir": str(data_dir), "data": ccks_hashes(data_dir),
              "code_version": code_version(), "members": info, "chosen": chosen.name,
              "chosen_cv_f1": chosen.cv_f1, "chosen_held_out_f1": chosen.held_out_f1,
              "chosen_valid": summary["chosen_valid"], "cv": folds.to_dict(),
              "split": {"train_pairs": len(data.train), "holdout_pairs": len(data.holdout),
                        "valid_pairs": len(data.valid), "valid_unseen_pairs": int(data.unseen_valid.sum()),
                        "holdout_pseudo_unseen_pairs": int(data.unseen_holdout.sum())},
              "seconds": round(time.time() - started, 2)}
    write_json(folder / "run.json", record)
    return summary
