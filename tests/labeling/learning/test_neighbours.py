"""Neighbour indexes and the neighbour query the pages share, on real Galaxy10 images."""

import numpy as np
import pytest
from PIL import Image

from labeling import selectors
from labeling.models import Galaxy
from labeling.services.imports.galaxies import galaxies_import
from mlcore.features.store import FeatureStore
from tests.labeling.ml_helpers import extracted, galaxy10_subset, indexed

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset(tmp_path / "import")


def _brute_force(feature_set, galaxy, k):
    store = FeatureStore.open(feature_set.store_dir)
    keys = store.keys()
    vectors = store.get(keys).astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = vectors @ vectors[list(keys).index(galaxy.pk)]
    order = [int(keys[i]) for i in np.argsort(-scores) if keys[i] != galaxy.pk]
    return order[:k], sorted(scores, reverse=True)[1:k + 1]


def test_the_neighbours_of_a_galaxy_are_the_most_similar_others_best_first(dataset):
    feature_set = indexed(extracted(dataset))
    galaxy = dataset.galaxies.order_by("pk")[3]

    neighbours = selectors.galaxy_neighbours(galaxy=galaxy, feature_set=feature_set, k=5)

    expected_keys, expected_scores = _brute_force(feature_set, galaxy, 5)
    assert [n.galaxy.pk for n in neighbours] == expected_keys
    assert [n.score for n in neighbours] == pytest.approx(expected_scores, abs=2e-3)
    assert galaxy.pk not in [n.galaxy.pk for n in neighbours]
    assert feature_set.index_kind == "exact" and feature_set.index_recall == 1.0
    assert feature_set.index_count == 18 and not feature_set.index_is_stale


def test_an_approximate_index_is_built_when_asked_and_reports_its_recall(dataset):
    feature_set = indexed(extracted(dataset), kind="hnsw")
    assert feature_set.index_kind == "hnsw" and 0.9 <= feature_set.index_recall <= 1.0
    galaxy = dataset.galaxies.first()
    assert len(selectors.galaxy_neighbours(galaxy=galaxy, feature_set=feature_set, k=17)) == 17


def test_a_galaxy_without_a_vector_has_no_neighbours_and_k_must_be_positive(dataset):
    feature_set = indexed(extracted(dataset))
    lonely = Galaxy.objects.create(dataset=dataset, external_id="catalogue-only")
    assert selectors.galaxy_neighbours(galaxy=lonely, feature_set=feature_set, k=8) == []
    with pytest.raises(ValueError, match="k must be at least 1"):
        selectors.galaxy_neighbours(galaxy=dataset.galaxies.first(), feature_set=feature_set, k=0)


def test_galaxies_added_after_the_index_make_it_stale_until_it_is_rebuilt(dataset, tmp_path):
    feature_set = indexed(extracted(dataset))
    galaxy10_subset(tmp_path / "more", classes=("6",), per_class=2, name=dataset.name)
    feature_set = extracted(dataset)
    assert feature_set.count == 20 and feature_set.index_is_stale
    assert indexed(feature_set).index_count == 20


def test_a_rotated_copy_of_a_galaxy_is_its_nearest_neighbour_under_rotation_invariant_features(dataset, tmp_path):
    original = dataset.galaxies.get(external_id="g10_class_5_0")
    folder = tmp_path / "turned"
    folder.mkdir()
    with Image.open(original.image.path) as image:
        image.transpose(Image.Transpose.ROTATE_90).save(folder / "turned.png")
    galaxies_import(dataset_name=dataset.name, fmt="folder", path=folder)
    turned = dataset.galaxies.get(external_id="turned")

    invariant = indexed(extracted(dataset, rotation_invariant=True))
    nearest = selectors.galaxy_neighbours(galaxy=turned, feature_set=invariant, k=1)[0]

    assert nearest.galaxy == original and nearest.score > 0.99


def test_the_pages_use_the_active_model_versions_features_else_the_latest_index(dataset):
    from labeling.services.learning.model_versions import model_version_activate
    from tests.labeling.ml_helpers import tiny_model

    first = indexed(extracted(dataset))
    second = indexed(extracted(dataset, tiny_model(seed=1)))
    assert selectors.feature_set_for(dataset=dataset) == second
    model_version_activate(version=first.model_version, dataset=dataset)
    assert selectors.feature_set_for(dataset=dataset) == first
    assert selectors.feature_set_for(dataset=dataset, feature_set_id=second.pk) == second


def test_the_index_build_passes_on_the_size_from_which_auto_builds_ivfpq_from_the_settings(dataset, settings,
                                                                                           monkeypatch):
    from mlcore.neighbours.index import NeighbourIndex

    settings.GALAXY_INDEX_IVFPQ_MIN = 12
    thresholds = []
    fit = NeighbourIndex.fit

    def recording_fit(index, vectors, keys):
        thresholds.append(index.ivfpq_min)
        return fit(index, vectors, keys)

    monkeypatch.setattr(NeighbourIndex, "fit", recording_fit)

    feature_set = indexed(extracted(dataset))

    assert thresholds == [12]
    assert feature_set.index_kind == "exact"  # exact_max (10,000) still wins over ivfpq_min for 18 galaxies
