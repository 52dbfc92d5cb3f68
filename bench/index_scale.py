"""Benchmark: HNSW against IVF-PQ neighbour indexes as the catalogue grows, measured side by side in one run.

For each size, clustered 512-d synthetic vectors (bench/synthetic.py) go into a float16 FeatureStore, as extraction
leaves them, and each kind of NeighbourIndex is fitted on the store's memory map in a fresh process (so that its peak
RSS is its own) with FAISS's default threads. Then 1000 single queries, one thread, as the galaxy page asks them:
``similar(vector, 20, exclude_key=key, rerank_from=store.get)`` -- an ivfpq index re-scores its best 100 candidates
from the store; hnsw ignores rerank_from. Recall@20 is against exact cosine top-20 of the same queries. The ivfpq
codes alone (no re-ranking) are measured too. Prints a table and writes bench/results/index_scale.json.

    .venv/bin/python bench/index_scale.py [--sizes 100000,1000000] [--hnsw-max 1000000] [--queries 1000] [--quick]

Bytes per vector: the saved index file (FAISS index plus the 8-byte keys) over n. Peak RSS ("peak MB", VmHWM): the
whole fitting process, including the store pages the fit read through its memory map (1 KB per vector, which the
kernel reclaims under pressure) and the fit's own recall check. "anon MB": the highest RssAnon sampled during the
fit, the same without those file pages: the memory a build needs. The baseline before fitting is in the JSON.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthetic import clustered_vectors  # noqa: E402

from mlcore.features.store import FeatureStore  # noqa: E402
from mlcore.neighbours.index import NeighbourIndex  # noqa: E402
from mlcore.neighbours.unit_vectors import exact_top_k, unit_rows  # noqa: E402

K = 20
DIM = 512
WARM_UP = 20
KINDS = ("hnsw", "ivfpq")
RESULTS = Path(__file__).resolve().parent / "results" / "index_scale.json"


def machine() -> str:
    """One line naming the hardware and software the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB RAM, "
            f"faiss {faiss.__version__}")


