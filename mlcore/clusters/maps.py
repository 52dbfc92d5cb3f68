"""2-D maps of feature vectors for the browser: PCA, t-SNE, UMAP, or LDA on the expert labels.

The vectors are used as given, compared by Euclidean distance: pass the output of
:func:`mlcore.clusters.kmeans.reduce_pca` (which L2-normalises the raw features, so distances there follow cosine
similarity). Inputs wider than 50 dimensions are first reduced to 50 principal components for t-SNE, UMAP and LDA, the
usual practice: it drops noise dimensions and makes the neighbour search cheaper.

Cost on this 2-core machine, roughly: "pca" and "lda" take seconds even at 100k rows. "tsne" (Barnes-Hut,
O(n log n) per step, 1000 steps, one thread) took 0.5 s for 150 rows and 9 s for 2,000 with the cores busy; expect
minutes beyond 20k rows, so sample the rows first for a larger map. "umap" scales better than t-SNE; the first call
in a process also spends ~10 s compiling numba code, and a fixed random_state makes it single-threaded (the price of
being reproducible).
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from mlcore.clusters.kmeans import _as_matrix
from mlcore.clusters.metrics import is_unlabelled

METHODS = ("pca", "tsne", "umap", "lda")

# Components kept before t-SNE, UMAP and LDA: enough to keep the cluster structure, few enough to be quick.
PRE_REDUCE_TO = 50

# Fewer rows than this give t-SNE and UMAP too few neighbours to mean anything.
MIN_ROWS_FOR_NEIGHBOURS = 5


def embed_2d(vectors, method: str, *, labels=None, seed: int = 0) -> np.ndarray:
    """Coordinates on a plane for each row of ``vectors``.

    Args:
        vectors: (n, d) vectors, d >= 2, used as given: normally the output of
        :func:`mlcore.clusters.kmeans.reduce_pca`. method: "pca", "tsne", "umap" or "lda" (see the module docstring for
        what each costs). labels: for "lda" only: one label per row (ints or strings); None, -1, "" or NaN mark an
            unlabelled row. LDA is fitted on the labelled rows and projects every row. Ignored by the other methods.
        seed: random state; the same seed gives the same map.

    Returns:
        float32 (n, 2), finite.

    Raises:
        ValueError: for an unknown method (listing the known ones), input that is not a finite 2-D array with at
            least 2 rows and 2 columns, too few rows for t-SNE/UMAP, or for "lda": no labels, labels of the wrong
            length, fewer than 2 distinct classes among the labelled rows, or no more labelled rows than classes.
    """
    if method not in METHODS:
        raise ValueError(f"unknown embedding method {method!r}; choose one of {', '.join(METHODS)}")
    matrix = _as_matrix(vectors)
    if matrix.shape[0] < 2 or matrix.shape[1] < 2:
        raise ValueError(f"a 2-D map needs at least 2 rows and 2 dimensions, got shape {matrix.shape}")
    if method == "lda":
        return _embed_lda(matrix, labels, seed)
    if method == "pca":
        return _pad_to_two(_principal_components(matrix, 2, seed))
    if matrix.shape[0] < MIN_ROWS_FOR_NEIGHBOURS:
        raise ValueError(f"{method} needs at least {MIN_ROWS_FOR_NEIGHBOURS} rows, got shape {matrix.shape}")
    reduced = _at_most(matrix, PRE_REDUCE_TO, seed)
    if method == "tsne":
        return _embed_tsne(reduced, seed)
    return _embed_umap(reduced, seed)


def _embed_tsne(reduced: np.ndarray, seed: int) -> np.ndarray:
    n_rows = reduced.shape[0]
    # 30 is the usual perplexity; small maps need less, since it must stay below the number of rows.
    perplexity = float(min(30.0, max(2.0, (n_rows - 1) / 3.0)))
    model = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
    # One OpenMP thread: each of the 1000 gradient steps ends in a thread barrier, and with the 2 cores shared (web,
    # worker) a barrier waits out other processes' time slices. Measured with the cores busy: 150 rows took 43 s on
    # two threads and 0.5 s on one; 2000 rows 46 s and 9 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        return model.fit_transform(reduced).astype(np.float32)


def _embed_umap(reduced: np.ndarray, seed: int) -> np.ndarray:
    import umap  # here, not at the top: importing umap compiles numba code for seconds

    n_rows = reduced.shape[0]
    model = umap.UMAP(n_components=2, n_neighbors=min(15, n_rows - 1), min_dist=0.1, random_state=seed,
                      n_jobs=1)  # a fixed random_state means one thread; saying so silences umap's warning
    return np.asarray(model.fit_transform(reduced), dtype=np.float32)


def _embed_lda(matrix: np.ndarray, labels, seed: int) -> np.ndarray:
    if labels is None:
        raise ValueError("method 'lda' needs labels: one per row, with None or -1 for unlabelled rows")
    labels = np.asarray(labels, dtype=object)
    if labels.shape != (matrix.shape[0],):
        raise ValueError(f"labels must have one entry per row: shape {labels.shape} for vectors of shape "
                         f"{matrix.shape}")
    labelled = ~np.array([is_unlabelled(value) for value in labels], dtype=bool)
    classes = sorted({str(value) for value in labels[labelled]})
    if len(classes) < 2:
        raise ValueError(f"method 'lda' needs at least 2 distinct classes among the labelled rows, got "
                         f"{len(classes)} ({int(labelled.sum())} labelled rows of {len(labels)})")
    if labelled.sum() <= len(classes):
        raise ValueError(f"method 'lda' needs more labelled rows than classes: {int(labelled.sum())} labelled rows "
                         f"for {len(classes)} classes")

    # PCA over all rows first: with a few dozen labels per class the 512-d within-class covariance is singular.
    reduced = _at_most(matrix, PRE_REDUCE_TO, seed).astype(np.float64)
    # Shrinkage (Ledoit-Wolf) keeps the covariance estimate sane when labelled rows are few.
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto")
    lda.fit(reduced[labelled], [str(value) for value in labels[labelled]])
    projected = reduced @ lda.scalings_[:, :2]
    if projected.shape[1] < 2:
        # Two classes give one discriminant axis; the second axis is the main direction of the remaining variance.
        axis = lda.scalings_[:, 0] / np.linalg.norm(lda.scalings_[:, 0])
        residual = reduced - np.outer(reduced @ axis, axis)
        projected = np.column_stack([projected[:, 0], _first_component(residual, seed)])
    projected -= projected.mean(axis=0)
    return projected.astype(np.float32)


def _principal_components(matrix: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    n_kept = min(n_components, *matrix.shape)
    return PCA(n_components=n_kept, random_state=seed).fit_transform(matrix).astype(np.float32)


def _at_most(matrix: np.ndarray, n_dims: int, seed: int) -> np.ndarray:
    """``matrix`` itself if it has at most ``n_dims`` columns, else its first ``n_dims`` principal components."""
    return matrix if matrix.shape[1] <= n_dims else _principal_components(matrix, n_dims, seed)


def _first_component(matrix: np.ndarray, seed: int) -> np.ndarray:
    if matrix.shape[1] < 1 or not np.any(matrix.std(axis=0) > 0):
        return np.zeros(matrix.shape[0])
    return PCA(n_components=1, random_state=seed).fit_transform(matrix)[:, 0]


def _pad_to_two(coordinates: np.ndarray) -> np.ndarray:
    """PCA of 2 rows has one component; a zero second axis keeps the (n, 2) promise."""
    if coordinates.shape[1] == 2:
        return coordinates
    return np.column_stack([coordinates, np.zeros((coordinates.shape[0], 2 - coordinates.shape[1]))]).astype(
        np.float32)
