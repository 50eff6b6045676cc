"""Stages composed into runs a notebook or the CLI can call: baseline, matcher ablation, demo."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .baseline import predict_matches, tune_baseline
from .data.shopee import read_shopee_csv
from .data.synth import generate
from .errors import DataError, preview
from .io import atomic_path, data_hashes, new_run_dir, write_csv, write_json
from .metrics import Scores, row_group_sizes, score_submission

log = logging.getLogger(__name__)


def read_truth(path) -> pd.DataFrame:
    """posting_id + label_group from train.csv or a synthetic test_truth.csv."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: truth file missing or empty")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV ({err})") from None
    missing = {"posting_id", "label_group"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: truth needs posting_id and label_group; missing {sorted(missing)}")
    from .data.shopee import check_single_line_rows, checked_labels

    check_single_line_rows(frame, path)
    ids = frame["posting_id"].str.strip()
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise DataError(f"{path}: {len(dup)} duplicate posting_id(s) in the truth: {preview(dup)}")
    return pd.DataFrame({"posting_id": ids, "label_group": checked_labels(frame["label_group"], ids, path)})


def run_baseline(data_dir, *, method: str = "tfidf", out_root="oof", image_policy: str = "text-only") -> dict:
    """Tune `method`'s threshold on train.csv, predict test.csv, write a run folder.

    The run folder holds submission.csv and result.json (config, data hashes, scores); the
    test score is filled in when ``test_truth.csv`` (synthetic data) is present.
    """
    data_dir = Path(data_dir)
    started = time.time()
    train = read_shopee_csv(data_dir / "train.csv", image_policy=image_policy)
    test = read_shopee_csv(data_dir / "test.csv", image_policy=image_policy)
    tuned = tune_baseline(train, method)
    submission = predict_matches(test, method, tuned.threshold)
    run = new_run_dir(out_root, f"baseline-{method}")
    write_csv(run / "submission.csv", submission)
    result = {
        "stage": "baseline",
        "method": method,
        "threshold": tuned.threshold,
        "train": asdict(tuned.scores),
        "version": __version__,
        "data": data_hashes(data_dir),
        "data_dir": str(data_dir),
        "run": str(run),
    }
    truth_path = data_dir / "test_truth.csv"
    if truth_path.is_file():
        result["test"] = asdict(score_submission(read_truth(truth_path), submission))
    result["seconds"] = round(time.time() - started, 2)
    write_json(run / "result.json", result)
    return result


def demo_data(root="input/synthetic", *, seed: int = 0, preset: str = "demo") -> Path:
    """The demo Shopee data set: generated once per seed, reused afterwards (it is deterministic)."""
    folder = Path(root) / f"shopee-{preset}-seed{seed}"
    if not (folder / "test_truth.csv").is_file():
        log.info("generating synthetic Shopee %s data into %s", preset, folder)
        generate("shopee", folder, seed=seed, preset=preset, overwrite=True)
    return folder


DEMO_ENCODERS = ("tiny-image", "tiny-text")
# Folds side by side at one thread each beat one fold at a time on both threads for both encoders
# (demo preset, per fold: tiny-image 135 s two at a time; MiniLM 183 s two at a time vs 113 s alone).
DEMO_JOBS = {"tiny-image": None, "tiny-text": None}  # None: one worker per core
DEMO_UNSUPERVISED = ("tfidf", "tfidf-char", "phash")


def expected_demo_seconds(preset: str, out_root="oof") -> dict:
    """Stage -> seconds the demo should take: the last finished demo of `preset` under `out_root`
    (this machine's own speed), else DEMO_SECONDS (measured on an idle 2-core machine)."""
    import json

    for done in sorted(Path(out_root).glob(f"demo-{preset}-*/demo.json"), reverse=True):
        try:
            timing = json.loads(done.read_text(encoding="utf-8"))["timing"]
        except (OSError, ValueError, KeyError):
            continue
        return {**DEMO_SECONDS.get(preset, {}), **timing}
    return dict(DEMO_SECONDS.get(preset, {}))


# Seconds per demo stage, measured on an idle 2-core machine (`/usr/bin/time -v prodmatch demo`, README)
DEMO_SECONDS = {
    "demo": {"data": 60, "train tiny-image": 93, "train tiny-text": 120, "embed tfidf": 1, "embed tfidf-char": 2,
             "embed phash": 1, "match": 74, "stack": 28, "bundle": 1, "predict": 15, "baseline": 1, "leaderboard": 2},
    "test": {"data": 1, "train tiny-image": 46, "train tiny-text": 40, "embed tfidf": 1, "embed tfidf-char": 1,
             "embed phash": 1, "match": 2, "stack": 3, "bundle": 1, "predict": 1, "baseline": 1, "leaderboard": 1},
}


def demo(*, seed: int = 0, data_root="input/synthetic", out_root="oof", preset: str = "demo",
         encoders=DEMO_ENCODERS, progress: bool = True, jobs: int | None = None) -> dict:
    """The README's main job, every stage on CPU: synthetic data -> ArcFace encoders (OOF) + TF-IDF
    + phash -> matcher ablation -> candidate pairs + LightGBM stacker -> models folder -> predict
    the held-out test.csv -> submission.csv, scored -> leaderboard.

    `jobs`: encoder folds trained side by side (default: DEMO_JOBS per encoder on the demo preset,
    None there meaning one per core; 1 on the test preset, whose folds train in less time than a
    worker takes to start).
    """
    from .encoders.oof import embed_unsupervised, load_experiment, train_oof
    from .leaderboard import write_leaderboard
    from .metrics import read_submission
    from .predict import Timer, make_bundle, predict
    from .resources import available_cores

    def jobs_for(name: str) -> int:
        if jobs is not None:
            return int(jobs)
        if preset == "test":
            return 1
        return DEMO_JOBS.get(name) or available_cores()

    timer = Timer(expected=expected_demo_seconds(preset, out_root), report=log.info)  # also with --quiet (no bars)
    with timer.stage("data"):
        folder = demo_data(data_root, seed=seed, preset=preset)
    run = new_run_dir(out_root, f"demo-{preset}")
    encoder_f1 = {}
    for name in encoders:
        with timer.stage(f"train {name}"):
            result = train_oof(folder, load_experiment(name), out=run, progress=progress, jobs=jobs_for(name))
            encoder_f1[name] = result.get("oof_f1")
    for method in DEMO_UNSUPERVISED:
        with timer.stage(f"embed {method}"):
            embed_unsupervised(folder, method, run)
    with timer.stage("match"):
        matched = match_run(run, data_dir=folder, progress=progress)
    with timer.stage("stack"):
        stacked = stack_run(run, data_dir=folder, progress=progress)
    with timer.stage("bundle"):
        models = make_bundle(run, run / "bundle")
    with timer.stage("predict"):
        predicted = predict(folder, models, run / "submission.csv", progress=progress)
    test = score_submission(read_truth(folder / "test_truth.csv"), read_submission(run / "submission.csv"))
    with timer.stage("baseline"):
        baseline = run_baseline(folder, method="tfidf", out_root=out_root, image_policy="text-only")
    with timer.stage("leaderboard"):
        board = write_leaderboard(out_root)
    summary = {
        "stage": "demo", "data_dir": str(folder), "run": str(run), "version": __version__,
        "encoders_oof_f1": encoder_f1,
        "matcher_oof": matched["table"].iloc[-1][["stage", "f1", "precision", "recall"]].to_dict(),
        "matcher_best": matched["table"].loc[matched["table"]["f1"].idxmax(), ["stage", "models", "f1"]].to_dict(),
        "stacker_oof": asdict(stacked["scores"]), "test": asdict(test), "test_used": predicted["used"],
        "baseline_test": baseline.get("test"), "timing": timer.seconds,
        "data": data_hashes(folder),
    }
    write_json(run / "demo.json", summary)
    return {**summary, "models": str(models), "submission": str(run / "submission.csv"),
            "leaderboard": str(board["markdown"]), "timer": timer}


def format_scores(label: str, scores: dict | Scores) -> str:
    scores = Scores(**scores) if isinstance(scores, dict) else scores
    return f"{label}: {scores}"


def match_parts(rows: pd.DataFrame, models, *, titles=None, k: int = 50, backend: str = "auto",
                cv_pool: str = "fold") -> list:
    """The labelled (pool, fold) parts of an embedding run for the matcher's nested tuning.

    ``cv_pool="fold"``: one pool per fold (OOF rows of one fold come from one fold model);
    ``"all"``: one pool of every row, each fold's rows scored in it (one embedding space only).
    """
    from .post.matcher import Pool

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

    from .config import load_config, to_dict
    from .post.matcher import MatcherConfig, ablation, params_to_dict
    from .store import load_runs

    started = time.time()
    config = load_config(config if config is not None else {}, MatcherConfig)
    runs = [Path(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    out_csv, out_json = runs[0] / "ablation.csv", runs[0] / "matcher.json"
    if not overwrite and (out_csv.exists() or out_json.exists()):
        raise FileExistsError(f"{out_csv} exists; pass --overwrite to replace it")
    rows, models = load_runs(runs, names=list(config.models) or None)
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
    write_csv(out_csv, result.table)
    write_csv(runs[0] / "curves.csv", threshold_curves(parts, names, config.grid))
    write_csv(runs[0] / "sizes.csv", size_distribution(parts, result.params))
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
    write_json(out_json, info)
    return {"table": result.table, "params": result.params, "ablation": out_csv, "matcher": out_json,
            "seconds": info["seconds"], "info": info}


def matcher_at_size(parts, config, kinds, names, stage) -> tuple:
    """The chosen chain `stage` tuned for ``config.test_rows``: (params, predicted scores dict,
    size table of thresholds for other test sizes, members and NB graphs fixed)."""
    from dataclasses import replace

    from .post.matcher import fit, nested_score, score_parts, tune
    from .post.tune import SIZE_GRID

    scores, _, _, _ = nested_score(parts, stage, config)
    params = fit(parts, config, kinds, names, stage=stage)
    predicted = {"test_rows": int(config.test_rows), **asdict(scores), "t": params.t, "t_min2": params.t_min2}
    fixed = replace(params.stage, select=False)
    n_rows = sum(int(pool.mask(seg).sum()) for pool, seg in parts)
    table = []
    for size in sorted({*SIZE_GRID, int(config.test_rows)}):
        at = replace(config, test_rows=size)
        tuned = tune(parts, fixed, at, params.nb_thresholds, params.target_sizes)
        f1 = score_parts(parts, tuned, config.grid, size)["f1"] / n_rows
        table.append({"rows": size, "t": tuned.t, "t_min2": tuned.t_min2, "f1": round(f1, 4)})
    return params, predicted, table


def stack_pairs(parts, names, config, matcher_config) -> pd.DataFrame:
    """Candidate pair features of every (fold pool) part, NB graphs at thresholds tuned on other
    folds; a single pool of every row (cv_pool all) gives each pair the fold of its first row and
    no NB features (one NB threshold per fold would need the pool's features once per fold)."""
    from .pairs.candidates import pair_features
    from .post.matcher import Stage, tune

    if _one_pool(parts):
        pool = parts[0][0]
        frame = pair_features(pool, names, None, graph=config.graph_features)
        frame.insert(2, "fold", np.searchsorted(np.unique(pool.segments), pool.segments[frame["i"].to_numpy()]))
        return frame
    frames = []
    for f, (pool, _) in enumerate(parts):
        others = parts[:f] + parts[f + 1 :]
        nb = {m: tune(others, Stage("threshold", (m,)), matcher_config).t for m in names} if config.nb else None
        frame = pair_features(pool, names, nb, graph=config.graph_features)
        frame.insert(2, "fold", f)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _one_pool(parts) -> bool:
    """True when every part is a segment of one pool searched whole (cv_pool all)."""
    return len({id(pool) for pool, _ in parts}) == 1 and parts[0][1] is not None


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
        return int(given or configured)
    rows = run_test_rows(models)
    if rows is not None and rows < 256:
        log.warning("the run's test.csv has %d rows: thresholds and the predicted F1 are for that size; pass "
                    "--test-rows with the real test size (Kaggle: 70000); predict still adapts to its rows", rows)
    return rows


@dataclass
class ScoredParts:
    """The stacker's OOF probabilities as candidates per part: (candidates, groups, rows mask, pool rows)."""

    parts: list

    @classmethod
    def build(cls, parts, pairs: pd.DataFrame) -> "ScoredParts":
        from .stack.lgbm import pair_matches

        if _one_pool(parts):
            pool = parts[0][0]
            cands = pair_matches(pairs["i"], pairs["j"], pairs["prob"], pool.n)
            return cls([(cands, pool.groups, pool.mask(seg), pool.n) for pool, seg in parts])
        out = []
        for f, (pool, _) in enumerate(parts):
            p = pairs[pairs["fold"] == f]
            out.append((pair_matches(p["i"], p["j"], p["prob"], pool.n), pool.groups, None, pool.n))
        return cls(out)

    @property
    def n_rows(self) -> int:
        return sum(pool_n if mask is None else int(mask.sum()) for _, _, mask, pool_n in self.parts)

    def curves(self, grid, test_rows: int | None = None) -> list:
        """Each part's threshold curve, wrong pairs weighted for a test pool of `test_rows`."""
        from .post.tune import curve, density_weight

        return [curve(c, g, grid, mask, density_weight(pool_n, test_rows)) for c, g, mask, pool_n in self.parts]


def stack_run(runs, *, data_dir=None, titles=None, config=None, overwrite: bool = False, progress: bool = True,
              test_rows: int | None = None) -> dict:
    """Candidate pairs + LightGBM stacker on a run's OOF embeddings, scored with nested thresholds.

    Writes ``<run>/stack/``: pairs.parquet (features, label, OOF probability), model.txt (booster
    on all pairs), importance.csv/.png, stack.json (config, recall, scores, thresholds, data hash).
    Thresholds are tuned for the test size (``config.test_rows``, default the run's test.csv):
    each wrong pair counts as often as a pool of that size holds more distractors than the CV
    pool (`post.tune.density_weight`); stack.json's ``predicted`` is the nested F1 expected
    there and ``size_table`` the thresholds for other sizes (predict picks by its row count).
    """
    from dataclasses import replace

    from .config import load_config, to_dict
    from .post.matcher import MatcherConfig, Stage, tune
    from .post.tune import SIZE_GRID, best_thresholds, density_weight, nested_sums, size_table, threshold_grid
    from .stack.lgbm import StackerConfig, fit_final, fit_oof, plot_importance, save_booster
    from .pairs.candidates import candidate_recall
    from .stack.compare import compare
    from .store import load_runs

    started = time.time()
    config = load_config(config if config is not None else {}, StackerConfig)
    runs = [Path(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    out = runs[0] / "stack"
    if (out / "stack.json").exists() and not overwrite:
        raise FileExistsError(f"{out} holds a stacker run; pass --overwrite to replace it")
    rows, models = load_runs(runs, names=list(config.models) or None)
    if titles is None and data_dir is not None:
        titles = run_titles(rows, data_dir)
    names = [m.name for m in models]
    auto_fold = config.cv_pool == "auto" and config.graph == "components"  # components are tuned per fold pool
    cv_pool = "fold" if auto_fold else resolve_cv_pool(config.cv_pool, models)
    if cv_pool == "all" and config.graph == "components":
        raise DataError("stacker graph 'components' is tuned per fold pool: use cv_pool 'fold' with it")
    test_rows = tuned_test_rows(test_rows, config.test_rows, models)
    config = replace(config, cv_pool=cv_pool, test_rows=test_rows)
    parts = match_parts(rows, models, titles=titles, k=config.k, cv_pool=cv_pool)
    pairs = stack_pairs(parts, names, config, MatcherConfig(k=config.k))
    recall = [candidate_recall(pairs[pairs["fold"] == f], pool.groups[pool.mask(seg)] if seg is not None else pool.groups)
              for f, (pool, seg) in enumerate(parts)]
    oof = fit_oof(pairs, config, progress=progress)
    pairs["prob"] = oof.prob.astype(np.float32)

    grid = threshold_grid()
    scored = ScoredParts.build(parts, pairs)
    n_rows = scored.n_rows

    def nested(test_size):
        curves = scored.curves(grid, test_size)
        sums, chosen = nested_sums(curves, min2=config.min2)
        chosen = [(float(grid[a]), None if b is None else float(grid[b])) for a, b in chosen]
        ti, t2i = best_thresholds(curves, min2=config.min2)
        return sums, chosen, (float(grid[ti]), None if t2i is None else float(grid[t2i]))

    sums, chosen, (threshold, t_min2) = nested(None)  # the CV pools' own density: the OOF F1
    predicted = nested(test_rows) if test_rows else None
    if config.graph == "components":  # the graph step changes sets after thresholding: tune it in the loop
        cands = [c for c, _, _, _ in scored.parts]
        groups = [g for _, g, _, _ in scored.parts]
        sums, chosen, (threshold, t_min2) = graph_nested(cands, groups, config, chosen)
        if test_rows:
            weights = [density_weight(n, test_rows) for _, _, _, n in scored.parts]
            predicted = graph_nested(cands, groups, config, predicted[1], weights)
    scores = Scores(sums["f1"] / n_rows, sums["precision"] / n_rows, sums["recall"] / n_rows)
    nb_all = {m: tune(parts, Stage("threshold", (m,)), MatcherConfig(k=config.k)).t for m in names} \
        if config.nb and cv_pool == "fold" else {}
    table = size_table(lambda size: scored.curves(grid, size), n_rows, min2=config.min2,
                       sizes=SIZE_GRID + ((test_rows,) if test_rows else ())) if config.graph == "none" else []
    if predicted:
        p_sums, _, (threshold, t_min2) = predicted  # predict's default: tuned for the run's test size
        predicted = {"test_rows": int(test_rows), "f1": p_sums["f1"] / n_rows,
                     "precision": p_sums["precision"] / n_rows, "recall": p_sums["recall"] / n_rows,
                     "threshold": threshold, "t_min2": t_min2}

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "pairs.parquet") as tmp:
        pairs.assign(posting_id_i=rows["posting_id"].to_numpy()[_global(parts, rows, pairs, "i")],
                     posting_id_j=rows["posting_id"].to_numpy()[_global(parts, rows, pairs, "j")]).to_parquet(tmp, index=False)
    booster = fit_final(pairs.drop(columns=["prob"]), config, int(np.mean(oof.best_iterations)))
    save_booster(booster, out / "model.txt")
    write_csv(out / "importance.csv", oof.importance)
    pools = [parts[0][0]] if _one_pool(parts) else [pool for pool, _ in parts]
    comparison = compare(pairs, [f"{m}_sim" for m in names], pools)
    write_csv(out / "compare.csv", comparison)
    plot_importance(oof.importance, out / "importance.png")
    info = {
        "stage": "stack",
        "config": to_dict(config),
        "models": names,
        "pairs": len(pairs),
        "positives": int(pairs["label"].sum()),
        "candidate_recall": [round(r, 4) for r in recall],
        "oof": asdict(scores),
        "predicted": predicted,
        "nested_thresholds": [{"t": a, "t_min2": b} for a, b in chosen],
        "threshold": threshold,
        "t_min2": t_min2,
        "size_table": table,
        "nb_thresholds": nb_all,
        "features": list(booster.feature_name()),
        "best_iterations": oof.best_iterations,
        "runs": [str(r) for r in runs],
        "data": data_hashes(data_dir, ("train.csv",)) if data_dir is not None else {},
        "version": __version__,
        "seconds": round(time.time() - started, 2),
    }
    write_json(out / "stack.json", info)
    return {"scores": scores, "predicted": predicted, "recall": recall, "importance": oof.importance,
            "compare": comparison, "out": out, "info": info}


def graph_nested(cands, groups, config, start, weights=None) -> tuple[dict, list, tuple]:
    """Nested tuning of the stacker threshold with the components step in the loop (coarse grid
    around each fold's curve-tuned t); returns metric sums, per-fold (t, t_min2) and all-fold ones.
    `weights`: per part, how often a wrong match counts (`post.tune.density_weight`)."""
    from .stack.lgbm import group_matches

    grid = np.round(np.arange(0.1, 0.99, 0.02), 2)
    weights = weights or [1.0] * len(cands)

    def f1_sum(i, t, t2):
        return group_matches(cands[i], t, t2, config).per_row_scores(groups[i], weights[i])

    def best_on(idx):
        t2 = start[idx[0]][1] if idx else None
        best, best_f1 = None, -1.0
        for t in grid:
            t2t = None if t2 is None else min(t2, float(t))
            f1 = sum(f1_sum(i, float(t), t2t)[0].sum() for i in idx)
            if f1 > best_f1 + 1e-12:
                best, best_f1 = (float(t), t2t), f1
        return best

    folds = list(range(len(cands)))
    chosen, totals = [], {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    for f in folds:
        t, t2 = best_on([g for g in folds if g != f])
        chosen.append((t, t2))
        for m, v in zip(("f1", "precision", "recall"), f1_sum(f, t, t2)):
            totals[m] += float(v.sum())
    return totals, chosen, best_on(folds)


def threshold_curves(parts, names, grid) -> pd.DataFrame:
    """Mean row-F1 of each model alone against its threshold, over every part (for plots)."""
    from .post.matcher import Stage

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
        no_chisel = replace(params, stage=replace(params.stage, chisel=False))
        before.append(pool.matches(no_chisel).sizes()[mask])
        after.append(pool.matches(params).sizes()[mask] if params.stage.chisel else before[-1])
    top = max(int(np.concatenate(x).max()) for x in (truth, before, after))
    count = lambda x: np.bincount(np.concatenate(x), minlength=top + 1)[1:]
    return pd.DataFrame({"size": np.arange(1, top + 1), "truth": count(truth), "before_chisel": count(before),
                         "after_chisel": count(after)})


def _global(parts, rows, pairs, column) -> np.ndarray:
    """Run-row positions of a pool-local index column (pools are the folds in row order, or one
    pool of every row)."""
    if _one_pool(parts):
        return pairs[column].to_numpy(np.int64)
    folds = rows["fold"].to_numpy()
    positions = {f: np.flatnonzero(folds == fold) for f, fold in enumerate(np.unique(folds))}
    out = np.empty(len(pairs), np.int64)
    for f, at in positions.items():
        sel = (pairs["fold"] == f).to_numpy()
        out[sel] = at[pairs[column].to_numpy()[sel]]
    return out
