"""Atomic artifact writes: a reader never sees a half-written file, a crash leaves the old one."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .errors import DataError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds.
    ``replace=False``: publish only if `path` does not exist at that moment (a hard link, which fails
    on an existing name), so of two writers racing for one new name, one wins and one gets an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual mode
        if replace:
            os.replace(tmp, path)
        else:
            _publish_file(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _publish_file(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} appeared while this run was writing it (another writer?): "
                              "kept it and discarded this one; pass --overwrite to replace it") from None


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (os.umask sets it, briefly
    widening the mode of any file another thread creates meanwhile)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Yield a temp folder beside `path`; if the block succeeds it replaces `path` whole.
    ``replace=False``: it takes `path` only if that is absent or an empty folder at that moment
    (rename(2) refuses a non-empty target): of two racing writers one wins, one gets an error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if not replace:
            _publish_dir(tmp, path)
            return
        old = path.parent / f".{path.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish_dir(tmp: Path, path: Path) -> None:
    try:
        os.rename(tmp, path)
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        raise FileExistsError(f"{path} appeared while this run was writing it (another writer?): "
                              "kept it and discarded this one; pass --overwrite to replace it") from None


def write_text(path: str | os.PathLike, text: str, *, replace: bool = True) -> Path:
    """Write `text` (UTF-8, '\\n' newlines) atomically (``replace=False``: never over an existing file)."""
    with atomic_path(path, replace=replace) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes, *, replace: bool = True) -> Path:
    """Write `data` atomically."""
    with atomic_path(path, replace=replace) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def npy_bytes(array) -> bytes:
    """`array` in .npy format (no pickle)."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write_npy(path: str | os.PathLike, array) -> Path:
    """Write `array` as .npy (no pickle) atomically."""
    return write_bytes(path, npy_bytes(array))


def write_csv(path: str | os.PathLike, frame, *, replace: bool = True) -> Path:
    """Write a DataFrame as CSV (no index, '\\n' line ends) atomically."""
    return write_text(path, frame.to_csv(index=False, lineterminator="\n"), replace=replace)


def check_out(out: str | os.PathLike, overwrite: bool) -> None:
    """Refuse a run folder that already holds files unless `overwrite` (an empty one is fine)."""
    check_out_path(out, folder=True, overwrite=overwrite)


def check_out_path(out: str | os.PathLike, *, folder: bool, overwrite: bool) -> Path:
    """Refuse, before any work, an output that cannot be written: the wrong kind of thing already at
    `out` (a file where a folder goes or the reverse), a parent that is a file or not writable, or an
    existing output without `overwrite` (an empty folder is no output)."""
    out = Path(out)
    problem = out_path_problem(out, folder=folder)
    if problem:
        raise DataError(problem)
    if out.exists() and not overwrite and (not folder or any(out.iterdir())):
        held = "already holds a run (or other files)" if folder else "exists"
        raise FileExistsError(f"{out} {held}; pass --overwrite (overwrite=True) to replace it")
    return out


def out_path_problem(out: Path, *, folder: bool) -> str | None:
    """Why `out` cannot be written as a folder (`folder`) or a file, or None: the wrong kind of thing
    already there, or its nearest existing parent a file or not writable."""
    if out.exists() and out.is_dir() != folder:
        return f"{out} is {'a file' if folder else 'a folder'}; this output is {'a folder' if folder else 'a file'}"
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        return f"{parent} is not a folder, so {out} cannot be written"
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable, so {out} cannot be written"
    return None


def new_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create and return a fresh ``root/name-YYYYmmdd-HHMMSS[-k]`` folder: runs never share one."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for k in range(1000):
        candidate = root / (stem if k == 0 else f"{stem}-{k}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a fresh run folder under {root}")


def read_json_object(path: Path, what: str) -> dict:
    """A JSON object from `path`, or a DataError naming the file (truncated, not JSON, not an object)."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: {what} is not valid JSON ({err})") from None
    except OSError as err:  # a folder where the file should be, unreadable
        raise DataError(f"{path}: cannot read {what} ({err.strerror})") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: {what} is not a JSON object (a JSON {type(value).__name__})")
    return value


def write_json(path: str | os.PathLike, obj, *, replace: bool = True) -> Path:
    """Write `obj` as indented, key-sorted JSON atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", replace=replace)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file: the data hash every artifact records."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_version() -> str:
    """Package version plus the git commit of the source tree when there is one (``.dirty`` if edited)."""
    import subprocess

    from . import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def data_hashes(data_dir: str | os.PathLike, names=("train.csv", "test.csv")) -> dict:
    """``{name: SHA-256}`` of each of `names` present in `data_dir`: what an artifact was made from."""
    data_dir = Path(data_dir)
    return {name: file_sha256(data_dir / name) for name in names if (data_dir / name).is_file()}
