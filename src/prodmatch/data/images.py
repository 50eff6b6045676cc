"""Image presence checks shared by the Shopee and CCKS loaders.

Policies: ``error`` (default) stops with the names of the first missing/corrupt files;
``placeholder`` keeps every row and returns the bad names, so a Kaggle kernel never dies on
one file (the encoder draws a placeholder); ``text-only`` does not look at images at all.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

from PIL import Image

from ..errors import DataError, preview

IMAGE_POLICIES = ("error", "placeholder", "text-only")
log = logging.getLogger(__name__)


def check_policy(policy: str) -> None:
    if policy not in IMAGE_POLICIES:
        raise ValueError(f"unknown image policy {policy!r}; choose one of {IMAGE_POLICIES}")


def is_readable_image(path: Path, decode: bool = False) -> bool:
    """True when PIL identifies the file (cheap header check); `decode` also loads the pixels,
    which catches truncated JPEGs at the cost of a full decode."""
    try:
        with Image.open(path) as img:
            img.verify()
        if decode:
            with Image.open(path) as img:
                img.load()
        return True
    except Exception:  # PIL raises OSError, SyntaxError, ValueError, ... for broken files
        return False


def find_bad_images(names: Iterable[str], image_dir, decode: bool = False) -> tuple[list[str], list[str]]:
    """(missing, unreadable) names, each in input order, for files expected in `image_dir`."""
    image_dir = Path(image_dir)
    present = set(os.listdir(image_dir)) if image_dir.is_dir() else set()
    names = list(names)
    missing = [n for n in names if n not in present]
    corrupt = [n for n in names if n in present and not is_readable_image(image_dir / n, decode)]
    return missing, corrupt


def enforce_image_policy(names: Iterable[str], image_dir, policy: str, *, what: str, decode: bool = False) -> list[str]:
    """Check `names` under `image_dir` and apply `policy`; return the bad names (missing first)."""
    check_policy(policy)
    if policy == "text-only":
        return []
    missing, corrupt = find_bad_images(names, image_dir, decode)
    bad = missing + corrupt
    if bad and policy == "error":
        where = "" if Path(image_dir).is_dir() else " (the folder does not exist)"
        raise DataError(
            f"{what}: images in {str(image_dir)!r}{where}: {len(missing)} missing {preview(missing)}; "
            f"{len(corrupt)} unreadable {preview(corrupt)}; "
            "pass image_policy='placeholder' to keep those rows, or 'text-only' to ignore images"
        )
    if bad:
        log.warning("%s: %d missing or unreadable image(s), placeholders will be used: %s", what, len(bad), preview(bad))
    return bad
