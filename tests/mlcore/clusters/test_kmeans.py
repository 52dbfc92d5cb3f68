"""PCA, k-means and the choice of k (mlcore/clusters/kmeans.py)."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from mlcore.clusters.kmeans import KMeansResult, choose_k, kmeans, reduce_pca


@pytest.fixture(scope="module")
def blobs():
    """Four well-separated blobs in 8 dimensions: any sound clustering recovers them exactly."""
    vectors, truth = make_blobs(n_samples=300, n_features=8, centers=4, cluster_std=0.5, random_state=0)
    return vectors.astype(np.float32), truth


def test_reduce_pca_returns_float32_rows_and_one_variance_ratio_per_component():
    vectors = np.random.default_rng(0).random((120, 30))

    reduced, ratio = reduce_pca(vectors, 10)

    assert reduced.shape == (120, 10) and reduced.dtype == np.float32
    assert ratio.shape == (10,)
    assert np.all(np.diff(ratio) <= 1e-12) and 0 < ratio.sum() <= 1 + 1e-6


def test_reduce_pca_keeps_no_more_components_than_rows_or_dimensions():
    rng = np.random.default_rng(0)

    assert reduce_pca(rng.random((20, 7)), 50)[0].shape == (20, 7)
    assert reduce_pca(rng.random((5, 40)), 50)[0].shape == (5, 5)


def test_reduce_pca_compares_rows_by_direction_not_length():
    vectors = np.random.default_rng(0).random((50, 12))
    stretched = vectors * np.linspace(0.1, 10, 50)[:, None]

    np.testing.assert_allclose(reduce_pca(stretched, 5)[0], reduce_pca(vectors, 5)[0], atol=1e-5)


def test_reduce_pca_on_large_input_is_deterministic_under_a_seed():
    vectors = np.random.default_rng(0).random((4000, 512), dtype=np.float32)  # above the randomised-solver size

    first, ratio = reduce_pca(vectors, 20, seed=3)
    again, _ = reduce_pca(vectors, 20, seed=3)

    assert first.shape == (4000, 20)
    np.testing.assert_array_equal(first, again)
    assert ratio.sum() > 0


@pytest.mark.parametrize("vectors, message", [
    (np.zeros((0, 5)), r"empty: shape \(0, 5\)"),
    (np.zeros(5), r"2-D array .* got shape \(5,\)"),
    (np.zeros((1, 5)), r"at least 2 rows, got shape \(1, 5\)"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
])
def test_reduce_pca_rejects_unusable_input(vectors, message):
    with pytest.raises(ValueError, match=message):
        reduce_pca(vectors)


def test_kmeans_returns_int64_labels_float32_centroids_and_the_inertia(blobs):
    vectors, _ = blobs

    result = kmeans(vectors, 4)

    assert isinstance(result, KMeansResult)
    assert result.labels.shape == (300,) and result.labels.dtype == np.int64
    assert set(result.labels.tolist()) == {0, 1, 2, 3}
    assert result.centroids.shape == (4, 8) and result.centroids.dtype == np.float32
    expected_inertia = ((vectors - result.centroids[result.labels]) ** 2).sum()
    assert isinstance(result.inertia, float) and result.inertia == pytest.approx(expected_inertia, rel=1e-3)


def test_kmeans_recovers_well_separated_blobs(blobs):
    vectors, truth = blobs

    assert adjusted_rand_score(truth, kmeans(vectors, 4).labels) > 0.99


def test_kmeans_is_deterministic_under_a_seed():
    vectors = np.random.default_rng(1).random((400, 6))  # no structure: the seeding decides the outcome

    first, again = kmeans(vectors, 7, seed=5), kmeans(vectors, 7, seed=5)

    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_array_equal(first.centroids, again.centroids)


@pytest.mark.parametrize("vectors, k, message", [
    (np.zeros((10, 3)), 1, "k=1 is too small"),
    (np.zeros((10, 3)), 11, r"k=11 exceeds the number of rows \(10\)"),
    (np.zeros((0, 3)), 2, r"empty: shape \(0, 3\)"),
    (np.zeros(10), 2, r"2-D array .* got shape \(10,\)"),
    (np.zeros((10, 3)), 2.5, "k must be an integer"),
])
def test_kmeans_rejects_bad_input_naming_the_numbers(vectors, k, message):
    with pytest.raises(ValueError, match=message):
        kmeans(vectors, k)


def test_choose_k_picks_the_true_number_of_clean_blobs(blobs):
    vectors, _ = blobs

    best, scores = choose_k(vectors, [2, 3, 4, 5, 6, 7], sample_size=200)

    assert best == 4
    assert sorted(scores) == [2, 3, 4, 5, 6, 7]
    assert all(isinstance(score, float) and -1 <= score <= 1 for score in scores.values())
    assert scores[4] == max(scores.values())


def test_choose_k_is_deterministic_under_a_seed(blobs):
    vectors, _ = blobs

    assert choose_k(vectors, [3, 5], seed=2, sample_size=100) == choose_k(vectors, [3, 5], seed=2, sample_size=100)


@pytest.mark.parametrize("ks, message", [
    ([], "ks is empty"),
    ([1, 3], r"2\.\.299 .* got ks=\[1, 3\]"),
    ([3, 300], r"2\.\.299 .* got ks=\[3, 300\]"),
])
def test_choose_k_rejects_candidates_the_silhouette_cannot_score(blobs, ks, message):
    vectors, _ = blobs

    with pytest.raises(ValueError, match=message):
        choose_k(vectors, ks)
