"""cluster_margin's clusters: one rule (2 x classes, at most 50) for the simulations and the product's queue."""

import numpy as np
import pytest

from mlcore.active.batch import CLUSTER_MARGIN_FIT_ROWS, cluster_margin_clusters


def blobs(n_per: int, centres: int, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    where = rng.normal(scale=20, size=(centres, dim))
    truth = np.repeat(np.arange(centres), n_per)
    return (where[truth] + rng.normal(size=(len(truth), dim))).astype(np.float32), truth


def test_it_makes_twice_as_many_clusters_as_classes_within_the_bounds():
    features, _ = blobs(30, 6)
    assert len(np.unique(cluster_margin_clusters(features, 2))) == 4
    assert len(np.unique(cluster_margin_clusters(features, 1))) == 2
    assert len(np.unique(cluster_margin_clusters(features, 40))) == 50
    assert len(np.unique(cluster_margin_clusters(features[:3], 10))) == 3


def test_a_large_pool_is_fitted_on_a_sample_and_every_galaxy_goes_to_its_nearest_centre():
    features, truth = blobs(CLUSTER_MARGIN_FIT_ROWS // 4 + 1000, 4)  # 24,000 rows: above the fitted sample
    labels = cluster_margin_clusters(features, 2, seed=1)  # 4 clusters for 4 blobs
    assert labels.shape == (len(features),) and labels.dtype == np.int64
    # Each blob is one cluster, the unfitted rows included: nearest-centre assignment agrees with the fit.
    assert sorted(len(np.unique(labels[truth == blob])) for blob in range(4)) == [1, 1, 1, 1]
    assert len(np.unique(labels)) == 4
    assert np.array_equal(labels, cluster_margin_clusters(features, 2, seed=1))


def test_it_refuses_a_pool_too_small_or_no_classes():
    with pytest.raises(ValueError, match=r"got shape \(1, 8\)"):
        cluster_margin_clusters(np.zeros((1, 8)), 2)
    with pytest.raises(ValueError, match="n_classes must be at least 1"):
        cluster_margin_clusters(np.zeros((5, 8)), 0)
