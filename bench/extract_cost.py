"""Benchmark: feature extraction cost per image, on CPU or a GPU, for the scaling plan (bench/scale_plan.py).

Each measured configuration goes through the product's own path: ``build_backbone`` (random weights: speed does
not depend on them) -> ``ImageFiles`` over JPEG/PNG files on disk -> ``make_transform`` -> ``make_loader`` ->
``extract()`` on the chosen device, vectors gathered into one numpy array as the feature store receives them. The
images are the 205 real galaxies bundled under labeling/demo_data (Galaxy10 DECaLS, Galaxy Zoo SDSS examples, GZ2
examples; 256 x 256 JPEG and PNG), cycled to ``--images`` files; content does not change the speed.

For every backbone x image size it prints images/s and ms/image (best of ``--rounds`` runs, after a warm-up batch),
the feature dimension and the bytes per vector in the float16 store, the peak memory of the run (resident memory;
GPU memory on CUDA), and the ms one process spends reading, decoding and transforming one file: on a GPU that is
the CPU work each image needs, i.e. how many loader cores it takes to keep the GPU fed. Writes
``bench/results/extract_cost_<device>.json``.

    .venv/bin/python bench/extract_cost.py                     # CPU, resnet18 + resnet50 at 96/128/224 px
    .venv/bin/python bench/extract_cost.py --device cuda       # on a GPU machine (more images, loader workers)
    .venv/bin/python bench/extract_cost.py --backbones resnet18 --sizes 224 --images 256 --rounds 1

Defaults: CPU: 512 images (192 for resnet50 at 224 px, the slowest), 2 torch threads, decoding in-process (as the
worker runs it), batch 64, 2 rounds; about 2-3 minutes on 2 cores. CUDA: 4,096 images, loader workers = CPU cores
(at most 16), pinned memory, batch 256, 3 rounds. Needs only the repository and its virtualenv.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from extraction import decode_ms, demo_images  # noqa: E402  (the bundled real galaxies, as bench/extraction.py reads them)

from mlcore.features.backbone import BACKBONES, build_backbone  # noqa: E402
from mlcore.features.extraction import extract, pick_device  # noqa: E402
from mlcore.features.images import ImageFiles, make_loader, make_transform  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"
# resnet50 at 224 px runs ~16 images/s on 2 cores: fewer images keep the default CPU run near 2-3 minutes.
HEAVY_CPU_IMAGES = 192


def machine(device: torch.device, threads: int) -> str:
    """One line naming the hardware and software the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
            f"torch {torch.__version__}, {threads} torch threads")
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text


