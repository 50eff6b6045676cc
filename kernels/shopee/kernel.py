"""Kaggle kernel: install prodmatch from the offline wheels dataset and write submission.csv.

Runs with internet off. Paths follow Kaggle's layout; the environment variables exist so the
same script can be run against a fake layout (tests, local dry runs):

    KAGGLE_INPUT    default /kaggle/input
    KAGGLE_WORKING  default /kaggle/working
    PRODMATCH_WHEELS / PRODMATCH_MODELS / SHOPEE_DATA   dataset folder names under KAGGLE_INPUT
"""
import os
import subprocess
import sys
from pathlib import Path

INPUT = Path(os.environ.get("KAGGLE_INPUT", "/kaggle/input"))
WORKING = Path(os.environ.get("KAGGLE_WORKING", "/kaggle/working"))
WHEELS = INPUT / os.environ.get("PRODMATCH_WHEELS", "prodmatch-wheels")
MODELS = INPUT / os.environ.get("PRODMATCH_MODELS", "prodmatch-models")
DATA = INPUT / os.environ.get("SHOPEE_DATA", "shopee-product-matching")


def run(*cmd: str) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.check_call(list(cmd))


def main() -> None:
    for folder in (WHEELS, MODELS, DATA):
        if not folder.is_dir():
            sys.exit(f"kernel: missing input dataset {folder}")
    run(sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(WHEELS), "prodmatch")
    target = os.environ.get("PIP_TARGET")  # pip installed elsewhere (dry runs): make it importable
    env_path = f"{target}{os.pathsep}{os.environ.get('PYTHONPATH', '')}" if target else os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = env_path
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"
    run(sys.executable, "-m", "prodmatch", "predict", "--data", str(DATA), "--models", str(MODELS),
        "--out", str(WORKING / "submission.csv"), "--workers", str(min(4, os.cpu_count() or 1)), "--overwrite")


if __name__ == "__main__":
    main()
