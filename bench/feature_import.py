"""Benchmark: import_features of a million 512-d float32 vectors (an .npy array and its ids file) in bounded memory.

For each size, an .npy array of clustered float32 vectors (bench/synthetic.py) and an ids.txt are written to a
temporary folder in chunks. A fresh process on a fresh, migrated database creates one galaxy per row (in batches),
resets its peak-memory mark (/proc/self/clear_refs), imports the file with the same service as `manage.py
import_features` and reports the seconds, rows/s and the peak resident memory of the import alone. The .npy file is
memory-mapped and read a chunk (32 MB of float32) at a time, so the peak stays near the chunk and the per-row
bookkeeping (16 bytes of key lookup and 8 of row number per vector), far below the file's size.

    .venv/bin/python bench/feature_import.py [--sizes 100000,1000000] [--dim 512] [--postgres URL | --sqlite]

The PostgreSQL server defaults to the local one; a throw-away database `bench_features_<pid>` is created on it and
dropped afterwards.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "bench"))
from pgdb import DEFAULT_POSTGRES, postgres_database  # noqa: E402
from synthetic import clustered_vectors  # noqa: E402

WRITE_CHUNK = 50_000
GALAXY_BATCH = 10_000


def write_files(folder: Path, n: int, dim: int) -> tuple[Path, Path]:
    """The .npy array (written through a memory map, a chunk at a time) and its ids file."""
    path, ids = folder / "features.npy", folder / "ids.txt"
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, WRITE_CHUNK):
        stop = min(start + WRITE_CHUNK, n)
        array[start:stop] = clustered_vectors(stop - start, dim, seed=start)[0]
    array.flush()
    del array
    with open(ids, "w") as handle:
        for start in range(0, n, WRITE_CHUNK):
            handle.write("".join(f"g{i}\n" for i in range(start, min(start + WRITE_CHUNK, n))))
    return path, ids


def memory_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> bool:
    """Start the peak-memory mark (VmHWM) afresh from here: writing 5 to clear_refs does that (Linux 4.0+)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(database_url: str, folder: str, n: int) -> dict:
    """Runs in the child process: migrate, create the galaxies, import."""
    os.environ["DATABASE_URL"] = database_url
    os.environ["GALAXY_FEATURES_ROOT"] = str(Path(folder) / "features")
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labeling.settings")
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from labeling.models import FeatureSet, Galaxy
    from labeling.services.imports.datasets import dataset_get_or_create
    from labeling.services.imports.features import features_import

    call_command("migrate", verbosity=0)
    dataset = dataset_get_or_create(name="bench")
    started = time.perf_counter()
    for start in range(0, n, GALAXY_BATCH):
        Galaxy.objects.bulk_create([Galaxy(dataset=dataset, external_id=f"g{i}")
                                    for i in range(start, min(start + GALAXY_BATCH, n))])
    galaxies_s = time.perf_counter() - started
    before_mb = memory_mb("VmRSS")
    clean = reset_peak()
    started = time.perf_counter()
    report = features_import(dataset_name="bench", name="outside", path=Path(folder) / "features.npy",
                             ids=Path(folder) / "ids.txt")
    seconds = time.perf_counter() - started
    feature_set = FeatureSet.objects.get(pk=report.feature_set)
    store_bytes = sum(f.stat().st_size for f in feature_set.store_dir.iterdir())
    return {"rows": n, "imported": report.imported, "count": feature_set.count, "seconds": seconds,
            "galaxies_s": galaxies_s, "before_mb": before_mb, "peak_mb": memory_mb("VmHWM"), "clean_peak": clean,
            "store_bytes": store_bytes}


def run_child(database_url: str, folder: Path, n: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", database_url, str(folder), str(n)],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"benchmark run of {n} rows failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="vectors per run, comma-separated")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, folder, n = args.child
        print(json.dumps(measure(url, folder, int(n))))
        return

    print(f"{'rows':>9} {'dim':>4} {'.npy file':>9} {'import':>8} {'rows/s':>7} {'peak RSS':>9} {'RSS before':>10} "
          f"{'peak/file':>9} {'store':>8}   ({'SQLite' if args.sqlite else 'PostgreSQL'}; peak RSS is the "
          "import's own)")
    for n in (int(size) for size in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-features-") as folder:
            path, _ = write_files(Path(folder), n, args.dim)
            size = path.stat().st_size
            if args.sqlite:
                result = run_child(f"sqlite:///{folder}/bench.sqlite3", Path(folder), n)
            else:
                url, drop = postgres_database(args.postgres, "bench_features")
                try:
                    result = run_child(url, Path(folder), n)
                finally:
                    drop()
        assert result["imported"] == result["count"] == n, result
        peak = result["peak_mb"] if result["clean_peak"] else float("nan")
        print(f"{n:>9,} {args.dim:>4} {size / 1e9:>6.2f} GB {result['seconds']:>6.1f} s "
              f"{n / result['seconds']:>7,.0f} {peak:>6.0f} MB {result['before_mb']:>7.0f} MB "
              f"{peak * 2**20 / size:>9.3f} {result['store_bytes'] / 1e9:>5.2f} GB")


if __name__ == "__main__":
    main()