def reset_peaks(device: torch.device) -> None:
    """Start a new peak for this run: resident memory (Linux: writing 5 to clear_refs resets VmHWM) and GPU memory."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak then covers the whole process so far
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_once(model, loader, *, device: torch.device, dim: int, limit: int | None = None) -> float:
    """Seconds to turn the loader's files into feature vectors with ``extract()``, gathered as the store receives
    them; ``limit`` stops after that many batches (the warm-up)."""
    count = len(loader.dataset)
    vectors = np.empty((count, dim), dtype=np.float32)
    filled = 0
    started = time.perf_counter()
    for number, batch in enumerate(extract(model, loader, device=device), start=1):
        # extract() copies each batch's vectors back to the host, which waits for the GPU: the timing is honest.
        vectors[filled:filled + len(batch.keys)] = batch.vectors
        filled += len(batch.keys)
        if limit is not None and number >= limit:
            return time.perf_counter() - started
    elapsed = time.perf_counter() - started
    if filled != count:
        raise RuntimeError(f"extraction returned {filled} of {count} vectors")
    return elapsed


def measure(name: str, size: int, paths: list[Path], unique: list[Path], *, device: torch.device, batch_size: int,
            workers: int, rounds: int, threads: int) -> dict:
    """One row of the results: the best of ``rounds`` timed runs after a one-batch warm-up."""
    model, dim = build_backbone(name, seed=0), BACKBONES[name]
    dataset = ImageFiles(paths, np.arange(len(paths)), make_transform(size))
    # One loader for every round: its worker processes (persistent) start once, as in a long extraction.
    loader = make_loader(dataset, batch_size=batch_size, num_workers=workers, pin_memory=device.type == "cuda")
    # Warm-up: cuDNN/oneDNN choose kernels for each new input shape on first use; workers start.
    run_once(model, loader, device=device, dim=dim, limit=1)
    reset_peaks(device)
    times = [run_once(model, loader, device=device, dim=dim) for _ in range(rounds)]
    del loader  # stops the workers
    best = min(times)
    row = {
        "backbone": name, "image_size": size, "device": device.type,
        "images_per_s": len(paths) / best, "ms_per_image": best / len(paths) * 1e3,
        "feature_dim": dim, "bytes_per_vector_float16": dim * 2, "bytes_per_vector_float32": dim * 4,
        "images": len(paths), "rounds": rounds, "spread": max(times) / best,
        "batch_size": batch_size, "loader_workers": workers, "threads": threads,
        "peak_rss_mb": peak_rss_mb(),
        "decode_ms_per_image": decode_ms(unique, make_transform(size)),
        "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_average_after": os.getloadavg()[0],
    }
    if device.type == "cuda":
        row["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def source_images(unique: list[Path]) -> dict:
    """What the timed files are: count, formats and mean size (the scaling plan's image-storage figure reads this)."""
    from PIL import Image

    sizes, pixels, formats = [], [], {}
    for path in unique:
        with Image.open(path) as image:
            pixels.append(image.width * image.height)
            formats[image.format] = formats.get(image.format, 0) + 1
        sizes.append(path.stat().st_size)
    jpeg = [s for s, p in zip(sizes, unique, strict=True) if p.suffix.lower() in (".jpg", ".jpeg")]
    jpeg_pixels = [n for n, p in zip(pixels, unique, strict=True) if p.suffix.lower() in (".jpg", ".jpeg")]
    return {"distinct": len(unique), "formats": formats, "mean_bytes": float(np.mean(sizes)),
            "mean_pixels": float(np.mean(pixels)), "jpeg_count": len(jpeg),
            "jpeg_mean_bytes": float(np.mean(jpeg)) if jpeg else None,
            "jpeg_bytes_per_pixel": float(np.sum(jpeg) / np.sum(jpeg_pixels)) if jpeg else None}


def print_table(rows: list[dict]) -> None:
    header = (f"{'backbone':<9} {'px':>4} {'device':<6} {'images/s':>9} {'ms/image':>9} {'dim':>5} "
              f"{'B/vec f16':>9} {'images':>6} {'spread':>6} {'peak RSS':>9} {'decode ms':>9}"
              + (f" {'GPU MB':>7}" if any("peak_gpu_mb" in r for r in rows) else ""))
    print(header)
    print("-" * len(header))
    for r in rows:
        line = (f"{r['backbone']:<9} {r['image_size']:>4} {r['device']:<6} {r['images_per_s']:>9.1f} "
                f"{r['ms_per_image']:>9.2f} {r['feature_dim']:>5} {r['bytes_per_vector_float16']:>9,} "
                f"{r['images']:>6} {r['spread']:>6.2f} {r['peak_rss_mb']:>6.0f} MB {r['decode_ms_per_image']:>9.2f}")
        if "peak_gpu_mb" in r:
            line += f" {r['peak_gpu_mb']:>7.0f}"
        print(line)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--backbones", nargs="+", choices=sorted(BACKBONES), default=["resnet18", "resnet50"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 128, 224])
    parser.add_argument("--images", type=int, help="files per run (default: CPU 512, 192 for resnet50 at 224 "
                                                  "px; CUDA 4096)")
    parser.add_argument("--batch-size", type=int, help="default: CPU 64, CUDA 256")
    parser.add_argument("--workers", type=int, help="loader worker processes (default: CPU 0, i.e. decoding in "
                                                   "the extracting process; CUDA min(16, cores))")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: CPU 2, CUDA torch's default)")
    parser.add_argument("--rounds", type=int, help="timed runs per configuration, best kept (CPU 2, CUDA 3)")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/extract_cost_<device>.json)")
    parser.add_argument("--update", action="store_true", help="replace only the measured configurations' rows "
                                                               "in an existing JSON file (e.g. to measure one again)")
    args = parser.parse_args(argv)

    try:
        device = pick_device(args.device)
    except ValueError as exc:  # CUDA asked for where there is none
        raise SystemExit(f"extract_cost: {exc}") from None
    cuda = device.type == "cuda"
    if args.threads or not cuda:
        torch.set_num_threads(args.threads or 2)
    threads = torch.get_num_threads()
    batch_size = args.batch_size or (256 if cuda else 64)
    workers = args.workers if args.workers is not None else (min(16, os.cpu_count() or 1) if cuda else 0)
    rounds = args.rounds or (3 if cuda else 2)
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels once

    unique = demo_images()
    load_before = os.getloadavg()[0]
    rows = []
    print(f"{machine(device, threads)}; batch {batch_size}, {workers} loader workers, best of {rounds} round(s); "
          f"{len(unique)} distinct real galaxies cycled\n", flush=True)
    for name in args.backbones:
        for size in args.sizes:
            count = args.images or (4096 if cuda else HEAVY_CPU_IMAGES if (name, size) == ("resnet50", 224) else 512)
            paths = [unique[i % len(unique)] for i in range(count)]
            rows.append(measure(name, size, paths, unique, device=device, batch_size=batch_size, workers=workers,
                                rounds=rounds, threads=threads))
            r = rows[-1]
            print(f"  {name} @ {size} px: {r['images_per_s']:.1f} images/s", file=sys.stderr, flush=True)
    print_table(rows)
    print("\nspread: slowest / fastest round. peak RSS: the process's resident peak during the timed rounds. "
          "decode ms: one process reading, decoding and transforming one file (the CPU work behind each image).")
    load_after = os.getloadavg()[0]
    print(f"load average before: {load_before:.2f}, after: {load_after:.2f} ({os.cpu_count()} cores; other "
          "processes on a shared machine slow every figure)")

    out = args.out or RESULTS / f"extract_cost_{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.update and out.exists():
        measured = {(r["backbone"], r["image_size"]) for r in rows}
        kept = [r for r in json.loads(out.read_text())["rows"] if (r["backbone"], r["image_size"]) not in measured]
        rows = sorted(kept + rows, key=lambda r: (r["backbone"], r["image_size"]))
    result = {"bench": "bench/extract_cost.py", "machine": machine(device, threads),
              "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "device": device.type, "load_average_before_after": [load_before, load_after],
              "source_images": source_images(unique), "rows": rows}
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")


if __name__ == "__main__":
    main()
