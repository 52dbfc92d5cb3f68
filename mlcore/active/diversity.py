"""Selection in feature space: representative and diverse galaxies (arrays in, indices or scores out; no Django).

Feature vectors are compared by direction, as by the neighbour index and the clusterings: :func:`reduced_features`
L2-normalises them and projects them onto at most 64 principal components, and Euclidean distances between the
results stand in for cosine distances. On top of that: :func:`typicality` (how representative a galaxy is of its
neighbourhood), :func:`k_center_greedy` (cover the space) and :func:`typiclust` (the typical galaxy of each
least-covered cluster). Import them from :mod:`mlcore.active.query`.
"""

from __future__ import annotations

import faiss
import numpy as np
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from mlcore.active.batch import Picked, candidate_mask, checked_n
from mlcore.clusters.kmeans import _as_matrix, _l2_normalise, kmeans

# Feature vectors are projected to at most this many principal components before any distance is computed: on
# 512-d ResNet features a few dozen components carry most of the variance (as for clustering, mlcore.clusters.kmeans),
# and every distance then costs an eighth as much.
MAX_DIMS = 64

# Typicality compares each galaxy with at most this many reference galaxies (a seeded random sample of the pool).
# Exact k-nearest neighbours over 100k x 100k would take tens of seconds on 2 cores; against 4096 references it took
# 2 s on one thread (100k x 64), and the mean distance to the k nearest references is a smoother estimate of the same
# density.
TYPICALITY_REFERENCES = 4096

# Distances below this count as this, so that exact duplicates get a large, finite typicality.
MIN_DISTANCE = 1e-6

# TypiClust prefers clusters of at least this many galaxies (Hacohen et al. 2022): a smaller one is more likely a
# clump of outliers than a mode of the data, and its "most typical" member is not typical of much.
MIN_CLUSTER_SIZE = 5

# Above this many rows x clusters TypiClust's k-means is mini-batch: measured at 100k x 64 on 2 shared cores, full
# Lloyd k-means took 2.5 s for 110 clusters and 15 s for 600 (30 iterations); mini-batch 0.8 s and 2.3 s. Mini-batch
# runs on one thread: its k-means++ seeding multiplies many small matrices, and with the other core busy the BLAS
# threads waited on each other (600 clusters: 22 s of CPU time on two threads, 2.3 s on one).
FULL_KMEANS_MAX = 2_000_000

# Labelled rows compared with the whole pool at once by k-center: 100k x 128 float32 distances are 51 MB.
DISTANCE_CHUNK = 128


def typicality(features, *, k_neighbours: int = 20, seed: int = 0) -> np.ndarray:
    """How typical each galaxy is of the pool: 1 / its mean distance to its k nearest neighbours.

    Distances are Euclidean between L2-normalised feature vectors (so they follow the cosine similarity used by the
    neighbour index and the clusterings), after projection onto at most 64 principal components. Each galaxy is
    compared with at most ``TYPICALITY_REFERENCES`` reference galaxies drawn at random from the pool (all of them
    when the pool is that small or smaller), itself left out.

    Args:
        features: (n_galaxies, dim) feature vectors.
        k_neighbours: neighbours averaged, >= 1 (capped at the number of other galaxies).
        seed: random state of the projection and of the reference sample.

    Returns:
        float64 (n_galaxies,), positive; a galaxy alone in the pool scores 0.

    Raises:
        ValueError: when features is not a non-empty finite 2-D array or k_neighbours < 1.
    """
    return point_typicality(reduced_features(features, seed=seed), k_neighbours=k_neighbours, seed=seed)


def reduced_features(features, *, seed: int = 0) -> np.ndarray:
    """Feature vectors as float32 points whose Euclidean distances stand in for cosine distances.

    Rows are L2-normalised; with more than ``MAX_DIMS`` dimensions they are then projected onto their leading
    ``MAX_DIMS`` principal components (an exact eigen-decomposition of the covariance matrix: 0.6 s of one core
    for 100k x 512, where the randomised SVD of :func:`mlcore.clusters.kmeans.reduce_pca` took 4.6 s).

    Raises:
        ValueError: when features is not a non-empty finite 2-D array (the message names the shape).
    """
    unit = _l2_normalise(_as_matrix(features, "features"))
    n_points, n_dims = unit.shape
    if n_dims <= MAX_DIMS or n_points < 2:
        return np.ascontiguousarray(unit, dtype=np.float32)
    n_kept = min(MAX_DIMS, n_points)
    projected = PCA(n_components=n_kept, svd_solver="covariance_eigh", random_state=seed).fit_transform(unit)
    return np.ascontiguousarray(projected, dtype=np.float32)


