"""Cosine similarities turned into figures a person can read, calibrated on random pairs of the same feature set.

Deep features of galaxies point in much the same direction: in a feature set where two galaxies picked at random
have a cosine of 0.97, the 1st and the 10th neighbour of a galaxy may read 0.998 and 0.995, and "1.00" for every
neighbour once rounded. What tells near from far is the distance compared with the distances of random pairs.

``SimilarityScale`` measures the distances of random pairs once per feature set and gives two figures:

- ``likeness``: 1 - d / d_typical, clipped to [0, 1], where d is the distance between the two unit vectors and
  d_typical the median distance of a random pair. 1 means identical features, 0 as far apart as a typical pair (or
  farther). It is the figure shown because it spreads the few nearest neighbours apart, and reads the same
  whatever the number of galaxies. The distance rather than 1 - cosine, since 1 - cosine is d**2 / 2: a ratio of
  squares would push every near neighbour up against 1 again.
- ``closer_than``: the share of random pairs farther apart than these two. The natural calibration, but nearly 1
  for every neighbour of a large catalogue (the 10th neighbour among 20,000 galaxies is closer than about 99.95%
  of pairs), so it is shown beside the likeness rather than instead of it.
"""

from __future__ import annotations

import numpy as np

from mlcore.neighbours.unit_vectors import unit_rows

LEVELS = 10_001  # quantiles kept of the random-pair distances: a resolution of 0.01%


class SimilarityScale:
    """The distribution of distances between random pairs of a feature set, and the figures read against it.

    Args:
        sample: how many vectors ``fit`` draws (all of them when fewer); every pair among them is measured, so
            1000 give about 500,000 pairs from one (1000 x 1000) matrix product: milliseconds.
        seed: picks the sample.

    Attributes (after ``fit``):
        n_pairs_: how many pairs were measured.
        typical_distance_: the median distance between two unit vectors of a random pair, in [0, 2].
        quantiles_: float64 (LEVELS,) the pair distances at quantile levels 0, 0.0001, ..., 1.
    """

    def __init__(self, *, sample: int = 1000, seed: int = 0) -> None:
        self.sample = sample
        self.seed = seed

    def __repr__(self) -> str:
        fitted = f", typical_distance_={self.typical_distance_:.4f}" if hasattr(self, "quantiles_") else ""
        return f"SimilarityScale(sample={self.sample}{fitted})"

    def fit(self, vectors) -> SimilarityScale:
        """Measure the distances between every pair of up to ``sample`` rows of ``vectors`` (n, dim), drawn at
        random, in any float dtype (a memory map is read only at the rows drawn).

        Returns:
            self.

        Raises:
            ValueError: for sample < 2, vectors that are not 2-D, fewer than 2 rows, or NaN/inf values.
        """
        if not isinstance(self.sample, int) or self.sample < 2:
            raise ValueError(f"sample must be an integer of at least 2, got {self.sample!r}")
        shape = np.shape(vectors)
        if len(shape) != 2 or shape[0] < 2:
            raise ValueError(f"vectors must have shape (n, dim) with n >= 2, got {shape}")
        n = shape[0]
        rows = np.sort(np.random.default_rng(self.seed).choice(n, min(n, self.sample), replace=False))
        unit = unit_rows(vectors[rows])
        upper = np.triu_indices(len(unit), k=1)
        distances = _distance_of((unit @ unit.T)[upper])
        self.n_pairs_ = len(distances)
        self.quantiles_ = np.quantile(distances, np.linspace(0.0, 1.0, LEVELS))
        self.typical_distance_ = float(np.median(distances))
        return self

    def likeness(self, cosines) -> np.ndarray:
        """1 - d / typical_distance_ for the cosine similarities ``cosines`` (any shape), clipped to [0, 1].

        Raises:
            ValueError: when unfitted.
        """
        self._check_fitted()
        distances = _distance_of(np.asarray(cosines, dtype=np.float64))
        if self.typical_distance_ == 0:  # every sampled pair identical: only identical vectors are alike
            return (distances == 0).astype(np.float64)
        return np.clip(1.0 - distances / self.typical_distance_, 0.0, 1.0)

    def closer_than(self, cosines) -> np.ndarray:
        """The share of random pairs farther apart than each of ``cosines`` (any shape), in [0, 1].

        Raises:
            ValueError: when unfitted.
        """
        self._check_fitted()
        distances = _distance_of(np.asarray(cosines, dtype=np.float64))
        at_most = np.searchsorted(self.quantiles_, distances, side="right")
        return 1.0 - at_most / len(self.quantiles_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "quantiles_"):
            raise ValueError("this SimilarityScale is not fitted yet: call fit(vectors) first")


def _distance_of(cosines: np.ndarray) -> np.ndarray:
    """The distance between two unit vectors of cosine similarity ``cosines``: sqrt(2 - 2 cos), rounding kept >= 0."""
    return np.sqrt(np.clip(2.0 - 2.0 * cosines, 0.0, 4.0))
