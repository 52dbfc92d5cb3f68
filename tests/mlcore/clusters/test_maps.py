"""2-D maps of feature vectors (mlcore/clusters/maps.py). t-SNE and UMAP data stay small: both are slow to start."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from mlcore.clusters.kmeans import reduce_pca
from mlcore.clusters.maps import METHODS, embed_2d


@pytest.fixture(scope="module")
def blobs():
    """Three classes in 20 dimensions, 150 rows."""
    vectors, truth = make_blobs(n_samples=150, n_features=20, centers=3, cluster_std=2.0, random_state=0)
    return vectors.astype(np.float32), truth


@pytest.mark.parametrize("method", ["pca", "tsne", "lda"])
def test_each_method_returns_finite_float32_coordinates_for_every_row(blobs, method):
    vectors, truth = blobs

    coordinates = embed_2d(vectors, method, labels=truth)

    assert coordinates.shape == (150, 2) and coordinates.dtype == np.float32
    assert np.isfinite(coordinates).all()


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_the_same_seed_gives_the_same_map(blobs, method):
    vectors, _ = blobs

    np.testing.assert_array_equal(embed_2d(vectors, method, seed=4), embed_2d(vectors, method, seed=4))


def test_umap_returns_a_finite_map_that_the_seed_fixes(blobs):
    vectors, _ = blobs

    first = embed_2d(vectors, "umap", seed=1)
    again = embed_2d(vectors, "umap", seed=1)

    assert first.shape == (150, 2) and first.dtype == np.float32 and np.isfinite(first).all()
    np.testing.assert_array_equal(first, again)


def test_pca_of_reduce_pca_output_is_its_first_two_components(blobs):
    vectors, _ = blobs
    reduced, _ = reduce_pca(vectors, 10)

    coordinates = embed_2d(reduced, "pca")

    # Same axes up to sign: the map does not normalise the rows a second time.
    np.testing.assert_allclose(np.abs(coordinates), np.abs(reduced[:, :2]), atol=1e-4)


def test_pca_of_two_rows_still_gives_two_columns():
    coordinates = embed_2d(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), "pca")

    assert coordinates.shape == (2, 2) and np.isfinite(coordinates).all()


def test_lda_fits_on_labelled_rows_only_and_places_every_row(blobs):
    vectors, truth = blobs
    labels = [str(t) if i % 3 == 0 else (None if i % 2 else -1) for i, t in enumerate(truth)]  # a third labelled

    coordinates = embed_2d(vectors, "lda", labels=labels)

    assert coordinates.shape == (150, 2) and np.isfinite(coordinates).all()
    # The discriminant axes pull the classes apart: each class mean is far from the others relative to the spread.
    means = np.array([coordinates[truth == c].mean(axis=0) for c in range(3)])
    spread = max(coordinates[truth == c].std(axis=0).max() for c in range(3))
    gaps = [np.linalg.norm(means[a] - means[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > 3 * spread


def test_lda_with_two_classes_fills_the_second_axis_from_the_remaining_variance(blobs):
    vectors, truth = blobs
    labels = np.where(truth == 0, 0, 1)

    coordinates = embed_2d(vectors, "lda", labels=labels)

    assert coordinates.shape == (150, 2)
    assert coordinates[:, 1].std() > 0
    first_axis = [coordinates[labels == c, 0] for c in (0, 1)]
    within = max(values.std() for values in first_axis)
    assert abs(first_axis[0].mean() - first_axis[1].mean()) > 3 * within


@pytest.mark.parametrize("labels, message", [
    (None, "method 'lda' needs labels"),
    ([-1] * 150, r"at least 2 distinct classes among the labelled rows, got 0 \(0 labelled rows of 150\)"),
    (["spiral"] * 10 + [None] * 140, r"at least 2 distinct classes .* got 1 \(10 labelled"),
    (["spiral", "elliptical"] + [""] * 148, "more labelled rows than classes: 2 labelled rows for 2 classes"),
    ([0, 1, 2], r"one entry per row: shape \(3,\) for vectors of shape \(150, 20\)"),
])
def test_lda_explains_what_labels_it_lacks(blobs, labels, message):
    vectors, _ = blobs

    with pytest.raises(ValueError, match=message):
        embed_2d(vectors, "lda", labels=labels)


def test_an_unknown_method_is_rejected_with_the_list_of_methods(blobs):
    vectors, _ = blobs

    with pytest.raises(ValueError, match="unknown embedding method 'mds'; choose one of pca, tsne, umap, lda"):
        embed_2d(vectors, "mds")
    assert METHODS == ("pca", "tsne", "umap", "lda")


@pytest.mark.parametrize("vectors, method, message", [
    (np.zeros((0, 4)), "pca", r"empty: shape \(0, 4\)"),
    (np.zeros(4), "pca", r"2-D array .* got shape \(4,\)"),
    (np.zeros((1, 4)), "pca", r"at least 2 rows and 2 dimensions, got shape \(1, 4\)"),
    (np.zeros((10, 1)), "pca", r"at least 2 rows and 2 dimensions, got shape \(10, 1\)"),
    (np.random.default_rng(0).random((4, 3)), "tsne", r"tsne needs at least 5 rows, got shape \(4, 3\)"),
])
def test_it_rejects_input_it_cannot_map(vectors, method, message):
    with pytest.raises(ValueError, match=message):
        embed_2d(vectors, method)
