"""Benchmark: a 1,000,000 x 512 float16 FeatureStore written in appends of 50k, then random lookups.

Writes synthetic clustered vectors (bench/synthetic.py) under random galaxy ids into a temporary directory (removed
afterwards), reports the size on disk and the append time, then asks the kernel to drop the store's files from the
page cache (posix_fadvise DONTNEED on those two files only) and measures get() of 1 and of 20 random keys in a fresh
process: first cold (each row read from disk), then the same keys again warm. The fresh process also reports its
memory (/proc/self/status) before and after the lookups: anonymous memory holds the sorted key index, file-backed
memory only the pages the lookups touched, far below the size of the vector file. Prints a table.

    .venv/bin/python bench/feature_store.py [--quick] [--rows 1000000] [--lookups 1000] [--dir /tmp]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthetic import clustered_vectors  # noqa: E402

from mlcore.features.store import FeatureStore  # noqa: E402

DIM = 512
CHUNK = 50_000
NEEDED_FREE_BYTES = 3 * 10**9


def memory_mb() -> dict[str, float]:
    """VmRSS, RssAnon and RssFile of this process in MiB."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def percentiles_ms(seconds: list[float]) -> str:
    ms = np.array(seconds) * 1e3
    return f"{np.percentile(ms, 50):.3f} / {np.percentile(ms, 95):.3f}"


def look_up(path: str, lookups: int) -> dict:
    """Runs in a fresh process: open the store, time random get() calls cold then warm, report memory."""
    report = {"memory_before_open": memory_mb()}
    started = time.perf_counter()
    store = FeatureStore.open(path)
    report["open_s"] = time.perf_counter() - started
    report["memory_after_open"] = memory_mb()
    rng = np.random.default_rng(3)
    singles = [np.array(store.keys()[rng.integers(len(store), size=1)]) for _ in range(lookups)]
    twenties = [np.array(store.keys()[rng.integers(len(store), size=20)]) for _ in range(lookups)]
    report["memory_after_sampling_keys"] = memory_mb()
    for label in ("cold", "warm"):
        for size, key_sets in ((1, singles), (20, twenties)):
            times = []
            for keys in key_sets:
                started = time.perf_counter()
                store.get(keys)
                times.append(time.perf_counter() - started)
            report[f"get {size} {label}"] = percentiles_ms(times)
        report[f"memory_after_{label}"] = memory_mb()
    report["rows_touched"] = lookups * 21
    return report


def drop_from_page_cache(path: Path) -> None:
    """Ask the kernel to forget this file's cached pages (clean after fsync), so the first lookups are cold."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def write_store(path: Path, rows: int) -> dict:
    keys = np.random.default_rng(1).permutation(rows).astype(np.int64) * 7 + 1_000_003  # ids in no order
    store = FeatureStore.create(path, dim=DIM, dtype="float16")
    append_s = []
    for number, start in enumerate(range(0, rows, CHUNK)):
        count = min(CHUNK, rows - start)
        vectors, _ = clustered_vectors(count, DIM, seed=number)  # generating is not timed
        started = time.perf_counter()
        store.append(keys[start:start + count], vectors)
        append_s.append(time.perf_counter() - started)
    disk_bytes = sum(file.stat().st_size for file in path.iterdir())
    for name in ("vectors.bin", "keys.bin"):
        drop_from_page_cache(path / name)
    return {"appends": len(append_s), "append_total_s": sum(append_s), "append_p50_s": float(np.median(append_s)),
            "append_max_s": max(append_s), "disk_bytes": disk_bytes, "vector_bytes": rows * DIM * 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, 300 lookups of each size")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the temporary store goes")
    parser.add_argument("--lookups-in", help=argparse.SUPPRESS)  # the child process's mode
    args = parser.parse_args()
    if args.lookups_in:
        print(json.dumps(look_up(args.lookups_in, args.lookups)))
        return
    rows, lookups = (100_000, 300) if args.quick else (args.rows, args.lookups)

    free = shutil.disk_usage(args.dir).free
    if free < NEEDED_FREE_BYTES:
        print(f"Not running: {args.dir} has {free / 1e9:.1f} GB free and this benchmark wants 3 GB. "
              f"Pass --dir to put the temporary store somewhere roomier.")
        sys.exit(1)
    workdir = Path(tempfile.mkdtemp(prefix="bench_feature_store_", dir=args.dir))
    try:
        written = write_store(workdir / "features", rows)
        child = subprocess.run([sys.executable, __file__, "--lookups-in", str(workdir / "features"),
                                "--lookups", str(lookups)], capture_output=True, text=True, check=True)
        looked = json.loads(child.stdout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    gb = written["disk_bytes"] / 1e9
    lines = [
        ("rows x dim, dtype", f"{rows:,} x {DIM}, float16"),
        ("appends of 50k: total / p50 / max s",
         f"{written['append_total_s']:.1f} / {written['append_p50_s']:.2f} / {written['append_max_s']:.2f}"
         f"  ({written['vector_bytes'] / 1e6 / written['append_total_s']:.0f} MB/s)"),
        ("size on disk", f"{gb:.3f} GB ({written['disk_bytes'] / 2**30:.3f} GiB), vectors alone "
                         f"{written['vector_bytes'] / 1e9:.3f} GB"),
        ("open (map keys, sort them) s", f"{looked['open_s']:.3f}"),
    ]
    for label in ("cold", "warm"):
        for size in (1, 20):
            lines.append((f"get() of {size} key(s), {label}: p50 / p95 ms", looked[f"get {size} {label}"]))
    for stage in ("before_open", "after_open", "after_cold", "after_warm"):
        memory = looked[f"memory_{stage}"]
        lines.append((f"RSS {stage.replace('_', ' ')}: total / anon / file MiB",
                      f"{memory['VmRSS']:.0f} / {memory['RssAnon']:.0f} / {memory['RssFile']:.0f}"))
    lines.append(("rows looked up (each way)", f"{looked['rows_touched']:,} of {rows:,}, "
                                               f"vector file {written['vector_bytes'] / 2**20:.0f} MiB"))
    width = max(len(name) for name, _ in lines)
    print(f"{'measure':<{width}} | value")
    print("-" * (width + 40))
    for name, value in lines:
        print(f"{name:<{width}} | {value}")


if __name__ == "__main__":
    main()
