"""Offline inference: test.csv (+ images) and one models folder (`make_bundle`) -> submission.csv, from
local files only so it runs in a Kaggle kernel without internet; folder layout: prodmatch/README.md."""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .errors import DataError
from .io import atomic_dir, check_out_path, file_sha256, read_json_object, write_csv, write_json
from .saved_model import WEIGHTS_FILE

log = logging.getLogger(__name__)

BUNDLE_FILE = "bundle.json"


def offline() -> None:
    """No hub access from here on (must run before transformers / huggingface_hub import)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"


@dataclass
class Timer:
    """Wall time per named stage, printed as a summary at the end of a run.

    With `expected` (stage -> seconds, e.g. a measured earlier run) each stage announces itself
    on `report` in one line: its place, its expected time, the time so far and the expected total.
    """

    seconds: dict = field(default_factory=dict)
    expected: dict | None = None
    report: object = None  # callable taking one line, e.g. logging.info; None: silent

    @contextmanager
    def stage(self, name: str):
        if self.expected is not None and self.report is not None:
            self.report(self._progress_line(name))
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 2)

    def _progress_line(self, name: str) -> str:
        names = list(self.expected)
        place = f"[{names.index(name) + 1}/{len(names)}]" if name in names else "[+]"
        done = sum(self.seconds.values())
        left = sum(v for k, v in self.expected.items() if k not in self.seconds)
        this = self.expected.get(name)
        return (f"{place} {name}: expected {_clock(this) if this is not None else '?'}; "
                f"elapsed {_clock(done)}, expected total {_clock(done + left)}")

    def summary(self) -> str:
        total = sum(self.seconds.values())
        width = max(map(len, self.seconds), default=5)
        lines = [f"  {k:<{width}}  {v:8.2f} s" for k, v in self.seconds.items()]
        return "\n".join(["timing:", *lines, f"  {'total':<{width}}  {total:8.2f} s"])


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


# ---------------------------------------------------------------- bundle (training side)
def make_bundle(runs, out, *, overwrite: bool = False, use: str = "auto") -> Path:
    """Collect what predict needs from training run(s) into one models folder.

    Needs the run's matcher.json (`prodmatch match`); takes stack/ when present and its OOF F1
    beats the matcher's (both nested; `use` forces one); copies each trained model's fold encoders
    (``<run>/folds/<name>/<k>/final|best``).
    """
    runs = [Path(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    out = Path(out)
    check_out_path(out, folder=True, overwrite=overwrite)
    matcher_path = runs[0] / "matcher.json"
    if not matcher_path.is_file():
        raise DataError(f"{runs[0]}: no matcher.json; run `prodmatch match --run {runs[0]}` first")
    matcher = read_json_object(matcher_path, "the matcher")
    if use not in ("auto", "stacker", "matcher"):
        raise DataError(f"use must be auto, stacker or matcher, got {use!r}")
    stack_json = runs[0] / "stack" / "stack.json"
    info = read_json_object(stack_json, "the stacker") if stack_json.is_file() else None
    if use == "stacker" and info is None:
        raise DataError(f"{runs[0]}: no stack/stack.json; run `prodmatch stack --run {runs[0]}` first")
    info = _chosen_stacker(info, matcher, use)
    used = set(matcher["params"]["stage"]["models"]) | set((info or {}).get("models", []))
    with atomic_dir(out, replace=overwrite) as staging:  # nothing half-written is ever left behind
        _stage_bundle(runs, staging, matcher, info, used)
    return out


def _chosen_stacker(info: dict | None, matcher: dict, use: str) -> dict | None:
    """The stack.json that predict will use, or None for the matcher. `use` auto decides by the F1
    both predict at the same test size, else by their OOF F1."""
    if info is None or use == "matcher":
        return None
    if use == "auto":
        what, stacker_f1, matcher_f1 = _comparable_f1(info, matcher)
        if matcher_f1 is not None and stacker_f1 <= matcher_f1:
            log.info("stacker %s F1 %.4f <= matcher %.4f: predict will use the matcher", what, stacker_f1, matcher_f1)
            return None
    return info


def _comparable_f1(stack: dict, matcher: dict) -> tuple[str, float, float | None]:
    """("predicted at N rows" | "OOF", stacker F1, matcher F1) on the same footing."""
    sp, mp = stack.get("predicted"), matcher.get("predicted")
    if sp and mp and sp["test_rows"] == mp["test_rows"]:
        return f"predicted at {sp['test_rows']:,} rows", sp["f1"], mp["f1"]
    return "OOF", stack["oof"]["f1"], matcher.get("oof_f1")


def _stage_bundle(runs: list[Path], staging: Path, matcher: dict, info: dict | None, used: set) -> dict:
    """Copy the used models (and the stacker) into `staging` and write its bundle.json."""
    from .store import list_models, load_embeddings

    models = {}
    for run in runs:
        for name in list_models(run):
            if name in used:
                models[name] = _bundle_model(run, name, load_embeddings(run, name).meta, staging)
    missing = sorted(used - set(models))
    if missing:
        raise DataError(f"the matcher/stacker use models {missing} that the runs do not hold")
    stacker = None
    if info:
        (staging / "stacker").mkdir()
        shutil.copy2(runs[0] / "stack" / "model.txt", staging / "stacker" / "model.txt")
        members = _bundle_pair_members(runs[0] / "stack", staging, info)
        stacker = {"model": "stacker/model.txt", "threshold": info["threshold"], "t_min2": info["t_min2"],
                   "config": info["config"],
                   "k": info["config"]["k"], "models": info["models"], "nb_thresholds": info.get("nb_thresholds", {}),
                   "features": info.get("features"), "oof": info["oof"], "predicted": info.get("predicted"),
                   "size_table": info.get("size_table", []), "pair_members": members}
    bundle = {"version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": [str(r) for r in runs],
              "models": models, "matcher": matcher["params"], "matcher_k": matcher["config"]["k"],
              "matcher_predicted": matcher.get("predicted"), "matcher_size_table": matcher.get("size_table", []),
              "stacker": stacker}
    write_json(staging / BUNDLE_FILE, bundle)
    return bundle


def _bundle_pair_members(stack: Path, staging: Path, info: dict) -> list[dict]:
    """Copy the stacker's pair models (`stack.pair_members`) and say where they are and what they score."""
    from .stack.pair_members import FOLDER

    members = []
    for member in info["config"].get("pair_members", []):
        source = stack / FOLDER / member["name"]
        if not (source / WEIGHTS_FILE).is_file():
            raise DataError(f"{source}: the stacker's pair member {member['name']!r} is missing; rerun `prodmatch stack`")
        folder = f"stacker/{FOLDER}/{member['name']}"
        shutil.copytree(source, staging / folder)
        members.append({"name": member["name"], "top": member["top"], "column": f"pair_{member['name']}",
                        "folder": folder, "weights_sha256": file_sha256(staging / folder / WEIGHTS_FILE)})
    return members