def point_typicality(points: np.ndarray, *, k_neighbours: int, seed: int = 0) -> np.ndarray:
    """1 / mean Euclidean distance from each of ``points`` (n, d) to its k nearest others among the points.

    The others are at most ``TYPICALITY_REFERENCES`` of the points, a sample drawn with ``seed`` when there are
    more. Used by :func:`typicality` over the pool and by TypiClust within one cluster.

    Raises:
        ValueError: when k_neighbours is not a positive integer.
    """
    if isinstance(k_neighbours, bool) or not isinstance(k_neighbours, int | np.integer) or k_neighbours < 1:
        raise ValueError(f"k_neighbours must be a positive integer, got {k_neighbours!r}")
    points = np.ascontiguousarray(points, dtype=np.float32)
    references = np.arange(len(points))
    if len(points) > TYPICALITY_REFERENCES:
        rng = np.random.default_rng(seed)
        references = np.sort(rng.choice(len(points), TYPICALITY_REFERENCES, replace=False))
    return _typicality_among(points, references, k_neighbours=int(k_neighbours))


def k_center_greedy(features, *, n: int, labelled, exclude=None, seed: int = 0) -> np.ndarray:
    """Core-set selection (Sener & Savarese 2018): greedily add the candidate farthest from every chosen centre.

    The labelled galaxies are the first centres (with none, a seeded random candidate is). Each step takes the
    candidate whose distance to its nearest centre is largest, so far-away corners of feature space get covered
    before a dense region gets a second galaxy. Excluded galaxies are neither centres nor candidates.

    Cost: one pass over the pool per labelled chunk and per pick, on float32 vectors of at most 64 dimensions: about
    a second for 100k x 512 features and n = 100.

    Args:
        features: (n_pool, dim) feature vectors.
        n: how many to choose, >= 0.
        labelled: bool (n_pool,) mask of labelled galaxies (None: none).
        exclude: optional bool (n_pool,) mask of galaxies that must not be chosen.
        seed: random state of the projection and of the first centre when nothing is labelled.

    Returns:
        int64 (min(n, candidates),) indices in the order picked.

    Raises:
        ValueError: when features is not a non-empty finite 2-D array, n is negative, or a mask is not bool
            (n_pool,).
    """
    return k_center_picks(features, n=n, labelled=labelled, exclude=exclude, seed=seed).indices


def k_center_picks(features, *, n: int, labelled, exclude=None, seed: int = 0) -> Picked:
    """:func:`k_center_greedy` with each pick's Euclidean distance to its nearest centre when picked (NaN for the
    random first centre of a cold start) as ``scores``."""
    points = reduced_features(features, seed=seed)
    available = candidate_mask(len(points), labelled, exclude)
    n_take = min(checked_n(n), int(available.sum()))
    squared_norms = np.einsum("ij,ij->i", points, points)
    nearest = np.full(len(points), np.inf, dtype=np.float32)  # squared distance to the nearest centre so far
    centres = np.flatnonzero(np.zeros(len(points), bool) if labelled is None else labelled)
    for start in range(0, len(centres), DISTANCE_CHUNK):
        chunk = centres[start:start + DISTANCE_CHUNK]
        squared = squared_norms[:, None] + squared_norms[chunk][None, :] - 2.0 * (points @ points[chunk].T)
        np.minimum(nearest, squared.min(axis=1), out=nearest)

    picked, distances = [], []
    for _ in range(n_take):
        if np.isinf(nearest[available]).all():  # no centre yet: start anywhere, reproducibly
            pick = int(np.random.default_rng(seed).choice(np.flatnonzero(available)))
            distances.append(np.nan)
        else:
            pick = int(np.argmax(np.where(available, nearest, -np.inf)))
            distances.append(float(np.sqrt(max(nearest[pick], 0.0))))
        picked.append(pick)
        available[pick] = False
        squared = squared_norms + squared_norms[pick] - 2.0 * (points @ points[pick])
        np.minimum(nearest, squared, out=nearest)
    return Picked(np.array(picked, dtype=np.int64), np.array(distances, dtype=np.float64))


def typiclust(features, *, n: int, labelled, exclude=None, seed: int = 0, k_neighbours: int = 20,
              max_clusters: int | None = None) -> np.ndarray:
    """TypiClust (Hacohen et al. 2022): the most typical galaxy of each of the least-covered clusters.

    k-means splits the pool into (labelled + n) clusters, capped at ``max_clusters`` and at the pool size. Then, n
    times: take the cluster holding the fewest labelled and already chosen galaxies among clusters of at least
    ``MIN_CLUSTER_SIZE`` galaxies (any cluster with a candidate left when none of those has one; ties go to the
    larger cluster, then the lower cluster number), and choose its candidate with the highest typicality: 1 / mean
    distance to its k nearest neighbours within the cluster. Suited to a cold start: with few labels, the most
    typical examples teach a model more than the most uncertain ones.

    Cost on one core, 100k x 512 features, n = 100: about 3.5 s with 500 labelled (600 clusters), mostly k-means.

    Args:
        features: (n_pool, dim) feature vectors.
        n: how many to choose, >= 0.
        labelled: bool (n_pool,) mask of labelled galaxies (None: none).
        exclude: optional bool (n_pool,) mask of galaxies that must not be chosen (they still shape the clusters).
        seed: random state of the projection, the k-means and the typicality samples.
        k_neighbours: neighbours in the typicality, >= 1.
        max_clusters: upper bound on the number of clusters, >= 1 (None: no bound beyond the pool size).

    Returns:
        int64 (min(n, candidates),) indices in the order picked.

    Raises:
        ValueError: when features is not a non-empty finite 2-D array, n is negative, max_clusters < 1,
            k_neighbours < 1, or a mask is not bool (n_pool,).
    """
    return typiclust_picks(features, n=n, labelled=labelled, exclude=exclude, seed=seed, k_neighbours=k_neighbours,
                           max_clusters=max_clusters).indices


