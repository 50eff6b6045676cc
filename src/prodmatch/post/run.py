"""The `match` stage: a run's OOF embeddings -> nested ablation of the matcher chain -> ablation.csv,
matcher.json (the chosen chain tuned for the test size, its size table), curves.csv, sizes.csv."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..data.shopee import read_shopee_csv
from ..errors import DataError
from ..io import data_hashes, write_csv, write_json
from ..metrics import row_group_sizes
from ..summary import f1_entry, write_summary

log = logging.getLogger(__name__)


def match_parts(rows: pd.DataFrame, models, *, titles=None, k: int = 50, backend: str = "auto",
                cv_pool: str = "fold") -> list:
    """The labelled (pool, fold) parts of an embedding run for the matcher's nested tuning.

    ``cv_pool="fold"``: one pool per fold (OOF rows of one fold come from one fold model);
    ``"all"``: one pool of every row, each fold's rows scored in it (one embedding space only).
    """
    from .pool import Pool

    folds = rows["fold"].to_numpy()
    if (folds < 0).any():
        raise DataError("rows.csv has rows without a fold (fold < 0): the matcher tunes on folds")
    groups = rows["label_group"].to_numpy()
    if cv_pool == "all":
        per_fold = [m.name for m in models if m.meta.get("per_fold_models")]
        if per_fold:
            raise DataError(f"cv_pool 'all' mixes fold models' spaces; {per_fold} were trained per fold: use 'fold'")
        data = {m.name: (m.kind, m.oof) for m in models}
        pool = Pool(data, titles=titles, groups=groups, segments=folds, k=k, backend=backend)
        return [(pool, f) for f in np.unique(folds)]
    parts = []
    for f in np.unique(folds):
        at = np.flatnonzero(folds == f)
        data = {m.name: (m.kind, m.oof[at]) for m in models}
        parts.append((Pool(data, titles=None if titles is None else titles[at], groups=groups[at], k=k,
                           backend=backend), None))
    return parts


def run_titles(rows: pd.DataFrame, data_dir) -> np.ndarray:
    """Titles of a run's rows, looked up by posting_id in ``data_dir/train.csv``."""
    frame = read_shopee_csv(Path(data_dir) / "train.csv", image_policy="text-only")
    title = frame.set_index("posting_id")["title"]
    missing = ~rows["posting_id"].isin(title.index)
    if missing.any():
        raise DataError(f"{int(missing.sum())} run rows are not in {data_dir}/train.csv, e.g. {rows['posting_id'][missing].iloc[0]}")
    return title.loc[rows["posting_id"]].to_numpy(dtype=object)