def _bundle_model(run: Path, name: str, meta: dict, staging: Path) -> dict:
    cfg = meta.get("config", {})
    kind = meta["kind"]
    if meta.get("unsupervised") or kind in ("sparse", "phash"):
        from .embedders import embedder_names, get_embedder

        source = cfg.get("method", "phash" if kind == "phash" else "tfidf")
        if source not in embedder_names(trained=False):
            raise DataError(f"model {name!r}: cannot rebuild unsupervised method {source!r} at test time")
        return get_embedder(source).bundle_spec()
    fold_root = run / "folds" / name
    folders = sorted(p for p in fold_root.iterdir() if p.name.isdigit()) if fold_root.is_dir() else []
    if not folders:
        raise DataError(f"model {name!r}: no fold encoders under {fold_root}")
    copied = []
    for fold in folders:
        src = next((c for c in (fold / "final", fold / "best", fold) if (c / "encoder.json").is_file()), None)
        if src is None:
            raise DataError(f"{fold}: no encoder folder (encoder.json)")
        dst = staging / "encoders" / name / fold.name
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.tmp", "checkpoint*"))
        copied.append(str(dst.relative_to(staging)))
    from .embedders.encoder import FoldEncoders

    spec = FoldEncoders(copied, cfg.get("kind", meta.get("encoder_kind"))).bundle_spec()
    # what the thresholds and the stacker were fitted on: predict refuses other encoders
    spec["weights_sha256"] = {folder: file_sha256(staging / folder / WEIGHTS_FILE) for folder in copied}
    spec["dim"] = int(meta["shape"][1]) if meta.get("shape") else None
    return spec


