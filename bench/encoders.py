"""Encoder speed on this machine: embedding throughput, one training step, peak RSS.

    .venv/bin/python bench/encoders.py                         # defaults below (a few minutes on 2 cores)
    .venv/bin/python bench/encoders.py --backbone eca_nfnet_l1 --image-size 512 --batch 8

Parts, each in its own subprocess so its peak RSS (resource.getrusage ru_maxrss) is its own:

- image embed: `ImageEncoder` (timm backbone, random weights, GeM, neck) under inference_mode on
  random (B, 3, S, S) tensors: images/s of the model alone (no JPEG decoding).
- image train step: forward + ArcFace (1,000 classes) + backward + clip + AdamW step, seconds.
- text embed: the shipped all-MiniLM-L6-v2 `TextEncoder` on real-looking titles (tokenisation
  included): titles/s.
- text train step: as above for MiniLM.

On CUDA (if present) the same parts run on the GPU. Writes bench/results/encoders.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "encoders.md"
TITLES = [
    "Paper Bag Victoria Secret", "Double Tape 3M VHB 12 mm x 4,5 m ORIGINAL / DOUBLE FOAM TAPE",
    "Maling TTS Canned Pork Luncheon Meat 397 gr", "Daster Batik Lengan pendek - Motif Acak / Campur - Leher Kancing",
    "Nescafe Eclair Latte 220ml", "CELANA WANITA (BB 45-84 KG)Harem wanita (bisa cod)",
    "Jubah anak size 1-12 thn", "KULOT PLISKET SALUR /CANDY PLISKET /WISH KULOT SALUR",
    "[LOGU] Tempelan kulkas magnet angka / tempelan kulkas", "BIG SALE SEPATU PANTOFEL KULIT KEREN KERJA KANTOR PRIA",
]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn, repeat: int) -> float:
    fn()  # warm-up (allocations, lazy init)
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - started) / repeat


def part_image(args, train: bool) -> dict:
    import torch

    from prodmatch.encoders import create_encoder
    from prodmatch.encoders.arcface import ArcFace

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    enc = create_encoder("image", {"backbone": args.backbone, "image_size": args.image_size, "dim": 512}).to(device)
    x = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device)
    if not train:
        enc.eval()

        def step():
            with torch.inference_mode():
                enc(x)
        seconds = _timed(step, args.repeat)
        return {"part": f"image embed {args.backbone} @{args.image_size}px", "batch": args.batch,
                "per_second": args.batch / seconds, "unit": "images/s", "seconds": seconds, "rss_mb": peak_rss_mb()}
    head = ArcFace(512, 1000).to(device)
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=1e-4)
    labels = torch.randint(0, 1000, (args.batch,), device=device)
    enc.train()

    def step():
        loss = torch.nn.functional.cross_entropy(head(enc(x), labels), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = _timed(step, max(1, args.repeat // 2))
    return {"part": f"image train step {args.backbone} @{args.image_size}px", "batch": args.batch,
            "per_second": args.batch / seconds, "unit": "images/s", "seconds": seconds, "rss_mb": peak_rss_mb()}


def part_text(args, train: bool) -> dict:
    import torch

    from prodmatch.encoders import create_encoder
    from prodmatch.encoders.arcface import ArcFace

    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    enc = create_encoder("text", {"max_length": args.max_length, "dim": 384}).to(device)
    titles = [TITLES[i % len(TITLES)] + f" {i}" for i in range(args.text_batch)]
    import pandas as pd

    frame = pd.DataFrame({"title": titles, "label_group": range(len(titles))})
    labels = torch.arange(len(titles), device=device) % 1000
    ds = enc.dataset(frame, train=train, labels=labels.cpu().numpy() if train else None)

    def make_batch():
        batch, _ = enc.collate([ds[i] for i in range(len(ds))])
        return {k: v.to(device) for k, v in batch.items()} if isinstance(batch, dict) else batch.to(device)

    if not train:
        enc.eval()

        def step():
            with torch.inference_mode():
                enc(make_batch())
        seconds = _timed(step, args.repeat)
        return {"part": f"text embed MiniLM-L6 (max_length {args.max_length})", "batch": args.text_batch,
                "per_second": args.text_batch / seconds, "unit": "titles/s", "seconds": seconds, "rss_mb": peak_rss_mb()}
    head = ArcFace(384, 1000).to(device)
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=1e-4)
    enc.train()

    def step():
        loss = torch.nn.functional.cross_entropy(head(enc(make_batch()), labels), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(enc.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = _timed(step, max(1, args.repeat // 2))
    return {"part": f"text train step MiniLM-L6 (max_length {args.max_length})", "batch": args.text_batch,
            "per_second": args.text_batch / seconds, "unit": "titles/s", "seconds": seconds, "rss_mb": peak_rss_mb()}


PARTS = {
    "image-embed": lambda a: part_image(a, False),
    "image-train": lambda a: part_image(a, True),
    "text-embed": lambda a: part_text(a, False),
    "text-train": lambda a: part_text(a, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="eca_nfnet_l0")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16, help="image batch")
    parser.add_argument("--text-batch", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--part", choices=sorted(PARTS), help=argparse.SUPPRESS)  # one part, JSON out (internal)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.part:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(PARTS[args.part](args)))
        return
    import torch

    base = [sys.executable, __file__, "--backbone", args.backbone, "--image-size", str(args.image_size),
            "--batch", str(args.batch), "--text-batch", str(args.text_batch), "--max-length", str(args.max_length),
            "--repeat", str(args.repeat), "--threads", str(args.threads)]
    rows = []
    for name in ("image-embed", "image-train", "text-embed", "text-train"):
        done = subprocess.run([*base, "--part", name], capture_output=True, text=True, env=os.environ)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"part {name} failed")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], file=sys.stderr)
    threads = args.threads or torch.get_num_threads()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {os.cpu_count()} cores, torch threads {threads}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [f"# encoders bench ({device}; torch {torch.__version__}; random weights for the image backbone)", "",
             f"load average at the end: {load} (other processes share the cores: compare runs at similar load)", "",
             "| part | batch | throughput | seconds per batch / step | peak RSS MB |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['part']} | {r['batch']} | {r['per_second']:.1f} {r['unit']} | {r['seconds']:.3f} | {r['rss_mb']:.0f} |")
    lines += ["", f"command: `.venv/bin/python bench/encoders.py --backbone {args.backbone} --image-size {args.image_size} "
              f"--batch {args.batch} --text-batch {args.text_batch} --max-length {args.max_length} --repeat {args.repeat}"
              f"{f' --threads {args.threads}' if args.threads else ''}`"]
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
