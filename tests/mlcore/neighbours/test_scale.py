"""Readable similarities (mlcore/neighbours/scale.py): a cosine read against the distances of random pairs of the same
feature set, so that near and far neighbours differ where every cosine rounds to 1.00."""

import numpy as np
import pytest

from mlcore.neighbours.index import NeighbourIndex
from mlcore.neighbours.scale import SimilarityScale

DIM = 64


def alike(n: int, *, seed: int = 0) -> np.ndarray:
    """Vectors that all point much the same way, as deep features of galaxies do: a shared direction plus a
    little noise around a few morphologies. Random pairs have cosines near 0.97."""
    rng = np.random.default_rng(seed)
    shared = np.abs(rng.standard_normal(DIM)) * 6
    centres = rng.standard_normal((8, DIM)) * 0.8
    return (shared + centres[rng.integers(8, size=n)] + rng.standard_normal((n, DIM)) * 0.6).astype(np.float32)


def pair_distances(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = (unit @ unit.T)[np.triu_indices(len(unit), k=1)]
    return np.sqrt(np.clip(2 - 2 * cosines, 0, 4))


VECTORS = alike(3000)
KEYS = np.arange(3000, dtype=np.int64)


@pytest.fixture(scope="module")
def scale() -> SimilarityScale:
    return SimilarityScale().fit(VECTORS)


def test_it_measures_every_pair_of_its_sample_and_keeps_the_median_distance():
    few = VECTORS[:300]
    fitted = SimilarityScale(sample=1000).fit(few)  # fewer vectors than the sample: every pair of them

    distances = pair_distances(few)
    assert fitted.n_pairs_ == 300 * 299 // 2
    assert fitted.typical_distance_ == pytest.approx(np.median(distances), abs=1e-5)
    assert fitted.quantiles_[0] == pytest.approx(distances.min(), abs=1e-5)
    assert fitted.quantiles_[-1] == pytest.approx(distances.max(), abs=1e-5)


def test_identical_features_read_1_a_typical_pair_0_and_a_farther_one_0_too(scale):
    typical_cosine = 1 - scale.typical_distance_ ** 2 / 2

    np.testing.assert_allclose(scale.likeness([1.0, typical_cosine, typical_cosine - 0.05, -1.0]), [1, 0, 0, 0],
                               atol=1e-6)
    assert scale.closer_than(typical_cosine) == pytest.approx(0.5, abs=1e-3)
    assert scale.closer_than(1.0) == 1.0 and scale.closer_than(-1.0) == 0.0


def test_the_share_of_random_pairs_farther_apart_matches_counting_them(scale):
    sample = VECTORS[np.sort(np.random.default_rng(0).choice(len(VECTORS), 1000, replace=False))]
    distances = pair_distances(sample)
    for quantile in (0.001, 0.05, 0.3, 0.9):
        distance = np.quantile(distances, quantile)
        cosine = 1 - distance ** 2 / 2
        assert scale.closer_than(cosine) == pytest.approx(np.mean(distances > distance), abs=2e-3)


def test_the_1st_and_the_10th_neighbour_read_differently_where_their_cosines_round_alike(scale):
    index = NeighbourIndex(kind="exact").fit(VECTORS, KEYS)
    random_pairs = pair_distances(VECTORS[:500])
    assert np.median(1 - random_pairs ** 2 / 2) > 0.95  # cosines bunch up near 1, as in real feature sets
    figures = []
    for key in (0, 1, 2):
        cosines = np.array([score for _, score in index.similar(VECTORS[key], 10, exclude_key=key)])
        likeness = scale.likeness(cosines)
        assert np.all(np.diff(likeness) <= 1e-12)  # nearest first, as the cosines
        assert round(cosines[0], 2) == round(cosines[-1], 2)  # "1.00" for both ...
        assert likeness[0] - likeness[-1] > 0.05  # ... but not on the scale
        assert 0.1 < likeness[-1] < likeness[0] < 0.95
        figures.append(np.round(100 * likeness).astype(int).tolist())
    assert figures[0] != figures[1] != figures[2]


def test_scale_dtype_and_seed_do_not_change_the_figures_and_a_seed_reproduces_them():
    vectors = alike(500, seed=1)
    fitted = SimilarityScale(sample=200, seed=3).fit(vectors)
    again = SimilarityScale(sample=200, seed=3).fit((vectors * 9.5).astype(np.float16))

    assert fitted.typical_distance_ == pytest.approx(again.typical_distance_, abs=1e-3)
    np.testing.assert_array_equal(SimilarityScale(sample=200, seed=3).fit(vectors).quantiles_, fitted.quantiles_)
    assert repr(fitted).startswith("SimilarityScale(sample=200, typical_distance_=")


def test_identical_vectors_everywhere_make_only_identical_pairs_alike():
    fitted = SimilarityScale().fit(np.ones((5, DIM), np.float32))

    assert fitted.typical_distance_ == 0
    np.testing.assert_array_equal(fitted.likeness([1.0, 0.99]), [1.0, 0.0])


def test_an_unfitted_scale_and_bad_input_raise_value_error_naming_the_problem():
    with pytest.raises(ValueError, match="not fitted"):
        SimilarityScale().likeness([0.9])
    with pytest.raises(ValueError, match="not fitted"):
        SimilarityScale().closer_than([0.9])
    with pytest.raises(ValueError, match=r"\(n, dim\) with n >= 2, got \(1, 64\)"):
        SimilarityScale().fit(VECTORS[:1])
    with pytest.raises(ValueError, match=r"got \(64,\)"):
        SimilarityScale().fit(VECTORS[0])
    with pytest.raises(ValueError, match="sample must be an integer of at least 2"):
        SimilarityScale(sample=1).fit(VECTORS)
    with pytest.raises(ValueError, match="NaN"):
        SimilarityScale().fit(np.full((3, DIM), np.nan, np.float32))
