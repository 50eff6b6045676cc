"""Speed of the post-processing chain (vectorised vs a per-row Python reference) and of exact KNN.

Chain on N synthetic rows x K neighbours x 3 models (dense A with one NB stage, dense B, phash):
threshold + Min2, NB, similarity union, select (threshold + Min2 on the union), unit filter,
chisel. Searches are not timed in the chain. Each stage's output is checked against a simple
per-row implementation on the same inputs. Then KNN: N x 512 exact top-K, `knn(backend=faiss)`
vs a bare faiss IndexFlatIP search, each in its own subprocess for a clean peak RSS.

    .venv/bin/python bench/bench_post.py              # 70,000 rows (a few minutes)
    .venv/bin/python bench/bench_post.py --n 5000     # quick
Writes bench/results/bench_post.md as well as printing it.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from prodmatch.metrics import row_scores
from prodmatch.post.tune import best_row_threshold
from prodmatch.neighbors import knn
from prodmatch.post import (
    Matches,
    chisel,
    min2,
    neighbourhood_blend,
    pair_conflicts,
    select,
    similarity_union,
)
from prodmatch.similarity import DenseModel, PhashModel
from prodmatch.post.chisel import allowed_counts
from prodmatch.post.units import extract

RESULTS = Path(__file__).resolve().parent / "results" / "bench_post.md"
WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "su", "ta", "re", "bo", "ni", "pe", "du") for b in ("ra", "mo", "ki", "sa", "no", "li", "ta", "ve")]
QUANTITIES = [  # (equivalent spellings of one quantity), siblings differ in the quantity
    ("250ml", "250 ML", "250 ml", "0,25 L"),
    ("500ml", "500 ml", "0,5 liter", "0.5L"),
    ("1L", "1 liter", "1000ml", "1.000 ml"),
    ("30g", "30 gr", "30gram", "0,03kg"),
    ("100g", "100 gr", "100 gram", "0,1 kg"),
    ("1kg", "1 kg", "1000 gr", "1.000 gram"),
    ("64GB", "64 GB", "64gb"),
    ("128GB", "128 GB", "128gb"),
    ("isi 12", "12 pcs", "12pcs", "isi 12 pcs"),
    ("isi 6", "6 pcs", "6pcs"),
    ("2x250ml", "2 x 250 ml", "250ml x 2"),
    ("5 meter", "5m", "500 cm"),
    ("HK900",),
    ("",),
]


# ------------------------------------------------------------------------------ synthetic data
def group_sizes(n: int, rng) -> np.ndarray:
    """Shopee-like group sizes (2..50, most of them 2) covering about n rows."""
    sizes = np.minimum(2 + rng.geometric(0.45, size=n), 50)
    return sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(n: int, dim: int, seed: int) -> dict:
    """Groups with two embedding views, phash codes and titles; 30% of groups are a 'sibling'
    of the previous group (close embeddings, same words, another quantity), as 250ml vs 500ml."""
    rng = np.random.default_rng(seed)
    sizes = group_sizes(n, rng)
    n_groups = len(sizes)
    sibling = rng.random(n_groups) < 0.3
    sibling[0] = False
    centres = {}
    for view in ("a", "b"):
        c = unit_rows(rng.standard_normal((n_groups, dim)))
        for g in np.flatnonzero(sibling):  # a sibling sits close to its predecessor
            c[g] = unit_rows(c[g - 1 : g] + 0.35 * rng.standard_normal((1, dim)))[0]
        centres[view] = c
    labels = np.repeat(np.arange(n_groups), sizes)[:n]
    emb_a = unit_rows(centres["a"][labels] + 0.12 * rng.standard_normal((n, dim)))
    emb_b = unit_rows(centres["b"][labels] + 0.14 * rng.standard_normal((n, dim)))
    group_code = rng.integers(0, 2**63, n_groups, dtype=np.uint64)
    flips = np.zeros(n, np.uint64)
    for _ in range(3):  # up to 3 flipped bits per row
        bit = rng.integers(0, 64, n).astype(np.uint64)
        flips ^= np.where(rng.random(n) < 0.6, np.uint64(1) << bit, np.uint64(0))
    codes = group_code[labels] ^ flips
    other = rng.random(n) < 0.3  # another photo: unrelated hash
    codes[other] = rng.integers(0, 2**63, int(other.sum()), dtype=np.uint64)
    words = rng.integers(0, len(WORDS), (n_groups, 3))
    quantity = rng.integers(0, len(QUANTITIES), n_groups)
    for g in np.flatnonzero(sibling):
        words[g] = words[g - 1]
        quantity[g] = (quantity[g - 1] + 1 + rng.integers(0, len(QUANTITIES) - 2)) % len(QUANTITIES)
    titles = []
    for i, g in enumerate(labels):
        spellings = QUANTITIES[quantity[g]]
        w = [WORDS[j] for j in words[g]]
        extra = WORDS[rng.integers(0, len(WORDS))] if rng.random() < 0.5 else ""
        titles.append(" ".join(x for x in (*w, spellings[rng.integers(0, len(spellings))], extra) if x))
    return {"labels": labels, "emb_a": emb_a, "emb_b": emb_b, "codes": codes, "titles": titles,
            "target": group_sizes(n, np.random.default_rng(seed + 1))}


def row_f1(rows, cols, labels) -> float:
    return row_scores(rows, cols, labels).f1


def tune_threshold(rows, cols, scores, labels, grid=np.round(np.arange(0.30, 1.0, 0.02), 2)) -> float:
    """Threshold (self always kept) with the best row F1 on the candidate pairs, for the setup."""
    return best_row_threshold(rows, cols, scores, labels, grid)[0]


# ------------------------------------------------------------------------------ the chain, vectorised
def run_chain(d: dict, knn_lists: dict, k: int, params: dict, timings: dict) -> dict:
    """The timed vectorised chain; every stage's input and output are kept for the checks."""
    out = {}
    sa, ia = knn_lists["a"]
    t0 = time.perf_counter()
    out["min2"] = min2(sa, ia, params["t_a"], params["t_a_min2"])
    timings["threshold + Min2 (model A)"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    out["nb"] = neighbourhood_blend(d["emb_a"], sa, ia, params["t_nb"])
    timings["NB, one stage (model A)"] = time.perf_counter() - t0

    s2, i2 = knn(out["nb"], k, backend="faiss")  # not timed: the next search
    knn_lists["a_nb"] = (s2, i2)
    sb, ib = knn_lists["b"]
    sc, ic = knn_lists["c"]
    t0 = time.perf_counter()
    models = [DenseModel(out["nb"], i2, s2), DenseModel(d["emb_b"], ib, sb), PhashModel(d["codes"], ic, sc)]
    out["union"], out["per_model"] = similarity_union(models)
    timings["similarity union (3 models)"] = time.perf_counter() - t0
    out["models"] = models

    u = out["union"]  # not timed: choosing the union threshold on the truth
    if "t_u" not in params:
        params["t_u"] = tune_threshold(u.rows, u.cols, u.scores, d["labels"])
        params["t_u_min2"] = round(params["t_u"] - 0.1, 2)
    t0 = time.perf_counter()
    out["select"] = select(u, params["t_u"], params["t_u_min2"])
    timings["select on union (threshold + Min2)"] = time.perf_counter() - t0

    m = out["select"]
    t0 = time.perf_counter()
    bad = pair_conflicts(d["titles"], m.rows, m.cols)
    out["conflicts"] = bad
    out["units"] = m.subset(~bad)
    timings["unit filter"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    out["chisel"] = chisel(out["units"], d["target"])
    timings["chisel"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------ the chain, per row
def ref_min2(sims, idx, t, t_min2):
    """Per row: neighbours with sim >= t and self; a lone row adds its nearest other if >= t_min2."""
    out = []
    for i in range(len(idx)):
        row = {i: 1.0}
        best = None
        for s, j in zip(sims[i].tolist(), idx[i].tolist()):
            if j == i:
                continue
            if s >= t:
                row[j] = max(row.get(j, -2.0), s)
            if best is None or s > best[0]:
                best = (s, j)
        if len(row) == 1 and best is not None and best[0] >= t_min2:
            row[best[1]] = best[0]
        out.append(row)
    return out


def ref_blend(emb, rows):
    out = np.empty_like(emb)
    for i, row in enumerate(rows):
        v = np.zeros(emb.shape[1], np.float64)
        for j, s in row.items():
            v += np.float32(s) * emb[j].astype(np.float64)
        out[i] = v / np.linalg.norm(v)
    return out


def ref_union(models, n):
    """Per row: dict of candidates; a model's missing side by one dot product / popcount."""
    rows, per_model = [], []
    for i in range(n):
        listed = [dict(zip(m.idx[i].tolist(), m.sims[i].tolist())) for m in models]
        cands = sorted(set().union(*listed) | {i})
        scores, parts = {}, {}
        for j in cands:
            sims = []
            for m, lst in zip(models, listed):
                if j == i:
                    s = 1.0
                elif j in lst:
                    s = lst[j]
                elif isinstance(m, PhashModel):
                    s = 1.0 - bin(int(m.codes[i]) ^ int(m.codes[j])).count("1") / 64.0
                else:
                    s = float(np.dot(m.emb[i].astype(np.float64), m.emb[j].astype(np.float64)))
                sims.append(float(np.float32(s)))
            u = 0.0
            for s in sims:
                s = min(max(s, 0.0), 1.0)
                u = u + (s - u * s)
            u = min(max([u] + [min(max(s, 0.0), 1.0) for s in sims]), 1.0)
            scores[j], parts[j] = (1.0 if j == i else u), sims
        rows.append(scores)
        per_model.append(parts)
    return rows, per_model


def ref_select(union_rows, t, t_min2):
    out = []
    for i, row in enumerate(union_rows):
        keep = {j: s for j, s in row.items() if j == i or s >= t}
        if len(keep) == 1:
            others = [(s, -j) for j, s in row.items() if j != i]
            if others:
                s, j = max(others)
                if s >= t_min2:
                    keep[-j] = s
        out.append(keep)
    return out


def ref_units(titles, rows):
    cache = {}

    def quantities(t):
        if t not in cache:
            q = {}
            for v, dim in extract(t):
                q.setdefault(dim, set()).add(v)
            cache[t] = q
        return cache[t]

    out = []
    for i, row in enumerate(rows):
        qa = quantities(titles[i])
        keep = {}
        for j, s in row.items():
            qb = quantities(titles[j])
            if not any(not (qa[dim] & qb[dim]) for dim in qa.keys() & qb.keys()):
                keep[j] = s
        out.append(keep)
    return out


def ref_chisel(rows, target):
    n = len(rows)
    allow = allowed_counts(target, n)
    ordered = [sorted(row.items(), key=lambda js: (js[0] != i, -js[1], js[0])) for i, row in enumerate(rows)]
    size = [len(r) for r in ordered]
    for p in range(max(size), 1, -1):
        limit = allow[p] if p < len(allow) else 0
        over = sum(1 for i in range(n) if size[i] >= p)
        if over > limit:
            exact = [i for i in range(n) if size[i] == p]
            exact.sort(key=lambda i: (ordered[i][p - 1][1], i))
            for i in exact[: over - limit]:
                size[i] = p - 1
    return [dict(ordered[i][: size[i]]) for i in range(n)]


def as_dicts(m: Matches) -> list[dict]:
    out = [dict() for _ in range(m.n)]
    for r, c, s in zip(m.rows.tolist(), m.cols.tolist(), m.scores.tolist()):
        out[r][c] = s
    return out


def same_sets(ref: list[dict], m: Matches, atol: float = 1e-6) -> str:
    """'ok' when the pairs agree exactly and scores within atol, else a short description."""
    got = as_dicts(m)
    diff = sum(set(a) != set(b) for a, b in zip(ref, got))
    if diff:
        return f"{diff} rows differ"
    worst = max((abs(a[j] - b[j]) for a, b in zip(ref, got) for j in a), default=0.0)
    return "ok" if worst <= atol else f"score diff {worst:.2e}"


def run_reference(d, knn_lists, params, out, timings: dict, checks: dict) -> None:
    """Each per-row stage on the vectorised stage's inputs; records time and agreement."""
    n = len(d["labels"])
    sa, ia = knn_lists["a"]
    t0 = time.perf_counter()
    r = ref_min2(sa, ia, params["t_a"], params["t_a_min2"])
    timings["threshold + Min2 (model A)"] = time.perf_counter() - t0
    checks["threshold + Min2 (model A)"] = same_sets(r, out["min2"])

    rows_nb = ref_min2(sa, ia, params["t_nb"], np.inf)  # plain threshold (no Min2) chooses NB's matches
    t0 = time.perf_counter()
    e = ref_blend(d["emb_a"], rows_nb)
    timings["NB, one stage (model A)"] = time.perf_counter() - t0
    worst = float(np.abs(e - out["nb"]).max())
    checks["NB, one stage (model A)"] = "ok" if worst <= 1e-5 else f"max diff {worst:.2e}"

    t0 = time.perf_counter()
    ru, _ = ref_union(out["models"], n)
    timings["similarity union (3 models)"] = time.perf_counter() - t0
    checks["similarity union (3 models)"] = same_sets(ru, out["union"])

    ru_vec = as_dicts(out["union"])  # the next stages start from the vectorised union
    t0 = time.perf_counter()
    rs = ref_select(ru_vec, params["t_u"], params["t_u_min2"])
    timings["select on union (threshold + Min2)"] = time.perf_counter() - t0
    checks["select on union (threshold + Min2)"] = same_sets(rs, out["select"])

    rows_sel = as_dicts(out["select"])
    t0 = time.perf_counter()
    rn = ref_units(d["titles"], rows_sel)
    timings["unit filter"] = time.perf_counter() - t0
    checks["unit filter"] = same_sets(rn, out["units"])

    rows_units = as_dicts(out["units"])
    t0 = time.perf_counter()
    rc = ref_chisel(rows_units, d["target"])
    timings["chisel"] = time.perf_counter() - t0
    checks["chisel"] = same_sets(rc, out["chisel"])


# ------------------------------------------------------------------------------ KNN in subprocesses
def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited over fork+exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def knn_worker(method: str, n: int, dim: int, k: int, seed: int, save: str) -> None:
    """Runs in a child process: make data, search once, print JSON (seconds, peak RSS)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 3), dim), dtype=np.float32)
    x = centres[rng.integers(0, len(centres), n)]
    x += 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    del centres
    import faiss  # noqa: F401  (import cost outside the timing)

    if method == "torch":
        import torch  # noqa: F401

    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    if method == "bare":
        import faiss

        index = faiss.IndexFlatIP(dim)
        index.add(x)
        sims, idx = index.search(x, k)
    else:
        sims, idx = knn(x, k, backend=method)
    seconds = time.perf_counter() - t0
    rss = peak_rss_mb()
    np.save(save, idx)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": rss, "rss_before_mb": rss_before}))


def bench_knn(n: int, dim: int, k: int, seed: int, methods: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        idx = {}
        for method in methods:
            save = os.path.join(tmp, f"{method}.npy")
            cmd = [sys.executable, __file__, "--knn-worker", method, "--n", str(n), "--knn-dim", str(dim),
                   "--k", str(k), "--seed", str(seed), "--save", save]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            info = json.loads(res.stdout.strip().splitlines()[-1])
            info["method"] = method
            idx[method] = np.load(save)
            rows.append(info)
            print(f"  knn {method}: {info['seconds']:.1f} s, peak RSS {info['peak_rss_mb']:.0f} MB", flush=True)
        ref = idx[methods[0]]
        for info in rows:
            other = idx[info["method"]]
            same = np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(ref.tolist(), other.tolist())])
            info["agreement"] = same
    return rows


# ------------------------------------------------------------------------------ main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=70_000, help="rows (chain and KNN)")
    ap.add_argument("--k", type=int, default=51, help="neighbours per row, self included")
    ap.add_argument("--dim", type=int, default=64, help="embedding size in the chain")
    ap.add_argument("--knn-dim", type=int, default=512, help="embedding size in the KNN bench")
    ap.add_argument("--knn-torch", action="store_true", help="also time knn(backend=torch)")
    ap.add_argument("--skip-knn", action="store_true")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--knn-worker", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.knn_worker:
        knn_worker(args.knn_worker, args.n, args.knn_dim, args.k, args.seed, args.save)
        return

    knn_rows_table: list[str] = []
    if not args.skip_knn:  # first, while this process is small
        print(f"knn {args.n} x {args.knn_dim}, top-{args.k} (subprocesses) ...", flush=True)
        methods = ["bare", "faiss"] + (["torch"] if args.knn_torch else [])
        rows = bench_knn(args.n, args.knn_dim, args.k, args.seed, methods)
        names = {"faiss": "`knn(backend='faiss')`", "bare": "bare faiss IndexFlatIP.search", "torch": "`knn(backend='torch')`"}
        knn_rows_table = [
            "",
            f"## exact KNN: {args.n} x {args.knn_dim} float32, top-{args.k}, self-search",
            "",
            "| method | seconds | peak RSS MB | peak RSS before search MB | neighbour sets equal to bare faiss |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in rows:
            knn_rows_table.append(f"| {names[r['method']]} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | "
                                  f"{r['rss_before_mb']:.0f} | {r['agreement']:.4%} |")

    print(f"data: {args.n} rows, dim {args.dim}, k {args.k}", flush=True)
    d = make_data(args.n, args.dim, args.seed)
    t0 = time.perf_counter()
    knn_lists = {"a": knn(d["emb_a"], args.k, backend="faiss"), "b": knn(d["emb_b"], args.k, backend="faiss")}
    cmodel = PhashModel.search(d["codes"], args.k, backend="faiss")
    knn_lists["c"] = (cmodel.sims, cmodel.idx)
    print(f"searches (not timed in the chain): {time.perf_counter() - t0:.1f} s", flush=True)

    labels = d["labels"]
    sa, ia = knn_lists["a"]
    knn_rows = np.repeat(np.arange(args.n), ia.shape[1])
    t_a = tune_threshold(knn_rows, ia.ravel(), sa.ravel(), labels)
    params = {"t_a": t_a, "t_a_min2": round(t_a - 0.1, 2), "t_nb": t_a}

    vec_t: dict[str, float] = {}
    out = run_chain(d, knn_lists, args.k, params, vec_t)
    f1 = {name: row_f1(out[key].rows, out[key].cols, labels)
          for name, key in [("threshold + Min2 (model A)", "min2"), ("select on union (threshold + Min2)", "select"),
                            ("unit filter", "units"), ("chisel", "chisel")]}
    sb, ib = knn_lists["a_nb"]
    t_nb2 = tune_threshold(knn_rows, ib.ravel(), sb.ravel(), labels)
    f1["NB, one stage (model A)"] = row_f1(*_pairs(min2(sb, ib, t_nb2, t_nb2 - 0.1)), labels)
    ref_t: dict[str, float] = {}
    checks: dict[str, str] = {}
    if not args.skip_reference:
        print("per-row reference ...", flush=True)
        run_reference(d, knn_lists, params, out, ref_t, checks)

    lines = [
        f"# bench_post: {args.n} rows x {args.k} neighbours x 3 models (dim {args.dim}), "
        f"{os.cpu_count()} cores",
        "",
        f"thresholds: model A t={params['t_a']:.2f} (Min2 {params['t_a_min2']:.2f}), NB t={params['t_nb']:.2f}, "
        f"union t={params['t_u']:.2f} (Min2 {params['t_u_min2']:.2f}); "
        f"{int(out['conflicts'].sum())} unit conflicts removed",
        "",
        "| stage | vectorised s | per-row Python s | speed-up | same output | row F1 after (NB: re-tuned t) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for stage, sec in vec_t.items():
        ref = ref_t.get(stage)
        ref_s = "-" if ref is None else f"{ref:.2f}"
        ratio = "-" if ref is None else f"{ref / sec:.0f}x"
        score = f"{f1[stage]:.4f}" if stage in f1 else "-"
        lines.append(f"| {stage} | {sec:.3f} | {ref_s} | {ratio} | {checks.get(stage, '-')} | {score} |")
    total, ref_total = sum(vec_t.values()), sum(ref_t.values())
    lines.append(f"| **chain total** | **{total:.2f}** | {f'{ref_total:.1f}' if ref_t else '-'} | "
                 f"{f'{ref_total / total:.0f}x' if ref_t else '-'} | | |")

    lines += knn_rows_table
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")


def _pairs(m: Matches):
    return m.rows, m.cols


if __name__ == "__main__":
    main()
