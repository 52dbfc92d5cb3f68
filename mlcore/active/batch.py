"""Set-based selection plumbing: masks, ranking, Cluster-Margin and the near-duplicate filter (no Django).

Every selection function returns int64 indices into the pool, best first, never a labelled or excluded galaxy, and
all the candidates when there are fewer than ``n``. Feature-space selection (k-center, TypiClust) lives in
:mod:`mlcore.active.diversity`. Import these from :mod:`mlcore.active.query`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlcore.active.scores import margin


@dataclass(frozen=True)
class Picked:
    """Indices chosen by a set-based strategy, with what explains each choice (same order)."""

    indices: np.ndarray
    scores: np.ndarray
    clusters: np.ndarray | None = None


def random_sample(n_pool: int, *, n: int, labelled=None, exclude=None, seed: int = 0) -> np.ndarray:
    """``n`` candidates drawn uniformly without replacement (the baseline every strategy should beat).

    Args:
        n_pool: number of galaxies in the pool.
        n: how many to choose, >= 0.
        labelled, exclude: optional bool (n_pool,) masks of galaxies that must not be chosen.
        seed: random state.

    Returns:
        int64 (min(n, candidates),) indices in the order drawn.

    Raises:
        ValueError: on a negative n or n_pool, or a mask that is not bool (n_pool,).
    """
    if isinstance(n_pool, bool) or not isinstance(n_pool, int | np.integer) or n_pool < 0:
        raise ValueError(f"n_pool must be an integer >= 0, got {n_pool!r}")
    candidates = np.flatnonzero(candidate_mask(int(n_pool), labelled, exclude))
    n_take = min(checked_n(n), len(candidates))
    rng = np.random.default_rng(seed)
    return rng.choice(candidates, size=n_take, replace=False).astype(np.int64)


def top_scores(scores, *, n: int, labelled=None, exclude=None, seed: int = 0) -> np.ndarray:
    """The ``n`` candidates with the highest scores; equal scores in a seeded random (but fixed) order.

    Args:
        scores: float (n_pool,) scores, higher = more worth labelling.
        n: how many to choose, >= 0.
        labelled, exclude: optional bool (n_pool,) masks of galaxies that must not be chosen.
        seed: random state of the tie-break.

    Returns:
        int64 (min(n, candidates),) indices, highest score first.

    Raises:
        ValueError: when scores is not 1-D finite numbers, n is negative, or a mask is not bool (n_pool,).
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"scores must be 1-D (n_galaxies,), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"scores of shape {values.shape} contain NaN or infinite values")
    candidates = np.flatnonzero(candidate_mask(len(values), labelled, exclude))
    n_take = min(checked_n(n), len(candidates))
    # A random tie-break rather than the index order: equal scores (e.g. many galaxies at margin 1) would otherwise
    # always favour the galaxies imported first.
    tie_break = np.random.default_rng(seed).permutation(len(values))
    order = np.lexsort((tie_break[candidates], -values[candidates]))
    return candidates[order[:n_take]].astype(np.int64)


