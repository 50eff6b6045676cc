"""The `stack` stage: candidate pairs of every model -> LightGBM stacker (nested OOF) -> stack/ folder
(model.txt, pairs, importance, compare.csv, stack.json with thresholds for the test size)."""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import DataError
from ..io import atomic_dir, check_out_path, data_hashes, write_csv, write_json
from ..summary import f1_entry, write_summary
from ..metrics import Scores
from ..post.run import match_parts, resolve_cv_pool, run_titles, tuned_test_rows

log = logging.getLogger(__name__)


def stack_pairs(parts, names, config, matcher_config) -> pd.DataFrame:
    """Candidate pair features of every (fold pool) part, NB graphs at thresholds tuned on other
    folds; a single pool of every row (cv_pool all) gives each pair the fold of its first row and
    no NB features (one NB threshold per fold would need the pool's features once per fold)."""
    from .candidates import pair_features
    from ..post.matcher import tune
    from ..post.steps import STEPS

    if _one_pool(parts):
        pool = parts[0][0]
        frame = pair_features(pool, names, None, graph=config.graph_features)
        frame.insert(2, "fold", np.searchsorted(np.unique(pool.segments), pool.segments[frame["i"].to_numpy()]))
        return frame
    frames = []
    for f, (pool, _) in enumerate(parts):
        others = parts[:f] + parts[f + 1 :]
        nb = STEPS["nb"].graph_thresholds(others, names, matcher_config, tune) if STEPS["nb"].enabled(config) else None
        frame = pair_features(pool, names, nb, graph=config.graph_features)
        frame.insert(2, "fold", f)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def add_pair_members(pairs, parts, rows, names, titles, config, out: Path, progress: bool) -> dict:
    """Each pair member's out-of-fold probability as a candidate-table column (`stack.pair_members`);
    returns each one's facts (pairs scored, seconds, throughput) for stack.json."""
    from .pair_members import FOLDER, oof_scores

    facts = {}
    if not config.pair_members:
        return facts
    i, j = _global(parts, rows, pairs, "i"), _global(parts, rows, pairs, "j")
    out.parent.mkdir(parents=True, exist_ok=True)
    for member in config.pair_members:
        with tempfile.TemporaryDirectory(prefix=f".{out.name}-{member.name}-oof-", dir=out.parent) as work:
            pairs[member.column], facts[member.name] = oof_scores(member, pairs, names, titles, i, j, Path(work),
                                                                  progress=progress)
    return facts


def fit_final_pair_members(pairs, parts, rows, names, titles, config, out: Path, progress: bool) -> None:
    """Each pair member trained on every selected pair, saved as ``<stack>/pairs/<name>/`` for predict."""
    from .pair_members import FOLDER, fit_final

    folder = out / FOLDER
    if not config.pair_members:
        return
    i, j = _global(parts, rows, pairs, "i"), _global(parts, rows, pairs, "j")
    for member in config.pair_members:
        fit_final(member, pairs, names, titles, i, j, folder / member.name, progress=progress)


def _one_pool(parts) -> bool:
    """True when every part is a segment of one pool searched whole (cv_pool all)."""
    return len({id(pool) for pool, _ in parts}) == 1 and parts[0][1] is not None


