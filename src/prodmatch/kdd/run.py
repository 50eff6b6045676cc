"""The KDD stage: a KDD folder -> every level-1 method scores the valid and test candidates, level-2
methods combine those scores (fitted on valid, out-of-fold there) -> compare.csv (NDCG@5 on valid, and
on a test split whose answers are present), the best valid method's submission.csv per test split,
scores.parquet and run.json. Protocol: kdd/README.md."""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import pandas as pd

from ..config import load_config, read_yaml, shipped_configs, to_dict
from ..errors import DataError
from ..io import atomic_dir, check_out, code_version, write_csv, write_json
from ..summary import ndcg_entry, write_summary
from .config import KddRunConfig
from .data import LABELS_FILE, Candidates, feature_dim_of, kdd_hashes, locate, read_answers, read_candidates, read_labels
from .methods import KddContext, build_methods
from .report import compare_rows, score_table, write_scores, write_submission
from .stacked import stack_table

log = logging.getLogger(__name__)


def kdd_run(data_dir, config, out, *, overwrite: bool = False) -> dict:
    """Score every configured method on `data_dir`'s valid (+ test) candidates and write ``out/``
    atomically; the method with the best valid NDCG@5 (ties: config order) writes the submissions.
    Returns a summary (``chosen``, ``valid`` NDCG@5 per method, ``test`` per scored test split, paths)."""
    started = time.time()
    config = load_config(config, KddRunConfig)
    out = Path(out)
    check_out(out, overwrite)
    if not Path(data_dir).is_dir():
        raise DataError(f"{data_dir}: not a folder (the KDD folder holds multimodal_labels.txt, valid.tsv, "
                        "valid_answer.json)")
    valid_path = required(data_dir, "valid.tsv")
    config = dataclasses.replace(config, feature_dim=_feature_dim(config, valid_path))
    methods = build_methods(config)
    needs = tuple(sorted({n for m in methods for n in m.needs}))
    read = {"chunk_rows": config.chunk_rows, "feature_dim": config.feature_dim, "decode": needs}
    labels_path = required(data_dir, LABELS_FILE)
    context = KddContext(str(data_dir), tuple(read_labels(labels_path)))
    answers_path = required(data_dir, "valid_answer.json")
    answers = read_answers(answers_path)
    splits = {"valid": (read_candidates(valid_path, answers, answers_path, **read), answers)}
    splits.update(read_test_splits(data_dir, config.test_splits, read))
    level1, stacked = [m for m in methods if m.level == 1], [m for m in methods if m.level == 2]
    facts = {m.spec.name: m.fit(context) for m in level1}
    scores = {split: {m.spec.name: m.score(split, cands, context) for m in level1} for split, (cands, _) in splits.items()}
    for m in stacked:  # fitted on valid's level-1 scores: valid out-of-fold
        tables = {split: stack_table(cands, scores[split], m.inputs, m.extras, truth if split == "valid" else None)
                  for split, (cands, truth) in splits.items()}
        scores["valid"][m.spec.name], facts[m.spec.name] = m.fit_scores(tables["valid"])
        for split in splits:
            if split != "valid":
                scores[split][m.spec.name] = m.predict(tables[split])
    order = [m.spec.name for m in methods]  # config order: compare.csv rows, scores columns, ties
    scores = {split: {name: s[name] for name in order} for split, s in scores.items()}
    kinds = {m.spec.name: m.valid_kind for m in methods}
    valid_rows = compare_rows("valid", splits["valid"][0], scores["valid"], answers, None, kinds)
    chosen = _choose(valid_rows)
    with atomic_dir(out, replace=overwrite) as tmp:
        summary = {"chosen": chosen, "valid": {}, "test": {}, "submissions": {}}
        rows = compare_rows("valid", splits["valid"][0], scores["valid"], answers, chosen, kinds)
        tests = {split: part for split, part in splits.items() if split != "valid"}
        rows += write_test_splits(tmp, out, tests, scores, chosen, summary)
        table = pd.DataFrame(rows)
        write_csv(tmp / "compare.csv", table)
        for m in methods:  # trained level-1 models, the final level-2 ones (fitted on all of valid): kdd.rescore
            saved = m.save(tmp / "models" / m.spec.name)
            if saved:
                facts[m.spec.name]["saved"] = [f"models/{m.spec.name}/{name}" for name in saved]
        write_scores(tmp / "scores.parquet", [score_table(s, c, scores[s]) for s, (c, _) in splits.items()])
        summary["valid"] = dict(zip(table.loc[table["split"] == "valid", "method"], table.loc[table["split"] == "valid", "NDCG@5"]))
        files = [LABELS_FILE, "valid.tsv", "valid_answer.json"] + [f"{s}{ext}" for s in splits if s != "valid"
                                                                   for ext in (".tsv", "_answer.json")]
        record = {
            "stage": "kdd", "config": to_dict(config), "data_dir": str(data_dir), "data": kdd_hashes(data_dir, files),
            "code_version": code_version(), "chosen": chosen, "valid_ndcg5": summary["valid"],
            "valid_score_kind": kinds,
            "test_ndcg5": summary["test"], "methods": facts, "decoded": list(needs),
            "splits": {s: _split_facts(c, t) for s, (c, t) in splits.items()}, "seconds": round(time.time() - started, 2)}
        write_json(tmp / "run.json", record)
        write_summary(tmp, task="kdd", stage="kdd", entries=summary_entries(record))
    summary.update(out=out, compare=out / "compare.csv", scores=out / "scores.parquet", run=out / "run.json", table=table)
    log.info("kdd: chosen %s (valid NDCG@5 %.4f)", chosen, summary["valid"][chosen])
    return summary