# ---------------------------------------------------------------- predict (kernel side)
def read_bundle(models_dir) -> dict:
    """bundle.json with every file it names checked, before any heavy work."""
    models_dir = Path(models_dir)
    path = models_dir / BUNDLE_FILE
    if not path.is_file():
        raise DataError(f"{models_dir}: no {BUNDLE_FILE} (build the folder with `prodmatch bundle`)")
    bundle = read_json_object(path, "the bundle")
    missing = [key for key in ("models", "matcher", "matcher_k") if key not in bundle]
    if missing or not isinstance(bundle.get("models"), dict):
        raise DataError(f"{path}: not a bundle.json written by `prodmatch bundle` (missing {missing or ['models']})")
    problems = []
    used = set(bundle["matcher"].get("stage", {}).get("models", [])) | set((bundle.get("stacker") or {}).get("models", []))
    if used - set(bundle["models"]):
        problems.append(f"the matcher/stacker use model(s) {sorted(used - set(bundle['models']))} the bundle lacks")
    from .embedders import embedder_names

    for name, spec in bundle["models"].items():
        if spec.get("source") not in embedder_names():
            problems.append(f"model {name}: unknown source {spec.get('source')!r}")
        for folder in spec.get("folders", []):
            for needed in ("encoder.json", "model.safetensors"):
                if not (models_dir / folder / needed).is_file():
                    problems.append(f"{folder}/{needed} missing")
        if spec.get("source") == "encoder" and not spec.get("folders"):
            problems.append(f"model {name}: no encoder folders")
    if bundle.get("stacker") and not (models_dir / bundle["stacker"]["model"]).is_file():
        problems.append(f"{bundle['stacker']['model']} missing")
    for member in (bundle.get("stacker") or {}).get("pair_members", []):
        weights = models_dir / member["folder"] / WEIGHTS_FILE
        if not weights.is_file():
            problems.append(f"{member['folder']}/{WEIGHTS_FILE} missing")
        elif file_sha256(weights) != member["weights_sha256"]:
            problems.append(f"{member['folder']}/{WEIGHTS_FILE} is not the pair model the stacker was fitted with")
    if problems:
        raise DataError(f"{models_dir}: incomplete models folder: " + "; ".join(problems[:5]))
    _check_encoder_configs(models_dir, bundle)
    if bundle.get("stacker"):
        _check_booster(models_dir / bundle["stacker"]["model"])
    return bundle


