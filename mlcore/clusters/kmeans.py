"""PCA, k-means and the choice of k for feature vectors (arrays in, arrays out; no Django).

Feature vectors are compared by cosine, so :func:`reduce_pca` L2-normalises rows before projecting; k-means and
spectral clustering (:mod:`mlcore.clusters.spectral`) then run on the reduced vectors, where Euclidean distance stands
in for cosine distance and a few dozen components carry most of the variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

# Below this many matrix entries an exact SVD takes well under a second, and the randomised solver's approximation
# buys nothing; above it (e.g. 100k x 512) the randomised solver is several times faster.
RANDOMISED_PCA_ABOVE = 2_000_000

# k-means with fewer rows x clusters than this runs on one OpenMP thread. On 2 cores shared with the web server and
# the worker, each Lloyd iteration's thread barrier can wait a whole scheduler slice: measured with the cores busy,
# 500 rows x 6 clusters took 2.3 s on 2 threads and 0.02 s on one. Above it each barrier guards enough work that a
# stall costs little (100k x 20: 1.2 s on two busy threads, 0.6 s on one), and an idle second core nearly halves it.
SINGLE_THREAD_BELOW = 1_000_000


@dataclass(frozen=True)
class KMeansResult:
    """Outcome of :func:`kmeans`.

    Attributes:
        labels: cluster of each row, int64 (n,), values in 0..k-1.
        centroids: float32 (k, d).
        inertia: sum of squared distances from each row to its centroid.
    """

    labels: np.ndarray
    centroids: np.ndarray
    inertia: float


def _as_matrix(vectors, what: str = "vectors") -> np.ndarray:
    """Check that ``vectors`` is a non-empty, finite 2-D array and return it as C-contiguous float32.

    Raises:
        ValueError: naming the shape when the input is not 2-D, has no rows or no columns, or holds NaN/inf.
    """
    matrix = np.asarray(vectors)
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (rows x dimensions), got shape {matrix.shape}")
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"{what} is empty: shape {matrix.shape}")
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not np.isfinite(matrix).all():
        raise ValueError(f"{what} of shape {matrix.shape} contains NaN or infinite values")
    return matrix


def _check_n_clusters(k: int, n_rows: int, what: str = "k") -> None:
    """Raise ValueError unless 2 <= ``k`` <= ``n_rows``, naming both numbers."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ValueError(f"{what} must be an integer, got {k!r}")
    if k < 2:
        raise ValueError(f"{what}={k} is too small: clustering needs at least 2 clusters")
    if k > n_rows:
        raise ValueError(f"{what}={k} exceeds the number of rows ({n_rows}): each cluster needs at least one row")


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero rather than becoming NaN)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, np.finfo(np.float32).tiny)


def _threads_for(work: int):
    """Context limiting OpenMP to one thread for small k-means problems (see SINGLE_THREAD_BELOW)."""
    return threadpool_limits(limits=1, user_api="openmp") if work < SINGLE_THREAD_BELOW else nullcontext()