def summary_entries(record: dict) -> list[dict]:
    """The run's summary entry: the chosen method's valid NDCG@5 (held-out, or out-of-fold for a
    level-2 method) and its test NDCG@5 where the test answers were known (synthetic testA / testB)."""
    chosen, valid = record["chosen"], record["valid_ndcg5"]
    if chosen not in valid:
        return []
    how = {"oof": "out-of-fold", "in_sample": "in-sample"}.get((record.get("valid_score_kind") or {}).get(chosen), "held-out")
    tests = record.get("test_ndcg5") or {}
    return [ndcg_entry("kdd", f"KDD recall: {chosen} (valid NDCG@5 {how}; of {', '.join(valid)})", record,
                       valid[chosen], next(iter(tests.values()), None),
                       " ".join(f"{split} {float(v):.4f}" for split, v in tests.items()))]


def write_test_splits(tmp: Path, out: Path, splits: dict, scores: dict, chosen: str, summary: dict) -> list[dict]:
    """Each test split's submission.csv from the `chosen` method (in `tmp`, published as `out`), its
    NDCG@5 into ``summary["test"]`` where its answers are known; returns their compare.csv rows."""
    rows = []
    for split, (cands, truth) in splits.items():
        if truth is not None:
            rows += compare_rows(split, cands, scores[split], truth, chosen)
        rescored = write_submission(tmp / split / "submission.csv", cands, scores[split][chosen], truth)
        summary["submissions"][split] = out / split / "submission.csv"
        if rescored is not None:
            summary["test"][split] = rescored
    return rows


def read_test_splits(data_dir, names, read: dict) -> dict:
    """split -> (candidates, answers or None) of every test split in `names` that `data_dir` holds."""
    splits = {}
    for name in names:
        path = locate(data_dir, f"{name}.tsv")
        if path is not None:
            truth_path = locate(data_dir, f"{name}_answer.json")
            truth = read_answers(truth_path) if truth_path else None
            splits[name] = (read_candidates(path, truth, truth_path, **read), truth)
    return splits


def _choose(valid_rows: list[dict]) -> str:
    """The best valid NDCG@5 (ties: config order) among the honest rows (held-out or out-of-fold); an
    in-sample score only competes when no other exists."""
    honest = [r for r in valid_rows if r["score_kind"] != "in_sample"] or valid_rows
    return max(honest, key=lambda r: r["NDCG@5"])["method"]  # max keeps the first of equals


def _feature_dim(config: KddRunConfig, valid_path: Path) -> int:
    """The box feature dimension: valid.tsv's own (the config may leave it out); a config stating another
    one is refused up front, naming the shipped configs made for the data's dimension."""
    found = feature_dim_of(valid_path, chunk_rows=min(config.chunk_rows, 256))
    if config.feature_dim is None:
        if found is None:
            raise DataError(f"{valid_path}: no row has boxes to read the feature dimension from; state feature_dim "
                            f"in the config")
        return found
    if found is not None and found != config.feature_dim:
        fits = [name for name in shipped_configs() if name.startswith("kdd")
                and read_yaml(name).get("feature_dim") == found]
        hint = (f"the shipped config {' / '.join(fits)} is made for {found}-d features (--config {fits[0]})" if fits
                else f"no shipped config is: state feature_dim: {found} in yours, or leave it out to read it from the data")
        raise DataError(f"{valid_path}: box features are {found}-d but config {config.name!r} states feature_dim: "
                        f"{config.feature_dim}; {hint}")
    return config.feature_dim


def required(data_dir, name: str) -> Path:
    path = locate(data_dir, name)
    if path is None:
        raise DataError(f"{data_dir}: no {name} (looked in the folder and its split sub-folder)")
    return path


def _split_facts(cands: Candidates, truth) -> dict:
    """Rows, queries, boxes, and answers that are not among their query's candidates (unrankable)."""
    facts = {"rows": len(cands.codes), "queries": len(cands.query_ids), "boxes": int(cands.data.offsets[-1])}
    if truth is not None:
        listed = set(zip(cands.query_ids[cands.codes].tolist(), cands.product_ids.tolist()))
        facts["answers"] = sum(len(v) for v in truth.values())
        facts["answers_not_in_candidates"] = sum((q, p) not in listed for q, ps in truth.items() for p in ps)
    return facts