def rss_mb(field: str) -> float:
    """VmRSS (now), VmHWM (peak) or RssAnon (now, without file pages) of this process, MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


@contextmanager
def anonymous_peak(every_s: float = 0.02):
    """Yield a dict whose "mb" becomes the highest RssAnon seen while the block ran, sampled every ``every_s``.

    RssAnon leaves out the file pages a memory map touched, which the kernel reclaims at will: it is the memory a
    build really needs, where VmHWM also counts the store's pages the fit read (1 KB per 512-d float16 vector).
    """
    peak, done = {"mb": rss_mb("RssAnon")}, threading.Event()

    def sample():
        while not done.wait(every_s):
            peak["mb"] = max(peak["mb"], rss_mb("RssAnon"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak["mb"] = max(peak["mb"], rss_mb("RssAnon"))


def prepared(n: int, folder: Path, queries: int) -> tuple[Path, Path]:
    """A float16 store of ``n`` clustered vectors under galaxy-like keys, and the exact top-20 of ``queries`` of them
    (an .npz of query keys and their true neighbours' keys, own key left out)."""
    vectors, _ = clustered_vectors(n, DIM, seed=0)
    keys = np.random.default_rng(1).permutation(n).astype(np.int64) * 10 + 7  # galaxy ids, not row numbers
    store = FeatureStore.create(folder / f"store-{n}", dim=DIM)
    store.append(keys, vectors)
    del vectors
    rows = np.sort(np.random.default_rng(2).choice(n, queries, replace=False))
    memmap = store.vectors()
    _, exact = exact_top_k(unit_rows(memmap[rows]), memmap, K + 1)
    truth = np.array([keys[found[found != row][:K]] for row, found in zip(rows, exact, strict=True)])
    np.savez(folder / f"truth-{n}.npz", query_keys=keys[rows], truth=truth)
    return store.path, folder / f"truth-{n}.npz"


def measure_one(kind: str, store_path: Path, truth_path: Path, index_path: Path) -> dict:
    """Fit, save and query one index in this process; the figures of one table row."""
    store = FeatureStore.open(store_path)
    before = rss_mb("VmRSS")
    started = time.perf_counter()
    with anonymous_peak() as anonymous:
        index = NeighbourIndex(kind=kind).fit(store.vectors(), store.keys())
    fit_s = time.perf_counter() - started
    index.save(index_path)
    peak = rss_mb("VmHWM")
    n = index.n_
    data = np.load(truth_path)
    row = {"kind": kind, "n": n, "build_s": round(index.build_seconds_, 2),
           "build_s_per_100k": round(index.build_seconds_ * 100_000 / n, 2),
           "bytes_per_vector": round(index_path.stat().st_size / n, 1), "peak_rss_mb": round(peak),
           "peak_anonymous_rss_mb": round(anonymous["mb"]), "rss_before_build_mb": round(before),
           "fit_s_with_recall_check": round(fit_s, 2), "fit_recall_at_20": round(index.recall_at_20_, 4)}
    if index.reranked_recall_at_20_ is not None:
        row["fit_reranked_recall_at_20"] = round(index.reranked_recall_at_20_, 4)
    for label, rerank_from in (("", store.get), ("_codes_only", None)) if kind == "ivfpq" else (("", store.get),):
        latencies, found = timed_queries(index, store, data["query_keys"], rerank_from)
        p50, p95 = np.percentile(latencies, [50, 95])
        recall = np.mean([len(np.intersect1d(f, t)) / K for f, t in zip(found, data["truth"], strict=True)])
        row |= {f"query_p50_ms{label}": round(float(p50), 3), f"query_p95_ms{label}": round(float(p95), 3),
                f"recall_at_20{label}": round(float(recall), 4)}
    return row


def timed_queries(index: NeighbourIndex, store: FeatureStore, query_keys: np.ndarray, rerank_from):
    """(wall ms per query, found keys per query) of ``similar`` as the galaxy page calls it."""
    vectors = store.get(query_keys)
    for vector, key in zip(vectors[:WARM_UP], query_keys[:WARM_UP], strict=True):
        index.similar(vector, K, exclude_key=int(key), rerank_from=rerank_from)
    latencies, found = [], []
    for vector, key in zip(vectors, query_keys, strict=True):
        started = time.perf_counter()
        pairs = index.similar(vector, K, exclude_key=int(key), rerank_from=rerank_from)
        latencies.append((time.perf_counter() - started) * 1e3)
        found.append([k for k, _ in pairs])
    return np.array(latencies), found


def in_child(kind: str, store_path: Path, truth_path: Path, index_path: Path) -> dict:
    """measure_one in a fresh interpreter, so each row's peak RSS is its own."""
    done = subprocess.run([sys.executable, __file__, "--child", kind, str(store_path), str(truth_path),
                           str(index_path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} at {store_path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_row(r: dict) -> None:
    codes = (f"{r['recall_at_20_codes_only']:.4f} / {r['query_p50_ms_codes_only']:.2f} ms"
             if "recall_at_20_codes_only" in r else "")
    print(f"{r['kind']:<6} | {r['n']:>9,} | {r['build_s']:>8.1f} | {r['build_s_per_100k']:>9.1f} | "
          f"{r['bytes_per_vector']:>9.0f} | {r['peak_rss_mb']:>8,} | {r['peak_anonymous_rss_mb']:>8,} | "
          f"{r['query_p50_ms']:>7.3f} | "
          f"{r['query_p95_ms']:>7.3f} | {r['recall_at_20']:>9.4f} | {codes:>19}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated n (default %(default)s)")
    parser.add_argument("--hnsw-max", type=int, default=1_000_000,
                        help="skip hnsw above this n (its float32 copy and build time; default %(default)s)")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="20k and 60k vectors, 300 queries")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *paths = args.child
        print(json.dumps(measure_one(kind, *map(Path, paths))))
        return
    sizes = [20_000, 60_000] if args.quick else [int(size) for size in args.sizes.split(",")]
    queries = 300 if args.quick else args.queries

    result = {"bench": "bench/index_scale.py", "machine": machine(), "dim": DIM, "k": K, "queries": queries,
              "load_average_before": round(os.getloadavg()[0], 2), "rows": []}
    print(f"{result['machine']}; {DIM}-d float16 store, {queries} single queries per row on one thread, k={K}; "
          f"load average before: {result['load_average_before']:.2f}", flush=True)
    header = (f"{'kind':<6} | {'n':>9} | {'build s':>8} | {'s / 100k':>9} | {'B/vector':>9} | {'peak MB':>8} | "
              f"{'anon MB':>8} | {'p50 ms':>7} | {'p95 ms':>7} | {'recall@20':>9} | {'codes only: rec/p50':>19}")
    print(header)
    print("-" * len(header), flush=True)
    with tempfile.TemporaryDirectory(prefix="index_scale-") as folder:
        for n in sizes:
            store_path, truth_path = prepared(n, Path(folder), min(queries, n))
            for kind in KINDS:
                if kind == "hnsw" and n > args.hnsw_max:
                    print(f"{kind:<6} | {n:>9,} | skipped: above --hnsw-max {args.hnsw_max:,}", flush=True)
                    continue
                row = in_child(kind, store_path, truth_path, Path(folder) / f"{kind}-{n}.faiss")
                (Path(folder) / f"{kind}-{n}.faiss").unlink()
                result["rows"].append(row)
                print_row(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(result, indent=1) + "\n")  # after every row: a partial run counts
            shutil.rmtree(store_path)  # 1 GB at a million: the next size needs the disk more
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"load average after: {result['load_average_after']:.2f}; written to {args.out}")


if __name__ == "__main__":
    main()
