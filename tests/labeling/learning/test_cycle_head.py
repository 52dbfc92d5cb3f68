"""After a retrain cycle is activated, the probability model on its features averages the cycle's own class head
with the regression refitted on those features (labeling/services/learning/classifier.py): the head is what the
Training page measured, the regression carries the labels that arrive later."""

import numpy as np
import pytest

from labeling.models import FeatureSet, ModelVersion
from labeling.services.learning.classifier import classifier_fit
from mlcore.active.head import ProbabilityHead
from mlcore.features.store import FeatureStore
from mlcore.training.class_head import HEAD_WEIGHT, ClassHead, blend, read_class_head
from mlcore.training.galaxy_model import heads_path
from tests.labeling.ml_helpers import extracted, galaxy10_subset_for_training, retrain_cycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(tmp_path):
    """(cycle version, a feature set of its weights on the dataset it was trained on)."""
    dataset = galaxy10_subset_for_training(tmp_path / "import")
    version = ModelVersion.objects.get(pk=retrain_cycle(dataset).result["model_version"])
    feature_set = (FeatureSet.objects.filter(model_version=version, dataset=dataset, count__gt=0).first()
                   or extracted(dataset, version))
    return version, feature_set


def served(classifier) -> dict[int, dict[str, float]]:
    return dict(classifier.predictions.values_list("galaxy_id", "probabilities"))


def regression_and_head(classifier, version, feature_set):
    keys, vectors = next(FeatureStore.open(feature_set.store_dir).iter_batches())
    regression = ProbabilityHead.load(classifier.path).predict_proba(vectors)
    head = read_class_head(version.checkpoint)
    columns = [head.classes.index(key) for key in classifier.classes]
    return keys, regression, head.predict_proba(vectors)[:, columns]


def test_predictions_on_a_cycles_features_average_its_head_and_the_refitted_regression(trained):
    version, feature_set = trained
    classifier = classifier_fit(feature_set=feature_set, schema=version.schema)
    assert classifier.metrics["cycle_head"] == version.name
    keys, regression, head = regression_and_head(classifier, version, feature_set)
    expected = (1 - HEAD_WEIGHT) * regression + HEAD_WEIGHT * head
    assert np.abs(regression - head).max() > 0.01  # the two disagree, so the average is not either one
    rows = served(classifier)
    got = np.array([[rows[int(k)][c] for c in classifier.classes] for k in keys])
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_an_unreadable_heads_file_leaves_the_regression_alone_and_says_why(trained):
    version, feature_set = trained
    heads_path(version.checkpoint).write_bytes(b"not a heads file")
    classifier = classifier_fit(feature_set=feature_set, schema=version.schema)
    assert "cycle_head" not in classifier.metrics and "heads" in classifier.metrics["cycle_head_error"]
    keys, vectors = next(FeatureStore.open(feature_set.store_dir).iter_batches())
    regression = ProbabilityHead.load(classifier.path).predict_proba(vectors)
    rows = served(classifier)
    np.testing.assert_allclose([[rows[int(k)][c] for c in classifier.classes] for k in keys], regression, atol=2e-5)


def test_a_cycle_of_another_schema_is_not_asked(trained):
    version, feature_set = trained
    ModelVersion.objects.filter(pk=version.pk).update(schema=None)
    feature_set.refresh_from_db()
    classifier = classifier_fit(feature_set=feature_set, schema=version.schema)
    assert not {"cycle_head", "cycle_head_error"} & set(classifier.metrics)


def test_a_class_the_cycle_never_learnt_keeps_the_regressions_probability():
    head = ClassHead(classes=["a", "b"], weight=np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
                     bias=np.zeros(2, np.float32))
    probs = np.array([[0.2, 0.3, 0.5]])
    mixed = blend(probs, ["a", "b", "c"], head.predict_proba(np.array([[5.0, 0.0]], np.float32)), head.classes)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)
    assert mixed[0, 2] == pytest.approx(0.5)
    sure_of_a = 1 / (1 + np.exp(-5.0))
    assert mixed[0, 0] == pytest.approx(0.5 * 0.2 + 0.5 * 0.5 * sure_of_a)


def test_a_cycle_with_a_parent_is_also_averaged_with_the_regression_on_its_parents_features(tmp_path):
    from labeling.services.learning.classifier import queue_policy, training_labels
    from mlcore.training.class_head import PARENT_ENSEMBLE_WEIGHT
    from tests.labeling.ml_helpers import tiny_model

    dataset = galaxy10_subset_for_training(tmp_path / "import")
    parent = tiny_model()
    parent_set = extracted(dataset, parent)
    version = ModelVersion.objects.get(pk=retrain_cycle(dataset, base=parent).result["model_version"])
    assert version.parent == parent
    feature_set = (FeatureSet.objects.filter(model_version=version, dataset=dataset, count__gt=0).first()
                   or extracted(dataset, version))
    classifier = classifier_fit(feature_set=feature_set, schema=version.schema)
    assert classifier.metrics["parent_ensemble"] == parent.name
    assert classifier.metrics["parent_ensemble_weight"] == PARENT_ENSEMBLE_WEIGHT
    keys, regression, head = regression_and_head(classifier, version, feature_set)
    labels, _ = training_labels(dataset=dataset, schema=version.schema,
                                min_agreement=queue_policy(dataset=dataset).consensus_min_agreement)
    parent_store = FeatureStore.open(parent_set.store_dir)
    label_keys = sorted(labels)
    parent_head = ProbabilityHead(seed=0).fit(parent_store.get(label_keys), [labels[k] for k in label_keys])
    parent_probs = parent_head.predict_proba(parent_store.get(keys))[
        :, [list(parent_head.classes_).index(c) for c in classifier.classes]]
    cycle_alone = (1 - HEAD_WEIGHT) * regression + HEAD_WEIGHT * head
    assert np.abs(cycle_alone - parent_probs).max() > 0.01
    expected = (1 - PARENT_ENSEMBLE_WEIGHT) * cycle_alone + PARENT_ENSEMBLE_WEIGHT * parent_probs
    rows = served(classifier)
    got = np.array([[rows[int(k)][c] for c in classifier.classes] for k in keys])
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_without_the_parents_features_the_cycle_serves_alone_and_says_why(trained):
    from tests.labeling.ml_helpers import tiny_model

    version, feature_set = trained
    ModelVersion.objects.filter(pk=version.pk).update(parent=tiny_model(image_size=48))
    feature_set.refresh_from_db()
    classifier = classifier_fit(feature_set=feature_set, schema=version.schema)
    assert "parent_ensemble" not in classifier.metrics
    assert "has no feature vectors of" in classifier.metrics["parent_ensemble_error"]
    keys, regression, head = regression_and_head(classifier, version, feature_set)
    rows = served(classifier)
    np.testing.assert_allclose([[rows[int(k)][c] for c in classifier.classes] for k in keys],
                               (1 - HEAD_WEIGHT) * regression + HEAD_WEIGHT * head, atol=2e-5)
