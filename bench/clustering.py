"""Benchmark: k-means and scalable (landmark) spectral clustering at 20k and 100k synthetic 512-d feature vectors.

    .venv/bin/python bench/clustering.py            # 20k and 100k rows; sklearn's exact spectral on the 20k subset
    .venv/bin/python bench/clustering.py --quick    # 5k and 20k rows; exact on 5k (under half a minute)

The full run takes about 12 minutes on 2 shared cores, nearly all of it sklearn's exact SpectralClustering at 20k
rows (its shift-invert eigensolver factorises the 20k x 20k graph Laplacian: 75-710 s and 2 GB here, depending on
the data); everything else takes under a minute.

Every step (PCA, k-means, scalable spectral, exact spectral) runs in its own child process, so each one's peak
memory (VmHWM) is its own; the child loads its input from a temporary folder, times only the method, and saves
the labels for the parent to score. "peak MB" is the child's whole resident peak (Python, numpy, scikit-learn and
the input included); "extra MB" is how much the peak rose during the method itself.

The data: ``clustered_vectors`` with 20 clusters of unequal size and spread 1.0, which overlap enough that k-means
gets an ARI of about 0.85 and is not trivially right. The smaller size is the first rows of the larger set (rows are
independent draws, so that is a random subset). All methods cluster the same 50-component PCA output.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/synthetic.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # mlcore, when run from anywhere

N_CLUSTERS = 20
SPREAD = 1.0
PCA_COMPONENTS = 50
SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5k and 20k rows instead of 20k and 100k")
    parser.add_argument("--child", nargs=3, metavar=("STEP", "N", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, n_rows, folder = args.child
        run_step(step, int(n_rows), Path(folder))
        return

    sizes = (5_000, 20_000) if args.quick else (20_000, 100_000)
    exact_at = sizes[0]
    from synthetic import clustered_vectors

    with tempfile.TemporaryDirectory(prefix="bench-clustering-") as tmp:
        folder = Path(tmp)
        vectors, truth = clustered_vectors(max(sizes), n_clusters=N_CLUSTERS, spread=SPREAD, seed=SEED)
        np.save(folder / "vectors.npy", vectors)
        del vectors
        rows = []
        for n_rows in sizes:
            subset_truth = truth[:n_rows]
            pca = child("pca", n_rows, folder)
            rows.append((n_rows, f"PCA 512 -> {PCA_COMPONENTS} (L2-normalised rows)", pca, None, None))
            for step, name in (("kmeans", "k-means (sklearn, k-means++)"), ("spectral", "ScalableSpectral (LSC)")):
                measured = child(step, n_rows, folder)
                rows.append((n_rows, name, measured, ari(folder, step, n_rows, subset_truth), None))
            spectral = rows[-1][2]
            total = {"seconds": pca["seconds"] + spectral["seconds"],
                     "peak_mb": max(pca["peak_mb"], spectral["peak_mb"]), "extra_mb": None}
            rows.append((n_rows, "PCA + ScalableSpectral", total, None, None))
            if n_rows == exact_at:
                exact = child("exact", n_rows, folder)
                rows.append((n_rows, "exact SpectralClustering (sklearn, nearest_neighbors)", exact,
                             ari(folder, "exact", n_rows, subset_truth), None))
                agreement = adjusted_rand(labels(folder, "spectral", n_rows), labels(folder, "exact", n_rows))
                rows.append((n_rows, "ScalableSpectral vs exact", None, None, agreement))
        print_table(rows, args.quick)


def child(step: str, n_rows: int, folder: Path) -> dict:
    """Run one step in a fresh interpreter and return its {"seconds", "peak_mb", "extra_mb"}."""
    done = subprocess.run([sys.executable, __file__, "--child", step, str(n_rows), str(folder)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"step {step} at {n_rows} rows failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_step(step: str, n_rows: int, folder: Path) -> None:
    """The child's side: load the input, time one method, save its output, print the measurements as JSON."""
    from mlcore.clusters.kmeans import kmeans, reduce_pca
    from mlcore.clusters.spectral import ScalableSpectral

    if step == "pca":
        data = np.load(folder / "vectors.npy", mmap_mode="r")[:n_rows].copy()
    else:
        data = np.load(folder / f"pca_{n_rows}.npy")
    before = peak_mb()
    start = time.perf_counter()
    if step == "pca":
        output = reduce_pca(data, PCA_COMPONENTS, seed=SEED)[0]
    elif step == "kmeans":
        output = kmeans(data, N_CLUSTERS, seed=SEED).labels
    elif step == "spectral":
        output = ScalableSpectral(N_CLUSTERS, seed=SEED).fit_predict(data)
    elif step == "exact":
        from sklearn.cluster import SpectralClustering

        output = SpectralClustering(N_CLUSTERS, affinity="nearest_neighbors", random_state=SEED).fit_predict(data)
    else:
        raise SystemExit(f"unknown step {step!r}")
    seconds = time.perf_counter() - start
    after = peak_mb()
    np.save(folder / (f"pca_{n_rows}.npy" if step == "pca" else f"labels_{step}_{n_rows}.npy"), output)
    print(json.dumps({"seconds": seconds, "peak_mb": after, "extra_mb": after - before}))


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent
    through fork and exec, so a child would report the parent's peak (the 512-d data) as its own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


def labels(folder: Path, step: str, n_rows: int) -> np.ndarray:
    return np.load(folder / f"labels_{step}_{n_rows}.npy")


def ari(folder: Path, step: str, n_rows: int, truth: np.ndarray) -> float:
    return adjusted_rand(labels(folder, step, n_rows), truth)


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(a, b))


def print_table(rows: list, quick: bool) -> None:
    print(f"clustered_vectors: 512-d, {N_CLUSTERS} clusters, spread {SPREAD}, seed {SEED}; "
          f"{os.cpu_count()} CPU cores{' (--quick)' if quick else ''}")
    header = f"{'rows':>7}  {'method':<54} {'seconds':>8} {'peak MB':>8} {'extra MB':>8} {'ARI truth':>9} {'ARI':>6}"
    print(header)
    print("-" * len(header))
    for n_rows, name, measured, truth_ari, agreement in rows:
        seconds = peak = extra = ""
        if measured:
            seconds = f"{measured['seconds']:.1f}"
            peak = f"{measured['peak_mb']:.0f}"
            extra = "" if measured["extra_mb"] is None else f"{measured['extra_mb']:.0f}"
        truth_text = "" if truth_ari is None else f"{truth_ari:.3f}"
        agreement_text = "" if agreement is None else f"{agreement:.3f}"
        print(f"{n_rows:>7}  {name:<54} {seconds:>8} {peak:>8} {extra:>8} {truth_text:>9} {agreement_text:>6}")
    print("ARI truth: against the generating clusters. ARI (last column): between scalable and exact spectral.")


if __name__ == "__main__":
    main()