def reduce_pca(vectors, n_components: int = 50, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Project L2-normalised rows onto their leading principal components.

    Args:
        vectors: (n, d) feature vectors.
        n_components: components wanted; ``min(n_components, n, d)`` are returned.
        seed: random state of the randomised solver (used for inputs above ``RANDOMISED_PCA_ABOVE`` entries).

    Returns:
        (reduced float32 (n, c), explained variance ratio float64 (c,)) with ``c = min(n_components, n, d)``.

    Raises:
        ValueError: when ``vectors`` is not a non-empty finite 2-D array, has fewer than 2 rows (there is no
            variance to explain), or ``n_components`` < 1.
    """
    matrix = _as_matrix(vectors)
    n_rows, n_dims = matrix.shape
    if n_components < 1:
        raise ValueError(f"n_components must be at least 1, got {n_components}")
    if n_rows < 2:
        raise ValueError(f"PCA needs at least 2 rows, got shape {matrix.shape}")
    n_kept = min(n_components, n_rows, n_dims)
    # The randomised solver only pays when it keeps a small part of the spectrum of a large matrix.
    randomised = matrix.size > RANDOMISED_PCA_ABOVE and n_kept < 0.8 * min(n_rows, n_dims)
    pca = PCA(n_components=n_kept, svd_solver="randomized" if randomised else "full", random_state=seed)
    reduced = pca.fit_transform(_l2_normalise(matrix))
    return reduced.astype(np.float32, copy=False), pca.explained_variance_ratio_.astype(np.float64)


def kmeans(vectors, k: int, *, seed: int = 0, n_init: int = 1, max_iter: int = 300) -> KMeansResult:
    """Lloyd's k-means with k-means++ seeding (scikit-learn), deterministic under ``seed``.

    Chosen over faiss.Kmeans after measuring both at 100k x 50 on this 2-core machine: scikit-learn took 0.4-0.9 s
    for k=20 and its k-means++ seeding found better clusters; faiss was as fast when idle but 5-10x slower when
    other processes held the cores (its OpenMP threads spin), and its random seeding needs several restarts.

    Args:
        vectors: (n, d) rows to cluster, e.g. the output of :func:`reduce_pca`.
        k: number of clusters, 2 <= k <= n.
        seed: random state of the seeding.
        n_init: independent seedings; the one with the lowest inertia wins (more is slower but steadier).
        max_iter: Lloyd iterations per seeding.

    Returns:
        KMeansResult with int64 labels (n,), float32 centroids (k, d) and the inertia.

    Raises:
        ValueError: for empty, non-2-D or non-finite input, k < 2 or k > n (the message names the numbers).
    """
    matrix = _as_matrix(vectors)
    _check_n_clusters(k, matrix.shape[0])
    model = KMeans(n_clusters=int(k), n_init=n_init, max_iter=max_iter, random_state=seed)
    with _threads_for(matrix.shape[0] * int(k)):
        model.fit(matrix)
    return KMeansResult(
        labels=model.labels_.astype(np.int64, copy=False),
        centroids=model.cluster_centers_.astype(np.float32, copy=False),
        inertia=float(model.inertia_),
    )


def choose_k(vectors, ks: Sequence[int], *, seed: int = 0, sample_size: int = 5000) -> tuple[int, dict[int, float]]:
    """Pick the number of clusters with the best silhouette among ``ks``.

    k-means runs on every row; the silhouette (quadratic in the rows it scores) is computed on one random sample of
    at most ``sample_size`` rows, the same sample for every k so the scores are comparable.

    Args:
        vectors: (n, d) rows, e.g. the output of :func:`reduce_pca`.
        ks: candidate numbers of clusters, each with 2 <= k <= n - 1 (the silhouette is undefined for k = n).
        seed: random state of k-means and of the sample.
        sample_size: rows scored by the silhouette.

    Returns:
        (best k, {k: silhouette in [-1, 1]} for every candidate). Ties go to the smaller k. A k whose clusters all
        but one miss the sample scores -1.

    Raises:
        ValueError: for bad input (as :func:`kmeans`), no candidates, a candidate outside 2..n-1, or
            ``sample_size`` < 2.
    """
    matrix = _as_matrix(vectors)
    n_rows = matrix.shape[0]
    candidates = sorted({int(k) for k in ks})
    if not candidates:
        raise ValueError("ks is empty: give at least one candidate number of clusters")
    if candidates[0] < 2 or candidates[-1] > n_rows - 1:
        raise ValueError(f"every k in ks must lie in 2..{n_rows - 1} (the silhouette needs 2 <= k < n rows = "
                         f"{n_rows}), got ks={candidates}")
    if sample_size < 2:
        raise ValueError(f"sample_size must be at least 2, got {sample_size}")

    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n_rows, size=min(sample_size, n_rows), replace=False))
    scores: dict[int, float] = {}
    for k in candidates:
        labels = kmeans(matrix, k, seed=seed).labels[sample]
        n_seen = len(np.unique(labels))
        # The silhouette needs 2..len(sample)-1 distinct clusters among the scored rows.
        scores[k] = float(silhouette_score(matrix[sample], labels)) if 2 <= n_seen < len(sample) else -1.0
    best = max(candidates, key=lambda k: (scores[k], -k))
    return best, scores


def cluster_sums(vectors, labels, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum of the vectors per cluster (k, dim) float64, members per cluster (k,)) for one batch; add batches up
    and divide for the mean vector of each cluster (a centroid in the vectors' own space).

    Raises:
        ValueError: for labels of another length than the vectors, or outside 0..k-1.
    """
    matrix = _as_matrix(vectors)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(matrix),):
        raise ValueError(f"labels must have shape ({len(matrix)},), got {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= k):
        raise ValueError(f"cluster labels must lie in 0..{k - 1}")
    sums = np.zeros((k, matrix.shape[1]), np.float64)
    np.add.at(sums, labels, matrix)
    return sums, np.bincount(labels, minlength=k)
