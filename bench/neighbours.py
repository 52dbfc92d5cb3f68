"""Benchmark: nearest neighbours of a galaxy through NeighbourIndex.similar, against numpy brute force.

For each size, clustered 512-d synthetic vectors (bench/synthetic.py) are indexed with the default NeighbourIndex
(HNSW above 20k vectors) and with kind="exact" (FAISS brute force). Queries are stored vectors asking for their 20
neighbours without themselves, exactly as the galaxy page does. Recall@20 is measured against numpy brute force
(normalised matrix @ query, argpartition), whose own latency is timed in the same run. Prints a table.

    .venv/bin/python bench/neighbours.py [--quick] [--sizes 100000 300000] [--queries 300]

The CPU may be shared: the load average is printed with the table, and p95 is the figure that suffers first. The
"CPU p95" column (process CPU time per query, all threads) tells the work a query costs from time spent waiting for a
core: wall p95 far above CPU p95 means the query was preempted by other processes, not that it did more work.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthetic import clustered_vectors  # noqa: E402

from mlcore.neighbours.index import NeighbourIndex  # noqa: E402

K = 20
WARM_UP = 20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def numpy_top_k(unit: np.ndarray, query: np.ndarray, own_row: int) -> np.ndarray:
    """Rows of the K best cosines to ``query`` (already unit length) except ``own_row``, best first."""
    scores = unit @ query
    scores[own_row] = -np.inf
    top = np.argpartition(-scores, K)[:K]
    return top[np.argsort(-scores[top])]


def timed_similar(index: NeighbourIndex, vectors: np.ndarray, keys: np.ndarray, rows: np.ndarray):
    """(wall ms, CPU ms, found keys) per query of index.similar(vector, K, exclude_key=key)."""
    for row in rows[:WARM_UP]:
        index.similar(vectors[row], K, exclude_key=int(keys[row]))
    wall, cpu, found = [], [], []
    for row in rows:
        started, started_cpu = time.perf_counter(), time.process_time()
        pairs = index.similar(vectors[row], K, exclude_key=int(keys[row]))
        wall.append((time.perf_counter() - started) * 1e3)
        cpu.append((time.process_time() - started_cpu) * 1e3)
        found.append([key for key, _ in pairs])
    return np.array(wall), np.array(cpu), found


def recall(found: list[list[int]], truth: list[np.ndarray]) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth, strict=True)]))


def measure(n: int, queries: int) -> list[dict]:
    vectors, _ = clustered_vectors(n, seed=0)
    keys = np.random.default_rng(1).permutation(n).astype(np.int64) * 10 + 7  # galaxy ids, not row numbers
    rows = np.random.default_rng(2).choice(n, queries, replace=False)

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    truth, numpy_ms, numpy_cpu_ms = [], [], []
    for row in rows:
        started, started_cpu = time.perf_counter(), time.process_time()
        top = numpy_top_k(unit, unit[row], row)
        numpy_ms.append((time.perf_counter() - started) * 1e3)
        numpy_cpu_ms.append((time.process_time() - started_cpu) * 1e3)
        truth.append(keys[top])
    del unit
    results = [{"n": n, "method": "numpy brute force", "build_s": 0.0, "latency": np.array(numpy_ms),
                "cpu": np.array(numpy_cpu_ms), "recall": 1.0, "fit_recall": None}]

    for kind in ("auto", "exact"):
        index = NeighbourIndex(kind=kind).fit(vectors, keys)
        latencies, cpu, found = timed_similar(index, vectors, keys, rows)
        label = f"similar() {index.kind_}" + (f" M={index.hnsw_m} efC={index.ef_construction} "
                                                f"efS={index.ef_search}" if index.kind_ == "hnsw" else "")
        results.append({"n": n, "method": label, "build_s": index.build_seconds_, "latency": latencies, "cpu": cpu,
                        "recall": recall(found, truth), "fit_recall": index.recall_at_20_})
        del index
    for result in results:
        result["peak_rss_mb"] = peak_rss_mb()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30k and 60k vectors, 200 queries")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    sizes, queries = ([30_000, 60_000], 200) if args.quick else (args.sizes, args.queries)

    print(f"{queries} single queries per row, k={K}, 512-d, FAISS threads: 1 per query; "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    header = (f"{'n':>8} | {'method':<38} | {'build s':>7} | {'p50 ms':>7} | {'p95 ms':>7} | "
              f"{'CPU p95':>7} | {'recall@20':>9} | {'fit recall':>10} | {'peak RSS MB':>11}")
    print(header)
    print("-" * len(header), flush=True)
    for n in sizes:
        for r in measure(n, queries):
            fit_recall = "" if r["fit_recall"] is None else f"{r['fit_recall']:.4f}"
            p50, p95 = np.percentile(r["latency"], [50, 95])
            print(f"{r['n']:>8} | {r['method']:<38} | {r['build_s']:>7.1f} | {p50:>7.3f} | {p95:>7.3f} | "
                  f"{np.percentile(r['cpu'], 95):>7.3f} | {r['recall']:>9.4f} | {fit_recall:>10} | "
                  f"{r['peak_rss_mb']:>11.0f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
