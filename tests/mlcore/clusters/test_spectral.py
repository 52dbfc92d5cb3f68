"""Landmark-based spectral clustering (mlcore/clusters/spectral.py)."""

import numpy as np
import pytest
from sklearn.cluster import SpectralClustering
from sklearn.datasets import make_blobs, make_circles, make_moons
from sklearn.metrics import adjusted_rand_score

from mlcore.clusters.kmeans import kmeans
from mlcore.clusters.spectral import ScalableSpectral


@pytest.fixture(scope="module")
def blobs():
    vectors, truth = make_blobs(n_samples=400, n_features=8, centers=5, cluster_std=0.6, random_state=0)
    return vectors.astype(np.float32), truth


def test_fit_returns_itself_with_int64_labels_landmarks_and_embedding(blobs):
    vectors, _ = blobs
    model = ScalableSpectral(5, n_landmarks=60)

    assert model.fit(vectors) is model
    assert model.labels_.shape == (400,) and model.labels_.dtype == np.int64
    assert set(model.labels_.tolist()) == {0, 1, 2, 3, 4}
    assert model.landmarks_.shape == (60, 8) and model.landmarks_.dtype == np.float32
    assert model.embedding_.shape == (400, 5) and np.isfinite(model.embedding_).all()


def test_init_only_stores_hyperparameters():
    model = ScalableSpectral(3, n_landmarks=10, n_nearest=2, seed=4)

    assert (model.n_clusters, model.n_landmarks, model.n_nearest, model.seed) == (3, 10, 2, 4)
    assert not hasattr(model, "labels_")


def test_it_recovers_well_separated_blobs(blobs):
    vectors, truth = blobs

    assert adjusted_rand_score(truth, ScalableSpectral(5).fit_predict(vectors)) > 0.99


def test_it_uses_at_most_one_landmark_per_four_rows(blobs):
    vectors, _ = blobs

    assert ScalableSpectral(5, n_landmarks=1000).fit(vectors).landmarks_.shape == (100, 8)


def test_it_is_deterministic_under_a_seed():
    vectors = np.random.default_rng(2).random((500, 5))  # no structure: only the seed makes runs agree

    first = ScalableSpectral(6, n_landmarks=50, seed=7).fit_predict(vectors)
    again = ScalableSpectral(6, n_landmarks=50, seed=7).fit_predict(vectors)

    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("make", [
    lambda: make_circles(n_samples=400, factor=0.4, noise=0.05, random_state=0),
    lambda: make_moons(n_samples=400, noise=0.06, random_state=0),
], ids=["rings", "moons"])
def test_it_separates_non_convex_clusters_that_kmeans_cuts_in_half(make):
    vectors, truth = make()

    spectral = adjusted_rand_score(truth, ScalableSpectral(2).fit_predict(vectors))
    straight = adjusted_rand_score(truth, kmeans(vectors, 2).labels)

    assert spectral > 0.95
    assert straight < 0.5


@pytest.mark.filterwarnings("ignore:Graph is not fully connected")  # sklearn's 10-NN graph, not ours
def test_it_agrees_with_sklearns_exact_spectral_clustering_on_overlapping_blobs():
    vectors, truth = make_blobs(n_samples=800, n_features=6, centers=6, cluster_std=1.6, random_state=3)
    exact = SpectralClustering(6, affinity="nearest_neighbors", random_state=0).fit_predict(vectors)

    scalable = ScalableSpectral(6, n_landmarks=200).fit_predict(vectors)

    assert adjusted_rand_score(exact, scalable) > 0.85
    assert adjusted_rand_score(truth, scalable) > adjusted_rand_score(truth, exact) - 0.05


@pytest.mark.parametrize("vectors, kwargs, message", [
    (np.zeros((10, 3)), {"n_clusters": 1}, "n_clusters=1 is too small"),
    (np.zeros((10, 3)), {"n_clusters": 11}, r"n_clusters=11 exceeds the number of rows \(10\)"),
    (np.zeros((0, 3)), {"n_clusters": 2}, r"X is empty: shape \(0, 3\)"),
    (np.zeros(10), {"n_clusters": 2}, r"2-D array .* got shape \(10,\)"),
    (np.zeros((10, 3)), {"n_clusters": 4, "n_landmarks": 3}, "n_landmarks=3 is below n_clusters=4"),
    (np.zeros((10, 3)), {"n_clusters": 2, "n_nearest": 0}, "n_nearest must be at least 1, got 0"),
])
def test_fit_rejects_bad_input_naming_the_numbers(vectors, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScalableSpectral(**kwargs).fit(vectors)
