"""Embedding runs on disk (`oof/<run>/`): the one format the encoders write and the matcher, pairs and
stacker read, so stages share embeddings instead of recomputing them; layout: prodmatch/README.md."""
from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import __version__
from .errors import DataError, preview
from .registry import Registry
from .summary import SUMMARY_FILE, f1_entry, write_summary
from .io import file_sha256, npy_bytes, read_json_object, write_bytes, write_csv, write_json

ROW_COLUMNS = ("posting_id", "label_group", "fold")


@dataclass(frozen=True)
class Kind:
    """How one kind of embedding is stored and turned into a similarity model."""

    suffix: str
    save: Callable[[object], bytes]
    load: Callable[[Path], object]
    check: Callable[[object], object]


def _npz_bytes(matrix) -> bytes:
    buf = io.BytesIO()
    sp.save_npz(buf, sp.csr_matrix(matrix), compressed=False)
    return buf.getvalue()


def _check_dense(x):
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"dense embeddings must be (n, d), got shape {x.shape}")
    return x


def _check_sparse(x):
    return sp.csr_matrix(x, dtype=np.float32)


def _check_phash(x):
    x = np.asarray(x)
    if x.ndim != 1 or x.dtype != np.uint64:
        raise DataError(f"phash codes must be a 1-d uint64 array, got {x.dtype} {x.shape}")
    return x


KINDS = Registry("embedding kind", {
    "dense": Kind(".npy", npy_bytes, lambda p: np.load(p, allow_pickle=False), _check_dense),
    "sparse": Kind(".npz", _npz_bytes, sp.load_npz, _check_sparse),  # load_npz: allow_pickle=False
    "phash": Kind(".npy", npy_bytes, lambda p: np.load(p, allow_pickle=False), _check_phash),
})


@dataclass
class StoredModel:
    """One model's embeddings from a run: ``oof`` aligned with the run's rows, ``test`` optional."""

    name: str
    kind: str
    oof: object
    test: object | None = None
    meta: dict = field(default_factory=dict)

    def similarity_model(self, which: str = "oof"):
        """The `prodmatch.similarity` model (dense / sparse / phash) over `which` rows, no search yet."""
        from .similarity import DenseModel, PhashModel, SparseModel

        data = self.oof if which == "oof" else self.test
        if data is None:
            raise DataError(f"model {self.name!r} has no {which} embeddings")
        return {"dense": DenseModel, "sparse": SparseModel, "phash": PhashModel}[self.kind](data)


def rows_table(frame: pd.DataFrame, folds) -> pd.DataFrame:
    """The run's row table from a Shopee frame and its fold per row."""
    table = pd.DataFrame({"posting_id": frame["posting_id"].astype(str).to_numpy()})
    table["label_group"] = frame["label_group"].to_numpy() if "label_group" in frame else -1
    table["fold"] = np.asarray(folds, dtype=np.int64)
    return table


def save_embeddings(
    run, name: str, kind: str, oof, *, rows: pd.DataFrame, test=None, meta: dict | None = None, overwrite: bool = False
) -> Path:
    """Write model `name` into run folder `run` (created if needed); returns the model folder.

    `rows` must equal the run's rows.csv when the run already has one (same postings, same folds).
    """
    if not name or "/" in name or name.startswith("."):
        raise DataError(f"bad model name {name!r}")
    spec = KINDS[kind]
    oof = spec.check(oof)
    if oof.shape[0] != len(rows):
        raise DataError(f"model {name!r}: {oof.shape[0]} OOF rows but the row table has {len(rows)}")
    if test is not None:
        test = spec.check(test)
    run = Path(run)
    _ensure_rows(run, rows)
    folder = run / "models" / name
    if (folder / "model.json").exists() and not overwrite:
        raise FileExistsError(f"{folder} exists; choose another run (--out) or model name (--name), or pass overwrite=True (Python)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").unlink(missing_ok=True)  # a half-replaced model is never readable
    write_bytes(folder / f"oof{spec.suffix}", spec.save(oof))
    stale = folder / f"test{spec.suffix}"
    if test is not None:
        write_bytes(stale, spec.save(test))
    else:
        stale.unlink(missing_ok=True)
    info = {
        "name": name,
        "kind": kind,
        "shape": list(oof.shape),
        "test_rows": None if test is None else int(test.shape[0]),
        "rows_sha256": file_sha256(run / "rows.csv"),
        "version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **(meta or {}),
    }
    (folder / SUMMARY_FILE).unlink(missing_ok=True)
    if info.get("oof_f1") is not None:
        write_summary(folder, task="shopee", stage="model", entries=[summary_entry(info)])
    write_json(folder / "model.json", info)  # written last: marks the model complete
    return folder