def cluster_margin(probs, clusters, *, n: int, labelled, exclude=None, seed: int = 0,
                   shortlist_factor: int = 10) -> np.ndarray:
    """Cluster-Margin (Citovsky et al. 2021): uncertain galaxies spread over clusters, smallest cluster first.

    The ``shortlist_factor * n`` candidates with the highest :func:`mlcore.active.scores.margin` scores are grouped
    by cluster; the clusters are visited round-robin from the one with the fewest shortlisted galaxies to the one
    with the most (ties: lower cluster id first), each visit taking that cluster's most uncertain galaxy not yet
    chosen, until n are chosen. A rare kind of galaxy the model is unsure about gets a place in the batch even when
    a common kind has hundreds of more uncertain members.

    Args:
        probs: (n_pool, n_classes) class probabilities.
        clusters: int (n_pool,) cluster of each galaxy (e.g. a k-means clustering of the features).
        n: how many to choose, >= 0.
        labelled: bool (n_pool,) mask of labelled galaxies (None: none).
        exclude: optional bool (n_pool,) mask of galaxies that must not be chosen.
        seed: random state of the tie-break between equal margins.
        shortlist_factor: shortlist size as a multiple of n, >= 1 (Citovsky et al.'s k_m / k).

    Returns:
        int64 (min(n, candidates),) indices in the order picked.

    Raises:
        ValueError: when probs fails the checks of :func:`mlcore.active.scores.margin`, clusters is not integer
            (n_pool,), n is negative, shortlist_factor < 1, or a mask is not bool (n_pool,).
    """
    uncertainty = margin(probs)
    groups = np.asarray(clusters)
    if groups.shape != uncertainty.shape or groups.dtype.kind not in "iu":
        raise ValueError(f"clusters must be integers of shape {uncertainty.shape} to match probs, "
                         f"got {groups.dtype} {groups.shape}")
    if isinstance(shortlist_factor, bool) or not isinstance(shortlist_factor, int | np.integer) \
            or shortlist_factor < 1:
        raise ValueError(f"shortlist_factor must be an integer >= 1, got {shortlist_factor!r}")
    n_wanted = checked_n(n)
    shortlist = top_scores(uncertainty, n=int(shortlist_factor) * n_wanted, labelled=labelled, exclude=exclude,
                           seed=seed)
    # The shortlist is sorted by margin, so each cluster's queue below is too.
    queues: dict[int, list[int]] = {}
    for index in shortlist.tolist():
        queues.setdefault(int(groups[index]), []).append(index)
    visiting = sorted(queues, key=lambda cluster: (len(queues[cluster]), cluster))
    picked: list[int] = []
    for round_ in range(max((len(queue) for queue in queues.values()), default=0)):
        for cluster in visiting:
            if len(picked) < n_wanted and round_ < len(queues[cluster]):
                picked.append(queues[cluster][round_])
    return np.array(picked[:n_wanted], dtype=np.int64)


def without_near_duplicates(order, features, *, n: int, min_cosine: float = 0.97) -> np.ndarray:
    """The first ``n`` of a ranked list of candidates, skipping any nearly identical to one already kept.

    An expert learns nothing new from the second of two nearly identical galaxies (or two cut-outs of the same
    one), and uncertainty scores tend to rank such twins side by side. Candidates are walked in ``order``; one whose
    cosine similarity to a kept candidate is at least ``min_cosine`` is skipped. When too few survive, the skipped
    ones fill the batch in their ranked order. Only the first few times n candidates are usually examined, in blocks
    compared with the kept ones by one matrix product.

    Args:
        order: int (m,) distinct indices into features, best first.
        features: (n_pool, dim) feature vectors (compared by cosine similarity as they are, without projection).
        n: how many to keep, >= 0.
        min_cosine: similarity at or above which a candidate counts as a near-duplicate.

    Returns:
        int64 (min(n, m),) indices, a subsequence of ``order`` followed by any fill.

    Raises:
        ValueError: when order is not 1-D distinct integers within the pool, features is not a non-empty 2-D array
            or an examined row holds NaN/inf, n is negative, or min_cosine is not finite.
    """
    # Only the rows examined are converted and checked: a memory-mapped 100k x 512 store is not read in full.
    vectors = np.asarray(features)
    if vectors.ndim != 2 or 0 in vectors.shape:
        raise ValueError(f"features must be a non-empty 2-D array (n_pool, dim), got shape {vectors.shape}")
    ranked = np.asarray(order)
    if ranked.ndim != 1 or (ranked.size and ranked.dtype.kind not in "iu"):
        raise ValueError(f"order must be 1-D integer indices, got {ranked.dtype} {ranked.shape}")
    ranked = ranked.astype(np.int64)
    if ranked.size and (ranked.min() < 0 or ranked.max() >= len(vectors)):
        raise ValueError(f"order holds indices outside 0..{len(vectors) - 1} (features has shape {vectors.shape})")
    if len(np.unique(ranked)) != len(ranked):
        raise ValueError("order must not repeat an index")
    if not np.isfinite(min_cosine):
        raise ValueError(f"min_cosine must be a finite number, got {min_cosine}")
    n_wanted = min(checked_n(n), len(ranked))
    kept_vectors = np.zeros((n_wanted, vectors.shape[1]), dtype=np.float32)
    kept: list[int] = []
    skipped: list[int] = []
    block_size = max(2 * n_wanted, 64)
    for start in range(0, len(ranked), block_size):
        if len(kept) == n_wanted:
            break
        block = ranked[start:start + block_size]
        unit = _unit(vectors[block])
        # Similarity to everything kept before this block in one product; within the block, row by row.
        before = len(kept)
        too_close = np.zeros(len(block), dtype=bool)
        if before:
            too_close = (unit @ kept_vectors[:before].T).max(axis=1) >= min_cosine
        for row, index in enumerate(block.tolist()):
            if len(kept) == n_wanted:
                break
            twin_in_block = len(kept) > before and (kept_vectors[before:len(kept)] @ unit[row]).max() >= min_cosine
            if too_close[row] or twin_in_block:
                skipped.append(index)
                continue
            kept_vectors[len(kept)] = unit[row]
            kept.append(index)
    kept.extend(skipped[:n_wanted - len(kept)])
    return np.array(kept, dtype=np.int64)


