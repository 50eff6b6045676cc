"""Build the kernel's two offline Kaggle datasets: wheels of prodmatch (+ deps) and the models folder.

    .venv/bin/python kernels/build_datasets.py --models models/ --out kaggle-datasets/ [--with-deps]

Writes ``<out>/prodmatch-wheels/`` (the prodmatch wheel; with --with-deps also every pinned
dependency Kaggle's image may lack, downloaded from PyPI) and ``<out>/prodmatch-models/`` (a copy
of a `prodmatch bundle` folder), each with its dataset-metadata.json, ready for
``kaggle datasets create -p <folder>``. Refuses to replace existing folders without --overwrite.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def metadata(folder: Path, slug: str, title: str) -> None:
    meta = {"title": title, "id": f"prodmatch/{slug}", "licenses": [{"name": "other"}]}
    (folder / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def build_wheels(out: Path, with_deps: bool) -> Path:
    """The wheel is built from a clean copy of the sources, so the checkout gets no build/ folder."""
    folder = out / "prodmatch-wheels"
    folder.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "prodmatch"
        shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in ("setup.py", "setup.cfg", "README.md"):
            shutil.copy2(REPO / name, source / name)
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "-w", str(folder.resolve()), str(source)]
        if not with_deps:
            cmd.insert(4, "--no-deps")
        subprocess.check_call(cmd)
    metadata(folder, "prodmatch-wheels", "prodmatch wheels")
    return folder


def build_models(models: Path, out: Path) -> Path:
    sys.path.insert(0, str(REPO / "src"))
    from prodmatch.predict import read_bundle

    read_bundle(models)  # refuse an incomplete folder here, not in the kernel
    folder = out / "prodmatch-models"
    shutil.copytree(models, folder)
    metadata(folder, "prodmatch-models", "prodmatch models")
    return folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", required=True, type=Path, help="folder written by `prodmatch bundle`")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--with-deps", action="store_true", help="also download the pinned dependencies")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    for name in ("prodmatch-wheels", "prodmatch-models"):
        target = args.out / name
        if target.exists():
            if not args.overwrite:
                sys.exit(f"{target} exists; pass --overwrite")
            shutil.rmtree(target)
    models = build_models(args.models, args.out)
    wheels = build_wheels(args.out, args.with_deps)
    print(f"wrote {wheels} and {models}")


if __name__ == "__main__":
    main()