def _check_booster(path: Path) -> None:
    """The stacker's model.txt parses as a LightGBM model (before any embedding work)."""
    from .stack.lgbm import load_booster

    try:
        load_booster(path)
    except Exception as err:  # lightgbm raises LightGBMError (or ValueError) for unparsable text
        raise DataError(f"{path}: not a LightGBM model ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None


def _check_encoder_configs(models_dir: Path, bundle: dict) -> None:
    """Every fold encoder of a model declares one kind and one dimension (no mixed-up folders), and
    is the encoder the bundle was built with (its recorded dimension and weights' SHA-256)."""
    for name, spec in bundle["models"].items():
        infos = {folder: read_json_object(models_dir / folder / "encoder.json", "the encoder description")
                 for folder in spec.get("folders", [])}
        seen = {(info.get("kind"), json.dumps(info.get("config", {}).get("dim"))) for info in infos.values()}
        if len(seen) > 1:
            raise DataError(f"model {name}: fold encoders disagree on kind/dim: {sorted(seen)}")
        for folder, info in infos.items():
            dim = info.get("config", {}).get("dim")
            if spec.get("dim") is not None and dim != spec["dim"]:
                raise DataError(f"{models_dir / folder}: a {dim}-d encoder, but model {name}'s thresholds and stacker "
                                f"were fitted on {spec['dim']}-d embeddings: rebuild the folder with `prodmatch bundle`")
            recorded = spec.get("weights_sha256", {}).get(folder)
            if recorded and recorded != file_sha256(models_dir / folder / WEIGHTS_FILE):
                raise DataError(f"{models_dir / folder / WEIGHTS_FILE} is not the encoder the bundle was built with "
                                f"(SHA-256 differs from bundle.json): rebuild the folder with `prodmatch bundle`")


def embed_test(models_dir: Path, spec: dict, frame: pd.DataFrame, *, batch_size: int = 64, num_workers: int = 0,
               progress: bool = True):
    """One model's test representation, rebuilt from its bundle entry (`prodmatch.embedders`)."""
    from .embedders import embedder_from_bundle

    return embedder_from_bundle(models_dir, spec, batch_size=batch_size, num_workers=num_workers,
                                progress=progress).transform(frame)


def predict(data_dir, models_dir, out, *, batch_size: int = 64, num_workers: int = 0, progress: bool = True,
            image_policy: str = "placeholder", overwrite: bool = False, backend: str = "auto") -> dict:
    """test.csv -> submission.csv (posting_id, matches), written atomically; returns timings.
    An existing `out` is replaced only with `overwrite` (checked before any work); `backend` is the
    KNN search's (`neighbors.BACKENDS`; the dask* ones need an open Dask client)."""
    check_out_path(out, folder=False, overwrite=overwrite)
    offline()
    from .data.shopee import read_shopee_csv
    from .embedders import embedder_from_bundle
    from .post.pool import Pool
    from .post.stage import params_from_dict

    timer = Timer()
    models_dir, data_dir = Path(models_dir), Path(data_dir)
    with timer.stage("check models"):
        bundle = read_bundle(models_dir)
    with timer.stage("read test"):
        test_csv = data_dir / "test.csv"
        needs_images = any(embedder_from_bundle(models_dir, s).needs_images
                           for s in bundle["models"].values())
        frame = read_shopee_csv(test_csv, image_policy=image_policy if needs_images else "text-only")
    data = {}
    for name, spec in bundle["models"].items():
        with timer.stage(f"embed {name}"):
            data[name] = (spec["kind"], embed_test(models_dir, spec, frame, batch_size=batch_size,
                                                   num_workers=num_workers, progress=progress))
    stacker = bundle.get("stacker")
    k = stacker["k"] if stacker else bundle["matcher_k"]
    pool = Pool(data, titles=frame["title"].to_numpy(object), k=k, backend=backend)
    if stacker:
        t, t_min2 = thresholds_at(stacker["threshold"], stacker["t_min2"], stacker.get("size_table"), pool.n)
        matches = _stacked_matches(pool, {**stacker, "threshold": t, "t_min2": t_min2}, models_dir, timer)
    else:
        params = params_from_dict(bundle["matcher"])
        t, t_min2 = thresholds_at(params.t, params.t_min2, bundle.get("matcher_size_table"), pool.n)
        with timer.stage("match"):
            matches = pool.matches(replace(params, t=t, t_min2=t_min2))
    with timer.stage("write"):
        from .metrics import matches_frame

        submission = matches_frame(frame["posting_id"], matches.rows, matches.cols)
        write_csv(out, submission, replace=overwrite)
    return {"submission": Path(out), "rows": len(frame), "timing": timer, "used": "stacker" if stacker else "matcher",
            "thresholds": {"t": t, "t_min2": t_min2}}


def thresholds_at(t: float, t_min2: float | None, table, rows: int) -> tuple[float, float | None]:
    """(t, t_min2) for a test set of `rows`: the bundle's size-table entry nearest in log size,
    else the tuned pair (a bundle made before size tables)."""
    from .post.tune import thresholds_for

    if not table:
        return t, t_min2
    entry = thresholds_for(table, rows)
    log.info("thresholds for %d test rows: %s / Min2 %s (tuned for %d rows)", rows, entry["t"], entry["t_min2"],
             entry["rows"])
    return entry["t"], entry["t_min2"]


def _stacked_matches(pool, stacker: dict, models_dir: Path, timer: Timer):
    from .config import load_config
    from .stack.candidates import pair_features
    from .stack.lgbm import StackerConfig, group_matches, load_booster, pair_matches
    from .stack.pair_members import score_bundled

    nb = stacker.get("nb_thresholds") or None
    with timer.stage("search (exact top-k, + NB)"):  # the pool caches these lists for pair_features
        for name in stacker["models"]:
            pool.model(name)
            if nb and name in nb:
                pool.model(name, nb[name])
    with timer.stage("pair features"):
        pairs = pair_features(pool, stacker["models"], nb, graph=bool(stacker.get("config", {}).get("graph_features")))
    for member in stacker.get("pair_members", []):
        with timer.stage(f"pair member {member['name']}"):
            pairs[member["column"]] = score_bundled(member, models_dir, pairs, stacker["models"], pool.titles)
    with timer.stage("stacker"):
        booster = load_booster(models_dir / stacker["model"])
        names = booster.feature_name()
        missing = [c for c in names if c not in pairs]
        if missing:
            raise DataError(f"the stacker expects features {missing[:5]} that the test pairs lack")
        prob = booster.predict(pairs[names].to_numpy(np.float32)) if len(pairs) else np.zeros(0)
    with timer.stage("match"):
        cands = pair_matches(pairs["i"], pairs["j"], prob, pool.n)
        config = load_config(stacker.get("config", {}), StackerConfig)
        return group_matches(cands, stacker["threshold"], stacker["t_min2"], config)