def candidate_mask(n_pool: int, labelled, exclude) -> np.ndarray:
    """Bool (n_pool,): True where a galaxy may be chosen (neither labelled nor excluded).

    Raises:
        ValueError: when labelled or exclude is given but is not a bool array of shape (n_pool,).
    """
    allowed = np.ones(n_pool, dtype=bool)
    for name, mask in (("labelled", labelled), ("exclude", exclude)):
        if mask is None:
            continue
        mask = np.asarray(mask)
        if mask.shape != (n_pool,) or mask.dtype != bool:
            raise ValueError(f"{name} must be a bool array of shape ({n_pool},), got {mask.dtype} {mask.shape}")
        allowed &= ~mask
    return allowed


def checked_n(n) -> int:
    """``n`` as an int, or ValueError unless it is an integer >= 0."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    return int(n)


def _unit(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to length 1 (an all-zero row stays zero: similarity 0 to everything).

    Raises:
        ValueError: on NaN or infinite values.
    """
    unit = np.array(vectors, dtype=np.float32)
    if not np.isfinite(unit).all():
        raise ValueError(f"features of the candidates examined contain NaN or infinite values (rows of shape "
                         f"{unit.shape})")
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    return unit / np.where(norms > 0, norms, 1.0)


# cluster_margin's clusters: twice the number of classes (at most this many), as the simulations measured it; the
# product's queue uses the same rule, so the savings measured there are what an expert gets.
CLUSTER_MARGIN_MAX_CLUSTERS = 50
CLUSTER_MARGIN_FIT_ROWS = 20_000  # k-means fits on at most this many rows and assigns the rest to the nearest centre


def cluster_margin_clusters(features, n_classes: int, *, seed: int = 0) -> np.ndarray:
    """The pool's clusters for :func:`cluster_margin`: k-means with k = 2 * n_classes (2 <= k <= 50, at most one per
    galaxy) on the features; on pools above 20,000 galaxies it is fitted on a seeded sample of 20,000 and every
    galaxy goes to its nearest centre, so a catalogue of millions costs seconds.

    Returns:
        int64 (n_pool,) cluster of each galaxy.

    Raises:
        ValueError: for fewer than two galaxies or n_classes < 1.
    """
    from mlcore.clusters.kmeans import kmeans

    matrix = np.asarray(features, dtype=np.float32)
    if matrix.ndim != 2 or len(matrix) < 2:
        raise ValueError(f"features must be (n_pool >= 2, dim), got shape {matrix.shape}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be at least 1, got {n_classes}")
    k = min(max(2, 2 * n_classes), CLUSTER_MARGIN_MAX_CLUSTERS, len(matrix))
    if len(matrix) <= CLUSTER_MARGIN_FIT_ROWS:
        return kmeans(matrix, k, seed=seed).labels
    sample = np.random.default_rng(seed).choice(len(matrix), CLUSTER_MARGIN_FIT_ROWS, replace=False)
    centroids = kmeans(matrix[np.sort(sample)], k, seed=seed).centroids
    labels = np.empty(len(matrix), dtype=np.int64)
    for start in range(0, len(matrix), 100_000):  # bounded memory: (chunk, k) distances at a time
        chunk = matrix[start:start + 100_000]
        distances = (chunk ** 2).sum(1)[:, None] - 2 * chunk @ centroids.T + (centroids ** 2).sum(1)[None, :]
        labels[start:start + len(chunk)] = distances.argmin(1)
    return labels