@dataclass
class ScoredParts:
    """The stacker's OOF probabilities as candidates per part: (candidates, groups, rows mask, pool rows)."""

    parts: list

    @classmethod
    def build(cls, parts, pairs: pd.DataFrame) -> "ScoredParts":
        from .lgbm import pair_matches

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
        from ..post.tune import curve, density_weight

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

    from ..config import load_config, to_dict
    from ..post.matcher import MatcherConfig, tune
    from ..post.steps import STEPS, chain, changes_sets
    from ..post.tune import SIZE_GRID, best_thresholds, density_weight, nested_sums, size_table, threshold_grid
    from ..extras import optional
    from .lgbm import StackerConfig, fit_final, fit_oof, plot_importance, save_booster
    from .candidates import candidate_recall
    from .compare import compare
    from ..store import check_built_on, load_runs

    started = time.time()
    config = load_config(config if config is not None else {}, StackerConfig)
    runs = [Path(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    out = runs[0] / "stack"
    check_out_path(out, folder=True, overwrite=overwrite)  # published whole at the end, never half-written
    rows, models = load_runs(runs, names=list(config.models) or None)
    if data_dir is not None:
        check_built_on(models, data_dir)
    if titles is None and data_dir is not None:
        titles = run_titles(rows, data_dir)
    names = [m.name for m in models]
    auto_fold = config.cv_pool == "auto" and config.graph == "components"  # components are tuned per fold pool
    cv_pool = "fold" if auto_fold else resolve_cv_pool(config.cv_pool, models)
    if cv_pool == "all" and config.graph == "components":
        raise DataError("stacker graph 'components' is tuned per fold pool: use cv_pool 'fold' with it")
    test_rows = tuned_test_rows(test_rows, config.test_rows, models)
    config = replace(config, cv_pool=cv_pool, test_rows=test_rows)
    for member in config.pair_members:
        member.check()
    if config.pair_members and titles is None:
        raise DataError("the stacker's pair members read titles: give --data (the folder with train.csv)")
    parts = match_parts(rows, models, titles=titles, k=config.k, backend=config.backend, cv_pool=cv_pool)
    pairs = stack_pairs(parts, names, config, MatcherConfig(k=config.k))
    pair_facts = add_pair_members(pairs, parts, rows, names, titles, config, out, progress)
    recall = [candidate_recall(pairs[pairs["fold"] == f], pool.groups[pool.mask(seg)] if seg is not None else pool.groups)
              for f, (pool, seg) in enumerate(parts)]
    oof = fit_oof(pairs, config, progress=progress)
    pairs["prob"] = oof.prob.astype(np.float32)

    grid = threshold_grid()
    steps = chain(config, names, target="stacker")  # the stacker's post steps: Min2, the graph step
    min2 = STEPS["min2"] in steps
    scored = ScoredParts.build(parts, pairs)
    n_rows = scored.n_rows

    def nested(test_size):
        curves = scored.curves(grid, test_size)
        sums, chosen = nested_sums(curves, min2=min2)
        chosen = [(float(grid[a]), None if b is None else float(grid[b])) for a, b in chosen]
        t_index, t_min2_index = best_thresholds(curves, min2=min2)
        return sums, chosen, (float(grid[t_index]), None if t_min2_index is None else float(grid[t_min2_index]))

    sums, chosen, (threshold, t_min2) = nested(None)  # the CV pools' own density: the OOF F1
    predicted = nested(test_rows) if test_rows else None
    if changes_sets(steps):  # the graph step changes sets after thresholding: tune it in the loop
        cands = [c for c, _, _, _ in scored.parts]
        groups = [g for _, g, _, _ in scored.parts]
        sums, chosen, (threshold, t_min2) = graph_nested(cands, groups, config, chosen)
        if test_rows:
            weights = [density_weight(n, test_rows) for _, _, _, n in scored.parts]
            predicted = graph_nested(cands, groups, config, predicted[1], weights)
    scores = Scores(sums["f1"] / n_rows, sums["precision"] / n_rows, sums["recall"] / n_rows)
    # NB graph thresholds on every fold for predict (the match stage's own differ: its k, grid and
    # test size; see stack/README.md)
    nb_all = STEPS["nb"].graph_thresholds(parts, names, MatcherConfig(k=config.k), tune) \
        if STEPS["nb"] in steps and cv_pool == "fold" else {}
    table = size_table(lambda size: scored.curves(grid, size), n_rows, min2=min2,
                       sizes=SIZE_GRID + ((test_rows,) if test_rows else ())) if not changes_sets(steps) else []
    if predicted:
        p_sums, _, (threshold, t_min2) = predicted  # predict's default: tuned for the run's test size
        predicted = {"test_rows": int(test_rows), "f1": p_sums["f1"] / n_rows,
                     "precision": p_sums["precision"] / n_rows, "recall": p_sums["recall"] / n_rows,
                     "threshold": threshold, "t_min2": t_min2}

    booster = fit_final(pairs.drop(columns=["prob"]), config, int(np.mean(oof.best_iterations)))
    pools = [parts[0][0]] if _one_pool(parts) else [pool for pool, _ in parts]
    comparison = compare(pairs, [f"{m}_sim" for m in names], pools)
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
        "pair_members": pair_facts,
        "runs": [str(r) for r in runs],
        "data": data_hashes(data_dir, ("train.csv",)) if data_dir is not None else {},
        "version": __version__,
        "seconds": round(time.time() - started, 2),
    }
    # the whole folder is published at once: a racing stacker cannot mix its model.txt with another's stack.json
    with atomic_dir(out, replace=overwrite) as tmp:
        pairs.assign(posting_id_i=rows["posting_id"].to_numpy()[_global(parts, rows, pairs, "i")],
                     posting_id_j=rows["posting_id"].to_numpy()[_global(parts, rows, pairs, "j")]
                     ).to_parquet(tmp / "pairs.parquet", index=False)
        save_booster(booster, tmp / "model.txt")
        fit_final_pair_members(pairs, parts, rows, names, titles, config, tmp, progress)
        write_csv(tmp / "importance.csv", oof.importance)
        write_csv(tmp / "compare.csv", comparison)
        if optional("matplotlib", "stack/importance.png") is not None:
            plot_importance(oof.importance, tmp / "importance.png")
        write_json(tmp / "stack.json", info)
        write_summary(tmp, task="shopee", stage="stack", entries=[summary_entry(info)])
    return {"scores": scores, "predicted": predicted, "recall": recall, "importance": oof.importance,
            "compare": comparison, "out": out, "info": info}


def summary_entry(info: dict) -> dict:
    """The stacker's summary entry: OOF F1 with thresholds tuned on other folds, and its prediction
    for the test size."""
    what = f"LightGBM on {info.get('pairs')} pairs of {'+'.join(info.get('models', []))}"
    return f1_entry("stacker", what, info, info.get("oof", {}), predicted=info.get("predicted"))


def graph_nested(cands, groups, config, start, weights=None) -> tuple[dict, list, tuple]:
    """Nested tuning of the stacker threshold with the components step in the loop (coarse grid
    around each fold's curve-tuned t); returns metric sums, per-fold (t, t_min2) and all-fold ones.
    `weights`: per part, how often a wrong match counts (`post.tune.density_weight`)."""
    from .lgbm import group_matches

    grid = np.round(np.arange(0.1, 0.99, 0.02), 2)
    weights = weights or [1.0] * len(cands)

    def f1_sum(i, t, t2):
        return group_matches(cands[i], t, t2, config).per_row_scores(groups[i], weights[i])

    def best_on(idx):
        start_min2 = start[idx[0]][1] if idx else None
        best, best_f1 = None, -1.0
        for t in grid:
            t_min2 = None if start_min2 is None else min(start_min2, float(t))
            f1 = sum(f1_sum(i, float(t), t_min2)[0].sum() for i in idx)
            if f1 > best_f1 + 1e-12:
                best, best_f1 = (float(t), t_min2), f1
        return best

    folds = list(range(len(cands)))
    chosen, totals = [], {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    for f in folds:
        t, t2 = best_on([g for g in folds if g != f])
        chosen.append((t, t2))
        for m, v in zip(("f1", "precision", "recall"), f1_sum(f, t, t2)):
            totals[m] += float(v.sum())
    return totals, chosen, best_on(folds)


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
