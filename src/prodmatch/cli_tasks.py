"""The per-task bodies of ``prodmatch check`` and ``prodmatch folds``, in registries by task name
(the commands' choices); each imports its task's loaders when it runs."""
from __future__ import annotations

from .registry import Registry

CHECKS = Registry("check task")  # task -> fn(args): its data loaded, checked and summarised


@CHECKS.register("shopee")
def _check_shopee(args):
    from .data.shopee import read_shopee_csv

    # the thorough command: every image decoded (a truncated JPEG passes the header check)
    frame = read_shopee_csv(args.path, image_dir=args.image_dir, image_policy=args.image_policy, decode=True)
    groups = frame["label_group"].nunique() if "label_group" in frame else "n/a"
    bad = int((~frame["image_ok"]).sum()) if "image_ok" in frame else "not checked"
    print(f"{args.path}: {len(frame)} postings, {groups} groups, bad images: {bad}")


@CHECKS.register("ccks")
def _check_ccks(args):
    from .ccks.data import check_ccks_images, read_ccks_items, read_ccks_pairs

    items = read_ccks_items(args.path)
    line = f"{args.path}: {len(items)} items"
    if args.pairs:
        pairs = read_ccks_pairs(args.pairs, items)
        line += f", {len(pairs)} pairs"
        if "item_label" in pairs:
            line += f" ({int(pairs['item_label'].sum())} positive)"
    if args.image_policy != "text-only":
        image_dir = args.image_dir or str(args.path).replace("_info.jsonl", "_images")
        bad = check_ccks_images(items, image_dir, policy=args.image_policy)
        line += f", bad images: {len(bad)}"
    print(line)


@CHECKS.register("kdd")
def _check_kdd(args):
    from .kdd.data import iter_tsv

    rows = boxes = 0
    queries = set()
    for chunk in iter_tsv(args.path, feature_dim=args.feature_dim):
        rows, boxes = rows + len(chunk), boxes + int(chunk.offsets[-1])
        queries.update(chunk.rows["query_id"].tolist())
    print(f"{args.path}: {rows} rows, {len(queries)} queries, {boxes} boxes (features x {args.feature_dim}), "
          f"every base64 field decoded")


FOLD_TABLES = Registry("folds task")  # task -> fn(args): its fold table


@FOLD_TABLES.register("shopee")
def _shopee_folds(args):
    from .data import folds as F
    from .data.shopee import read_shopee_csv

    return F.shopee_folds(read_shopee_csv(args.path, image_policy="text-only"), args.n_folds, args.seed)


@FOLD_TABLES.register("ccks")
def _ccks_folds(args):
    from .ccks.data import read_ccks_pairs
    from .data import folds as F

    return F.ccks_folds(read_ccks_pairs(args.path), args.n_folds, args.seed)
