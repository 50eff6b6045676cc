"""The KDD Cup 2020 recall task's seam (`prodmatch.task`): its data check and its run."""
from __future__ import annotations


def check(path, *, feature_dim: int = 2048) -> str:
    """Every row of a KDD .tsv decoded (base64 boxes and features); one line on what it holds."""
    from .data import iter_tsv

    rows = boxes = 0
    queries = set()
    for chunk in iter_tsv(path, feature_dim=feature_dim):
        rows, boxes = rows + len(chunk), boxes + int(chunk.offsets[-1])
        queries.update(chunk.rows["query_id"].tolist())
    return (f"{path}: {rows} rows, {len(queries)} queries, {boxes} boxes (features x {feature_dim}), "
            f"every base64 field decoded")


def run(data, config, out, *, overwrite: bool = False, progress: bool = True) -> dict:
    """`kdd_run` (its methods report their own progress)."""
    from .run import kdd_run

    return kdd_run(data, config, out, overwrite=overwrite)
