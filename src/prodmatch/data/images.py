"""Image presence checks shared by the Shopee and CCKS loaders.

Policies: ``error`` (default) stops on the first batch of missing/corrupt files with their
names; ``placeholder`` and ``text-only`` keep every row and report the bad ones, so a Kaggle
kernel never dies on one file (the encoder later draws a placeholder or skips the image model).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

from PIL import Image, UnidentifiedImageError

from ..errors import DataError, preview

IMAGE_POLICIES = ("error", "placeholder", "text-only")
log = logging.getLogger(__name__)


def check_policy(policy: str) -> None:
    if policy not in IMAGE_POLICIES:
        raise ValueError(f"image_policy must be one of {IMAGE_POLICIES}, got {policy!r}")


def is_readable_image(path: Path) -> bool:
    """True when `path` is a non-empty file whose header PIL recognises (cheap: no decode)."""
    try:
        if path.stat().st_size == 0:
            return False
        with Image.open(path) as img:
            img.verify()
        return True
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False


def find_bad_images(names: Iterable[str], image_dir: Path) -> list[str]:
    """Names (in input order) whose file is missing from `image_dir` or unreadable."""
    image_dir = Path(image_dir)
    present = set(os.listdir(image_dir))
    return [n for n in names if n not in present or not is_readable_image(image_dir / n)]


def enforce_image_policy(names: list[str], image_dir: Path | None, policy: str, *, what: str) -> list[str]:
    """Check `names` under `image_dir` and apply `policy`; return the bad names."""
    check_policy(policy)
    if policy == "text-only":
        return []
    if image_dir is None or not Path(image_dir).is_dir():
        raise DataError(
            f"{what}: image folder {str(image_dir)!r} not found; "
            "pass image_policy='text-only' to load titles without images"
        )
    bad = find_bad_images(names, Path(image_dir))
    if bad and policy == "error":
        raise DataError(
            f"{what}: {len(bad)} missing or corrupt image(s) in {str(image_dir)!r}: {preview(bad)}; "
            "pass image_policy='placeholder' to keep those rows"
        )
    if bad:
        log.warning("%s: %d missing or corrupt image(s), placeholders will be used: %s", what, len(bad), preview(bad))
    return bad
