"""The Shopee path at 20,000 train rows under a hard memory cap: nothing quadratic in rows survives it.

Before the fix, `embed` tuned its informational threshold on every pair above similarity 0.05
(word TF-IDF at 20,000 rows: ~3 GB of pairs; phash and char TF-IDF more), which this cap kills.
The stages run in one child process whose data segment (RLIMIT_DATA: heap and anonymous maps,
not the mapped libraries) may grow by BUDGET_MB over what the imports took.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

TRAIN_ROWS, TEST_ROWS = 20_000, 5_000
BUDGET_MB = 2048  # the stages peak ~0.6 GB over the imports; the old embed needed ~3 GB more

STAGES = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    import faiss, lightgbm, numpy, sparse_dot_topn, torch  # imports and thread pools before the cap
    import prodmatch.cli, prodmatch.pipeline, prodmatch.predict, prodmatch.post.union
    from prodmatch.neighbors import knn
    knn(numpy.eye(4, dtype="float32"), 2)
    from prodmatch.embedders.run import embed_unsupervised
    from prodmatch.post.run import match_run
    from prodmatch.stack.run import stack_run
    from prodmatch.predict import make_bundle, predict

    def vm_data_bytes():
        for line in open("/proc/self/status"):
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024

    data, run, budget = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) * 2**20
    cap = vm_data_bytes() + budget
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    for method in ("tfidf", "phash"):
        embed_unsupervised(data, method, run)
    match_run(run, data_dir=data, config={"chisel": False}, progress=False)  # chisel: linear, slow to tune
    stack_run(run, data_dir=data, progress=False)
    models = make_bundle(run, run / "bundle", use="stacker")
    predict(data, models, run / "submission.csv", progress=False)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


@pytest.fixture(scope="module")
def big_text_only(tmp_path_factory):
    from prodmatch.data.synth import generate

    folder = tmp_path_factory.mktemp("scale") / "data"
    generate("shopee", folder, seed=0, preset="kaggle", images=False, rows=(TRAIN_ROWS, TEST_ROWS))
    return folder


def test_embed_match_stack_predict_fit_a_memory_cap_at_20000_rows(big_text_only, tmp_path):
    done = subprocess.run([sys.executable, "-c", STAGES, str(big_text_only), str(tmp_path / "run"), str(BUDGET_MB)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"]
    import pandas as pd

    submission = pd.read_csv(tmp_path / "run" / "submission.csv")
    test = pd.read_csv(big_text_only / "test.csv")
    assert list(submission["posting_id"]) == list(test["posting_id"])
    assert 0 < peak
