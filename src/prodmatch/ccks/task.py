"""The CCKS 2022 task 9.2 seam (`prodmatch.task`): its data check, its folds and its run."""
from __future__ import annotations


def check(path, *, pairs=None, image_dir=None, image_policy: str = "error") -> str:
    """An item_*_info.jsonl (and its pairs, and images unless text-only) read and checked; one line."""
    from .data import check_ccks_images, read_ccks_items, read_ccks_pairs

    items = read_ccks_items(path)
    line = f"{path}: {len(items)} items"
    if pairs:
        table = read_ccks_pairs(pairs, items)
        line += f", {len(table)} pairs"
        if "item_label" in table:
            line += f" ({int(table['item_label'].sum())} positive)"
    if image_policy != "text-only":
        bad = check_ccks_images(items, image_dir or str(path).replace("_info.jsonl", "_images"), policy=image_policy)
        line += f", bad images: {len(bad)}"
    return line


def folds(path, n_folds: int, seed: int):
    """Folds of an item_*_pair.jsonl where no item appears in two folds (`data.folds.ccks_folds`)."""
    from ..data.folds import ccks_folds
    from .data import read_ccks_pairs

    return ccks_folds(read_ccks_pairs(path), n_folds, seed)


def run(data, config, out, *, overwrite: bool = False, progress: bool = True) -> dict:
    """`ccks_run` on a CCKS folder or a labelled-pairs benchmark folder."""
    from .run import ccks_run

    return ccks_run(data, config, out, overwrite=overwrite, progress=progress)