def match_run(runs, *, data_dir=None, titles=None, config=None, overwrite: bool = False, progress: bool = True,
              test_rows: int | None = None) -> dict:
    """The matcher's nested ablation on a run's OOF embeddings; writes ablation.csv + matcher.json.

    Titles (for the unit filter) come from ``data_dir/train.csv`` or are given aligned with the
    run's rows. Files go into the first run folder; existing ones are only replaced with `overwrite`.
    The ablation scores the CV pools as they are (OOF F1); the chosen chain's thresholds are then
    tuned for the test size (`test_rows`, else ``config.test_rows``, else the run's test.csv rows):
    matcher.json's ``predicted`` is its nested F1 expected there, ``size_table`` its thresholds
    for other sizes (predict picks by the row count it meets).
    """
    from dataclasses import replace

    from ..config import load_config, to_dict
    from .matcher import MatcherConfig, ablation
    from .stage import params_to_dict
    from ..store import check_built_on, load_runs

    started = time.time()
    config = load_config(config if config is not None else {}, MatcherConfig)
    runs = [Path(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    out_csv, out_json = runs[0] / "ablation.csv", runs[0] / "matcher.json"
    if not overwrite and (out_csv.exists() or out_json.exists()):
        raise FileExistsError(f"{out_csv} exists; pass --overwrite to replace it")
    rows, models = load_runs(runs, names=list(config.models) or None)
    if data_dir is not None:
        check_built_on(models, data_dir)
    if titles is None and data_dir is not None:
        titles = run_titles(rows, data_dir)
    if config.units and titles is None:
        raise DataError("the unit filter needs titles: give --data (the folder with train.csv) or set units: false")
    if titles is not None and len(titles) != len(rows):
        raise DataError(f"{len(titles)} titles for a run of {len(rows)} rows")
    test_rows = tuned_test_rows(test_rows, config.test_rows, models)
    config = replace(config, cv_pool=resolve_cv_pool(config.cv_pool, models), test_rows=test_rows)
    parts = match_parts(rows, models, titles=titles, k=config.k, backend=config.backend, cv_pool=config.cv_pool)
    names = [m.name for m in models]
    kinds = {m.name: m.kind for m in models}
    result = ablation(parts, replace(config, test_rows=None), kinds, names, progress=progress)
    predicted, table = None, []
    if test_rows and result.stage is not None:
        result.params, predicted, table = matcher_at_size(parts, config, kinds, names, result.stage)
    info = {
        "stage": "match",
        "config": to_dict(config),
        "models": {m.name: {"kind": m.kind, "created": m.meta.get("created")} for m in models},
        "params": params_to_dict(result.params),
        "oof_f1": result.oof_f1,  # nested OOF F1 of the stage the params run (the best chain row)
        "predicted": predicted,  # nested F1 expected at test_rows with thresholds tuned for it
        "size_table": table,
        "per_fold_thresholds": result.per_fold,
        "rows": len(rows),
        "runs": [str(r) for r in runs],
        "data": data_hashes(data_dir, ("train.csv",)) if data_dir is not None else {},
        "version": __version__,
        "seconds": round(time.time() - started, 2),
    }
    write_json(out_json, info, replace=overwrite)  # first: a racing match without --overwrite stops here
    write_csv(out_csv, result.table)
    write_csv(runs[0] / "curves.csv", threshold_curves(parts, names, config.grid))
    write_csv(runs[0] / "sizes.csv", size_distribution(parts, result.params))
    write_summary(runs[0], task="shopee", stage="matcher", entries=summary_entries(result.table, info))
    return {"table": result.table, "params": result.params, "ablation": out_csv, "matcher": out_json,
            "seconds": info["seconds"], "info": info}


def summary_entries(table: pd.DataFrame, info: dict) -> list[dict]:
    """The matcher's summary: the full chain's OOF F1 (stage by stage), predict's chain tuned for the
    test size, and the best stage when it beats the full chain."""
    chain = table[~table["stage"].isin(["threshold", "+min2", "+nb"])]
    last = (chain if len(chain) else table).iloc[-1]
    best = table.loc[table["f1"].idxmax()]
    stages = " -> ".join(f"{r.stage} {r.f1:.4f}" for r in chain.itertuples()) or f"{last['stage']} {last['f1']:.4f}"
    singles = table[table["stage"] == "threshold"]
    stages = "; ".join([", ".join(f"{r.models} {r.f1:.4f}" for r in singles.itertuples()), stages])
    score = {"f1": float(last["f1"]), "precision": float(last["precision"]), "recall": float(last["recall"])}
    entries = [f1_entry("matcher", f"full chain: {last['models']}", info, score, stages)]
    if info.get("predicted"):  # what predict runs: the best chain stage, thresholds for the test size
        entries.append(f1_entry("matcher", "predict's chain, tuned for the test size", info,
                                {"f1": info.get("oof_f1")}, predicted=info["predicted"]))
    if best["f1"] > last["f1"]:
        entries.append(f1_entry("matcher", f"best stage: {best['stage']} {best['models']}", info,
                                {k: float(best[k]) for k in ("f1", "precision", "recall")}))
    return entries


def matcher_at_size(parts, config, kinds, names, stage) -> tuple:
    """The chosen chain `stage` tuned for ``config.test_rows``: (params, predicted scores dict,
    size table of thresholds for other test sizes, members and NB graphs fixed)."""
    from dataclasses import replace

    from .matcher import fit, nested_score, score_parts, tune
    from .tune import SIZE_GRID

    scores, _, _, _ = nested_score(parts, stage, config)
    params = fit(parts, config, kinds, names, stage=stage)
    predicted = {"test_rows": int(config.test_rows), **asdict(scores), "t": params.t, "t_min2": params.t_min2}
    fixed = params.stage.without("select")
    n_rows = sum(int(pool.mask(seg).sum()) for pool, seg in parts)
    table = []
    for size in sorted({*SIZE_GRID, int(config.test_rows)}):
        at = replace(config, test_rows=size)
        tuned = tune(parts, fixed, at, params.nb_thresholds, params.target_sizes)
        f1 = score_parts(parts, tuned, config.grid, size)["f1"] / n_rows
        table.append({"rows": size, "t": tuned.t, "t_min2": tuned.t_min2, "f1": round(f1, 4)})
    return params, predicted, table


def resolve_cv_pool(cv_pool: str, models) -> str:
    """"auto" -> "all" when every model shares one space across folds, else "fold"."""
    per_fold = [m.name for m in models if m.meta.get("per_fold_models")]
    if cv_pool == "auto":
        return "fold" if per_fold else "all"
    return cv_pool


def run_test_rows(models) -> int | None:
    """Rows of the run's test.csv (the models' test matrices), None when the run has none."""
    sizes = {int(m.test.shape[0]) for m in models if m.test is not None}
    return max(sizes) if sizes else None


def tuned_test_rows(given: int | None, configured: int | None, models) -> int | None:
    """The test size thresholds are tuned for: `given` (--test-rows), else the config's, else the
    run's test.csv rows - with a warning when that is tiny (Kaggle's visible test.csv has 3 rows)."""
    for value in (given, configured):
        if value is not None and int(value) < 1:
            raise DataError(f"test_rows must be a positive row count, got {value}")
    if given or configured:
        oof = getattr(models[0], "oof", None) if models else None
        return warn_extrapolation(int(given or configured), None if oof is None else oof.shape[0])
    rows = run_test_rows(models)
    if rows is not None and rows < 256:
        log.warning("the run's test.csv has %d rows: thresholds and the predicted F1 are for that size; pass "
                    "--test-rows with the real test size (Kaggle: 70000); predict still adapts to its rows", rows)
    return rows


EXTRAPOLATION_WARNING = 20  # test / train rows beyond which the density correction is a guess


def warn_extrapolation(test_rows: int, train_rows: int | None) -> int:
    """`test_rows`, with a warning when it outnumbers the train rows far beyond what was validated
    (the density correction was checked at about 2x: real titles 1,499 -> 3,058, Kaggle 34,250 -> 70,000)."""
    if train_rows and test_rows > EXTRAPOLATION_WARNING * train_rows:
        log.warning("test_rows %d is %.0fx the run's %d rows: the thresholds and predicted F1 extrapolate the "
                    "density correction far beyond the ~2x it was validated at; treat them as a guess",
                    test_rows, test_rows / train_rows, train_rows)
    return test_rows


def threshold_curves(parts, names, grid) -> pd.DataFrame:
    """Mean row-F1 of each model alone against its threshold, over every part (for plots)."""
    from .stage import Stage

    n = sum(int(pool.mask(seg).sum()) for pool, seg in parts)
    frames = []
    for name in names:
        f1 = sum(pool.curve(Stage("threshold", (name,)), None, grid, seg).base["f1"] for pool, seg in parts) / n
        frames.append(pd.DataFrame({"model": name, "threshold": grid, "f1": np.round(f1, 5)}))
    return pd.concat(frames, ignore_index=True)


def size_distribution(parts, params) -> pd.DataFrame:
    """Rows per match-set size: truth (group sizes), the fitted chain before chisel, and after."""
    from dataclasses import replace

    truth, before, after = [], [], []
    for pool, seg in parts:
        mask = pool.mask(seg)
        truth.append(row_group_sizes(pool.groups)[mask])
        no_chisel = replace(params, stage=params.stage.without("chisel"))
        before.append(pool.matches(no_chisel).sizes()[mask])
        after.append(pool.matches(params).sizes()[mask] if params.stage.has("chisel") else before[-1])
    top = max(int(np.concatenate(x).max()) for x in (truth, before, after))
    count = lambda x: np.bincount(np.concatenate(x), minlength=top + 1)[1:]
    return pd.DataFrame({"size": np.arange(1, top + 1), "truth": count(truth), "before_chisel": count(before),
                         "after_chisel": count(after)})