def summary_entry(info: dict) -> dict:
    """A scored model's summary entry: its OOF F1 (an unsupervised method's: tuned on all rows)."""
    score = {"f1": info.get("oof_f1"), "precision": info.get("oof_precision"), "recall": info.get("oof_recall")}
    how = ("threshold tuned on all train rows" if info.get("unsupervised")
           else "OOF, each fold searched alone, one threshold tuned on all OOF rows")
    return f1_entry("model", f"{info.get('name')} ({info.get('kind')}): {how} {info.get('oof_threshold')}", info, score)


def read_rows(run) -> pd.DataFrame:
    path = Path(run) / "rows.csv"
    if not path.is_file():
        raise DataError(f"{run}: not an embedding run (no rows.csv)")
    try:
        table = pd.read_csv(path, dtype={"posting_id": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable rows.csv ({err})") from None
    missing = set(ROW_COLUMNS) - set(table.columns)
    if missing:
        raise DataError(f"{path}: missing columns {sorted(missing)}")
    for column in ("label_group", "fold"):
        bad = ~table[column].astype(str).str.fullmatch(r"-?\d+")
        if bad.any():
            raise DataError(f"{path}: column {column} must hold integers; bad on row(s) {preview(np.flatnonzero(bad) + 1)}")
        table[column] = table[column].astype("int64")
    return table


def list_models(run) -> list[str]:
    """Names of the complete models in a run (those with a model.json)."""
    folder = Path(run) / "models"
    return sorted(p.name for p in folder.iterdir() if (p / "model.json").is_file()) if folder.is_dir() else []


def load_embeddings(run, name: str, rows: pd.DataFrame | None = None, rows_sha256: str | None = None) -> StoredModel:
    """Model `name` of `run`, its arrays checked against model.json and the run's rows.csv (`rows`,
    `rows_sha256`: that table and its hash, when the caller read them already)."""
    folder = Path(run) / "models" / name
    meta_path = folder / "model.json"
    if not meta_path.is_file():
        raise DataError(f"{run}: no complete model {name!r}; found: {', '.join(list_models(run)) or 'none'}")
    meta = read_json_object(meta_path, "model.json")
    spec = KINDS.get(meta.get("kind"), where=str(meta_path))
    rows = read_rows(run) if rows is None else rows
    _check_rows_unchanged(Path(run), meta, meta_path, rows_sha256)
    oof = _read_array(spec, folder / f"oof{spec.suffix}")
    if list(oof.shape) != list(meta.get("shape", oof.shape)) or oof.shape[0] != len(rows):
        raise DataError(f"{folder / ('oof' + spec.suffix)}: shape {tuple(oof.shape)}, but model.json records "
                        f"{tuple(meta.get('shape', ()))} and rows.csv has {len(rows)} rows")
    test_path = folder / f"test{spec.suffix}"
    test = _read_array(spec, test_path) if test_path.is_file() else None
    if test is not None and test.shape[0] != meta.get("test_rows", test.shape[0]):
        raise DataError(f"{test_path}: {test.shape[0]} rows, but model.json records {meta.get('test_rows')}")
    return StoredModel(name, meta["kind"], oof, test, meta)


def _read_array(spec: Kind, path: Path):
    try:
        array = spec.check(spec.load(path))
    except (ValueError, OSError, EOFError) as err:  # truncated / foreign .npy or .npz
        if isinstance(err, DataError):
            raise DataError(f"{path}: {err}") from None
        raise DataError(f"{path}: not a readable array file ({err})") from None
    values = array.data if sp.issparse(array) else array
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = ~np.isfinite(values)
        rows = (np.unique(np.repeat(np.arange(array.shape[0]), np.diff(array.indptr))[bad]) if sp.issparse(array)
                else np.flatnonzero(bad.reshape(len(array), -1).any(axis=1)))
        raise DataError(f"{path}: NaN/inf in {len(rows)} row(s), e.g. row(s) {preview(rows)}")
    return array


def _check_rows_unchanged(run: Path, meta: dict, meta_path: Path, actual: str | None) -> None:
    recorded = meta.get("rows_sha256")
    if recorded and recorded != (actual or file_sha256(run / "rows.csv")):
        raise DataError(f"{run / 'rows.csv'} changed since {meta_path} was written (postings, labels or folds "
                        "edited): rebuild the model or restore rows.csv")


def check_built_on(models: list[StoredModel], data_dir) -> None:
    """Refuse `data_dir/train.csv` when it is not the file the models were built on (model.json's hash)."""
    path = Path(data_dir) / "train.csv"
    if not path.is_file():
        return
    actual = file_sha256(path)
    for model in models:
        recorded = (model.meta.get("data") or {}).get("train.csv")
        if recorded and recorded != actual:
            raise DataError(f"{path} is not the train.csv model {model.name!r} was built on (sha256 {actual[:12]}, "
                            f"model.json records {recorded[:12]}): point --data at that folder or rebuild the model")


def load_runs(runs, names=None) -> tuple[pd.DataFrame, list[StoredModel]]:
    """Rows and models from one or more run folders (all must share rows.csv); `names` filters."""
    runs = [Path(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    if not runs:
        raise DataError("no run folder given")
    rows = read_rows(runs[0])
    models: list[StoredModel] = []
    for run in runs:
        other = read_rows(run)
        if not _same_rows(rows, other):
            raise DataError(f"{run}: its rows.csv differs from {runs[0]}'s (other postings, order or folds)")
        digest = file_sha256(run / "rows.csv")
        models += [load_embeddings(run, n, rows, digest) for n in list_models(run) if not names or n in names]
    if names:
        found = {m.name for m in models}
        missing = [n for n in names if n not in found]
        if missing:
            raise DataError(f"models {missing} not found; available: {', '.join(sorted(found)) or 'none'}")
        models = [m for n in names for m in models if m.name == n]
    if not models:
        raise DataError(f"no models in {', '.join(map(str, runs))}")
    seen = [m.name for m in models]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise DataError(f"model names {dupes} appear in several runs; pick them with names=")
    return rows, models


def _same_rows(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return len(a) == len(b) and all(
        np.array_equal(a[c].astype(str).to_numpy(), b[c].astype(str).to_numpy()) for c in ROW_COLUMNS
    )


def _ensure_rows(run: Path, rows: pd.DataFrame) -> None:
    rows = rows.loc[:, list(ROW_COLUMNS)].reset_index(drop=True)
    path = run / "rows.csv"
    if path.is_file():
        if not _same_rows(read_rows(run), rows):
            raise DataError(f"{run}: rows.csv holds other postings, order or folds than this model's")
        return
    run.mkdir(parents=True, exist_ok=True)
    write_csv(path, rows)


__all__ = ["KINDS", "StoredModel", "rows_table", "save_embeddings", "read_rows", "list_models", "load_embeddings", "load_runs",
           "check_built_on"]
