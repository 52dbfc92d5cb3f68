"""Benchmark: feature extraction from JPEG files versus the bare model on decoded tensors, and the compute floor.

For ResNet18 (random weights) at 224 and 128 px on a fixed number of torch threads (2 by default) it times, each
pipeline run right after a bare run so that load from other processes hits both alike:

- pipeline: JPEG/PNG files on disk -> ``ImageFiles`` -> ``make_loader`` -> ``extract()`` -> rows of a numpy array;
  with the defaults (decoding in the main process, JPEG draft decoding), and variants: no draft decoding, one or
  two loader worker processes.
- bare: the same model over the same images, already decoded, transformed and batched (channels_last tensors),
  under ``torch.inference_mode``: what the pipeline would do if decoding were free.

and prints images/s for each, the ratio pipeline / bare (target >= 0.90), and the compute floor: the FLOPs of one
ResNet18 forward pass (counted with ``torch.utils.flop_counter.FlopCounterMode``) against a dense float32 matmul's
measured GFLOP/s on the same threads, i.e. the images/s this CPU could at most do, and the fraction achieved.

The images are the 205 real galaxies under labeling/demo_data (Galaxy10 DECaLS, Galaxy Zoo SDSS examples, GZ2
examples; 256 x 256 JPEG and PNG), repeated to ``--images`` (default 512; 205 with ``--quick``).

    .venv/bin/python bench/extraction.py [--quick] [--threads 2] [--images N] [--rounds R] [--batch-size B]
        [--sizes 224 128]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from mlcore.features.backbone import BACKBONES, build_backbone  # noqa: E402
from mlcore.features.extraction import extract  # noqa: E402
from mlcore.features.images import ImageFiles, ImageTransform, load_rgb, make_loader, make_transform  # noqa: E402

DEMO = REPO_ROOT / "labeling" / "demo_data"
IMAGE_FOLDERS = ("galaxy10/images", "gz_examples_sloan/images", "gz2_examples/images")
BACKBONE = "resnet18"


class FullSizeDecoding(ImageTransform):
    """The default transform with JPEG draft decoding turned off (the 'no draft' variant)."""

    min_decode_size = None


def demo_images() -> list[Path]:
    paths = sorted(p for folder in IMAGE_FOLDERS for p in (DEMO / folder).iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise SystemExit(f"no images under {DEMO}")
    return paths


def run_pipeline(model, paths, transform, *, batch_size: int, num_workers: int) -> tuple[float, np.ndarray]:
    """Files -> vectors through the real pipeline; seconds taken and the vectors."""
    dataset = ImageFiles(paths, np.arange(len(paths)), transform)
    vectors = np.empty((len(paths), BACKBONES[BACKBONE]), dtype=np.float32)
    filled = 0
    started = time.perf_counter()
    loader = make_loader(dataset, batch_size=batch_size, num_workers=num_workers)  # workers start inside the timing
    for batch in extract(model, loader, device="cpu"):
        vectors[filled:filled + len(batch.keys)] = batch.vectors
        filled += len(batch.keys)
    elapsed = time.perf_counter() - started
    del loader  # stops persistent workers
    if filled != len(paths):
        raise RuntimeError(f"pipeline returned {filled} of {len(paths)} vectors")
    return elapsed, vectors


def bare_batches(unique: list[Path], count: int, transform, batch_size: int) -> list[torch.Tensor]:
    """The batches the pipeline sees, decoded and transformed in advance, in channels_last layout."""
    pool = torch.stack([transform(load_rgb(path)) for path in unique])
    order = np.arange(count) % len(unique)
    return [pool[order[start:start + batch_size]].contiguous(memory_format=torch.channels_last)
            for start in range(0, count, batch_size)]


def run_bare(model, batches: list[torch.Tensor]) -> float:
    started = time.perf_counter()
    with torch.inference_mode():
        for images in batches:
            model(images)
    return time.perf_counter() - started


def flops_per_image(model, size: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, 3, size, size).contiguous(memory_format=torch.channels_last))
    return float(counter.get_total_flops())


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best dense float32 matmul rate on the current threads, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best / 1e9


def variants(size: int, quick: bool) -> list[tuple[str, ImageTransform, int]]:
    default = make_transform(size)
    chosen = [("files -> extract (default: in-process, draft)", default, 0)]
    if quick:
        return chosen
    # Draft decoding halves at most: with these 256 px files it only acts from 128 px down.
    no_draft = [("  same, no JPEG draft decoding", FullSizeDecoding(size, 1.0), 0)] if size <= 128 else []
    return chosen + no_draft + [
        ("  same, 1 loader worker process", default, 1),
        ("  same, 2 loader worker processes", default, 2),
    ]


def decode_ms(unique: list[Path], transform) -> float:
    """Milliseconds per image for ``ImageFiles`` to read, decode and transform one file (best of 2 passes)."""
    files = ImageFiles(unique, np.arange(len(unique)), transform)
    best = math.inf
    for _ in range(2):
        started = time.perf_counter()
        for index in range(len(files)):
            files[index]
        best = min(best, time.perf_counter() - started)
    return best / len(files) * 1e3


def measure_size(model, unique, paths, size, *, rounds, batch_size, quick) -> tuple[list[dict], float]:
    """Time each pipeline variant right after a bare run, ``rounds`` times over.

    Load from other processes drifts over minutes, so each variant's ratio is the median over rounds of
    bare time / pipeline time of adjacent runs, seconds apart; rates are the best run of each. The matmul rate for
    the floor is measured between them too (best of all rounds).

    Returns:
        Rows {label, rate, ratio, spread}, the bare model first, and the matmul GFLOP/s.
    """
    transform = make_transform(size)
    batches = bare_batches(unique, len(paths), transform, batch_size)
    candidates = variants(size, quick)
    # Warm-up: oneDNN builds its kernels for each new input shape on first use.
    run_bare(model, batches[:1])
    run_pipeline(model, paths[:batch_size], transform, batch_size=batch_size, num_workers=0)
    bare_times, times, ratios = [], {label: [] for label, _, _ in candidates}, {label: [] for label, _, _ in candidates}
    reference, gflops = None, 0.0
    for _ in range(rounds):
        gflops = max(gflops, matmul_gflops())
        for label, variant_transform, workers in candidates:
            bare_times.append(run_bare(model, batches))
            elapsed, vectors = run_pipeline(model, paths, variant_transform, batch_size=batch_size,
                                            num_workers=workers)
            times[label].append(elapsed)
            ratios[label].append(bare_times[-1] / elapsed)
            reference = vectors if reference is None else reference
            if workers and not np.allclose(vectors, reference, rtol=1e-3, atol=1e-4):
                raise RuntimeError(f"{label} gave other features than the in-process loader")
    rows = [{"label": "bare model, decoded tensors", "rate": len(paths) / min(bare_times), "ratio": 1.0,
             "spread": _spread(bare_times)}]
    for label, _, _ in candidates:
        rows.append({"label": label, "rate": len(paths) / min(times[label]),
                     "ratio": statistics.median(ratios[label]), "spread": _spread(times[label])})
    return rows, gflops


def _spread(times: list[float]) -> str:
    """Slowest over fastest run: how much the other processes on the machine disturbed this measurement."""
    return f"{max(times) / min(times):.2f}" if len(times) > 1 else "-"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="205 images, one round, default pipeline only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 128])
    args = parser.parse_args(argv)
    count = args.images or (205 if args.quick else 512)
    rounds = args.rounds or (1 if args.quick else 3)

    torch.set_num_threads(args.threads)
    unique = demo_images()
    paths = [unique[i % len(unique)] for i in range(count)]
    model = build_backbone(BACKBONE, seed=0).to(memory_format=torch.channels_last)
    print(f"{BACKBONE}, random weights, {args.threads} torch threads, {count} images ({len(unique)} distinct real "
          f"galaxies), batch {args.batch_size}, best of {rounds} round(s)\n")

    header = f"{'px':>4}  {'pipeline':<48} {'images/s':>9} {'vs bare':>8} {'spread':>7} {'of floor':>9}"
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        rows, gflops = measure_size(model, unique, paths, size, rounds=rounds, batch_size=args.batch_size,
                                    quick=args.quick)
        flops = flops_per_image(model, size)
        floor = gflops * 1e9 / flops
        for row in rows:
            print(f"{size:>4}  {row['label']:<48} {row['rate']:>9.1f} {row['ratio']:>8.2f} {row['spread']:>7} "
                  f"{row['rate'] / floor:>9.2f}")
        print(f"{size:>4}  {'compute floor (FLOPs/image vs matmul rate)':<48} {floor:>9.1f}"
              f"   {flops / 1e9:.2f} GFLOP/image, matmul {gflops:.0f} GFLOP/s")
        per_file, bare_ms = decode_ms(unique, make_transform(size)), 1e3 / rows[0]["rate"]
        print(f"{size:>4}  {'read+decode+transform, ms per file (default)':<48} {per_file:>9.2f} "
              f"{bare_ms / (bare_ms + per_file):>8.2f}   (vs bare if done in series; bare: {bare_ms:.1f} ms/image)")
    print("\nvs bare: median over rounds of bare time / pipeline time, each pipeline run timed right after a bare run"
          " (target >= 0.90).\nspread: slowest / fastest run."
          "\nof floor: images/s over the most the best measured matmul rate allows.")


if __name__ == "__main__":
    main()