def typiclust_picks(features, *, n: int, labelled, exclude=None, seed: int = 0, k_neighbours: int = 20,
                    max_clusters: int | None = None) -> Picked:
    """:func:`typiclust` with each pick's typicality as ``scores`` and its cluster as ``clusters``."""
    if max_clusters is not None and (isinstance(max_clusters, bool) or max_clusters < 1):
        raise ValueError(f"max_clusters must be None or an integer >= 1, got {max_clusters!r}")
    if isinstance(k_neighbours, bool) or not isinstance(k_neighbours, int | np.integer) or k_neighbours < 1:
        raise ValueError(f"k_neighbours must be a positive integer, got {k_neighbours!r}")
    points = reduced_features(features, seed=seed)
    available = candidate_mask(len(points), labelled, exclude)
    n_take = min(checked_n(n), int(available.sum()))
    if n_take == 0:
        return Picked(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64))
    n_labelled = 0 if labelled is None else int(np.sum(labelled))
    n_clusters = min(n_labelled + n_take, len(points), max_clusters or len(points))
    assignment = _clusters(points, n_clusters, seed)

    sizes = np.bincount(assignment, minlength=n_clusters)
    covered = np.bincount(assignment[labelled], minlength=n_clusters) if n_labelled else np.zeros(n_clusters, int)
    left = np.bincount(assignment[available], minlength=n_clusters)
    cluster_ids = np.arange(n_clusters)
    typicality_of: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # cluster -> (members, their typicality)
    picked, scores, picked_clusters = [], [], []
    for _ in range(n_take):
        open_ = left > 0
        big = open_ & (sizes >= MIN_CLUSTER_SIZE)
        eligible = cluster_ids[big if big.any() else open_]
        # Fewest labelled and chosen first; then the larger cluster (a bigger mode of the data); then the lower id.
        cluster = int(eligible[np.lexsort((eligible, -sizes[eligible], covered[eligible]))[0]])
        if cluster not in typicality_of:
            members = np.flatnonzero(assignment == cluster)
            typicality_of[cluster] = members, point_typicality(points[members], k_neighbours=int(k_neighbours),
                                                               seed=seed)
        members, typical = typicality_of[cluster]
        position = int(np.argmax(np.where(available[members], typical, -np.inf)))
        pick = int(members[position])
        picked.append(pick)
        scores.append(float(typical[position]))
        picked_clusters.append(cluster)
        available[pick] = False
        covered[cluster] += 1
        left[cluster] -= 1
    return Picked(np.array(picked, dtype=np.int64), np.array(scores), np.array(picked_clusters, dtype=np.int64))


def _typicality_among(points: np.ndarray, references: np.ndarray, *, k_neighbours: int) -> np.ndarray:
    """1 / mean distance from each of ``points`` to its k nearest ``points[references]``, itself not counted."""
    n_points = len(points)
    k = min(int(k_neighbours), len(references) - 1)  # a reference has one candidate neighbour fewer: itself
    if k < 1:
        return np.zeros(n_points)
    # One neighbour more than needed, so that a point's own entry (distance 0) can be dropped.
    squared, rows = faiss.knn(points, np.ascontiguousarray(points[references]), k + 1)
    is_self = references[rows] == np.arange(n_points)[:, None]
    # Points that are not references keep their k nearest; references drop themselves (wherever the tie put them).
    keep = ~is_self
    keep[~is_self.any(axis=1), k] = False
    distances = np.sqrt(np.maximum(squared[keep].reshape(n_points, k), 0.0))
    return 1.0 / np.maximum(distances.mean(axis=1), MIN_DISTANCE)


def _clusters(points: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """int64 k-means cluster of each point (all 0 for a single cluster)."""
    if n_clusters < 2:
        return np.zeros(len(points), dtype=np.int64)
    if len(points) * n_clusters <= FULL_KMEANS_MAX:
        return kmeans(points, n_clusters, seed=seed).labels
    with threadpool_limits(limits=1):
        model = MiniBatchKMeans(n_clusters=n_clusters, batch_size=4096, n_init=1, random_state=seed).fit(points)
    return model.labels_.astype(np.int64)
