"""Building the experts' queues: the strategy's choice, recorded with its reasons, dealt so that two experts do not
get the same galaxy except the share deliberately double-labelled."""

import pytest

from labeling import tasks
from labeling.models import Classifier, ExpertLabel, Job, LabelClass, Prediction, QueueEntry
from labeling.services.labelling.actions import entry_skip, label_give
from labeling.services.labelling.queue import queue_build
from labeling.services.learning.classifier import classifier_fit, classifier_fit_start
from tests.labeling.ml_helpers import finished
from tests.labeling.queue_helpers import partly_labelled, policy, with_features

pytestmark = pytest.mark.django_db


@pytest.fixture
def labelled(tmp_path):
    return partly_labelled(tmp_path / "import")


def pending(expert, schema):
    return list(QueueEntry.objects.filter(expert=expert, schema=schema, status="pending").order_by("rank"))


def test_two_experts_get_different_galaxies_and_each_entry_says_why(labelled, expert, second_expert):
    dataset, schema = labelled
    feature_set = with_features(dataset)
    policy(dataset, batch_size=5, double_label_share=0)
    summary = queue_build(dataset=dataset, schema=schema, experts=[expert, second_expert], strategy="kcenter")
    mine, theirs = pending(expert, schema), pending(second_expert, schema)
    assert summary["entries"] == len(mine) + len(theirs) == 10
    assert not {e.galaxy_id for e in mine} & {e.galaxy_id for e in theirs}
    assert [e.rank for e in mine] == [1, 2, 3, 4, 5]
    entry = mine[0]
    assert entry.strategy == entry.requested_strategy == "kcenter"
    assert entry.model_version == feature_set.model_version
    assert entry.score is not None and entry.components


def test_labelled_galaxies_are_never_queued(labelled, expert):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=50)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="random")
    labelled_ids = set(ExpertLabel.objects.filter(galaxy__dataset=dataset).values_list("galaxy_id", flat=True))
    queued = {e.galaxy_id for e in pending(expert, schema)}
    assert len(labelled_ids) == 6 and len(queued) == 12
    assert not queued & labelled_ids


def test_an_uncertainty_strategy_starts_cold_with_representative_galaxies(labelled, expert):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=4)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="margin")
    entries = pending(expert, schema)
    assert {e.strategy for e in entries} == {"typiclust"}
    assert {e.requested_strategy for e in entries} == {"margin"}
    assert all(e.classifier is None for e in entries)


def test_with_a_fitted_model_and_enough_labels_the_queue_uses_its_uncertainty(labelled, expert):
    dataset, schema = labelled
    feature_set = with_features(dataset, index=False)
    policy(dataset, batch_size=4, min_labels=5, double_label_share=0)
    classifier = classifier_fit(feature_set=feature_set, schema=schema)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="margin")
    entries = pending(expert, schema)
    assert {e.strategy for e in entries} == {"margin"}
    assert all(e.classifier == classifier for e in entries)
    # The first galaxy is the one whose two likeliest classes are closest.
    gaps = {}
    for prediction in Prediction.objects.filter(classifier=classifier, galaxy_id__in=[e.galaxy_id for e in entries]):
        top = sorted(prediction.probabilities.values(), reverse=True)
        gaps[prediction.galaxy_id] = top[0] - top[1]
    assert entries[0].galaxy_id == min(gaps, key=gaps.get)


def test_a_share_of_each_queue_is_given_to_a_second_expert_to_measure_agreement(labelled, expert, second_expert):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=4, double_label_share=0.5)
    summary = queue_build(dataset=dataset, schema=schema, experts=[expert, second_expert], strategy="random")
    assert summary["double_labelled"] == 4
    for me, other in ((expert, second_expert), (second_expert, expert)):
        doubles = [e for e in pending(me, schema) if e.double_label]
        singles = {e.galaxy_id for e in pending(other, schema) if not e.double_label}
        assert len(doubles) == 2
        assert {e.galaxy_id for e in doubles} <= singles
        # Spread through the queue rather than all at its end.
        assert min(e.rank for e in doubles) < len(pending(me, schema))


def test_a_galaxy_another_expert_labelled_is_preferred_for_the_second_opinion(labelled, expert, second_expert):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=4, double_label_share=0.25)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="random")
    first = pending(expert, schema)[0]
    label_give(expert=expert, galaxy=first.galaxy, schema=schema, label_class=LabelClass.objects.get(
        schema=schema, key="2"))
    queue_build(dataset=dataset, schema=schema, experts=[second_expert], strategy="random")
    doubles = [e for e in pending(second_expert, schema) if e.double_label]
    assert [e.galaxy_id for e in doubles] == [first.galaxy_id]


def test_rebuilding_one_experts_queue_leaves_the_others_galaxies_alone(labelled, expert, second_expert):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=6, double_label_share=0)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="random")
    mine = {e.galaxy_id for e in pending(expert, schema)}
    queue_build(dataset=dataset, schema=schema, experts=[second_expert], strategy="random")
    assert {e.galaxy_id for e in pending(expert, schema)} == mine
    assert not {e.galaxy_id for e in pending(second_expert, schema)} & mine


def test_a_skipped_galaxy_is_not_offered_to_the_same_expert_again(labelled, expert):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=50, double_label_share=0)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="random")
    skipped = pending(expert, schema)[0]
    entry_skip(expert=expert, entry=skipped)
    queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="random")
    assert skipped.galaxy_id not in {e.galaxy_id for e in pending(expert, schema)}
    assert len(pending(expert, schema)) == 11


def test_without_features_the_queue_still_fills_at_random(labelled, expert):
    dataset, schema = labelled
    policy(dataset, batch_size=3)
    summary = queue_build(dataset=dataset, schema=schema, experts=[expert])
    entries = pending(expert, schema)
    assert len(entries) == 3 and summary["requested_strategy"] == "cluster_margin"
    assert all(e.model_version is None for e in entries)


def test_an_unknown_strategy_is_refused_by_name(labelled, expert):
    dataset, schema = labelled
    with pytest.raises(ValueError, match="unknown strategy 'cleverest'"):
        queue_build(dataset=dataset, schema=schema, experts=[expert], strategy="cleverest")


def test_the_refit_job_fits_the_model_and_then_rebuilds_every_queue(labelled, expert,
                                                                    django_capture_on_commit_callbacks):
    dataset, schema = labelled
    with_features(dataset, index=False)
    policy(dataset, batch_size=3)
    job = classifier_fit_start(dataset=dataset, schema=schema, enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.fit_classifier(job.pk)
    result = finished(job).result
    classifier = Classifier.objects.get(pk=result["classifier"])
    assert classifier.n_labels == 6 and sorted(classifier.classes) == ["2", "5", "8"]
    assert Prediction.objects.filter(classifier=classifier).count() == 18
    rebuild = Job.objects.get(pk=result["queue_job"])
    assert finished(rebuild).kind == Job.Kind.BUILD_QUEUE
    assert len(pending(expert, schema)) == 3


def test_a_refit_with_one_class_fails_with_the_reason_and_keeps_the_old_predictions(labelled):
    dataset, schema = labelled
    feature_set = with_features(dataset, index=False)
    old = classifier_fit(feature_set=feature_set, schema=schema)
    ExpertLabel.objects.filter(galaxy__dataset=dataset).exclude(label_class__key="2").delete()
    job = classifier_fit_start(dataset=dataset, schema=schema, enqueue=False)
    tasks.fit_classifier(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "at least two classes" in job.error
    assert Prediction.objects.filter(classifier=old).count() == 18


def test_only_the_latest_three_model_files_are_kept(labelled):
    from pathlib import Path

    dataset, schema = labelled
    feature_set = with_features(dataset, index=False)
    fitted = [classifier_fit(feature_set=feature_set, schema=schema) for _ in range(4)]
    assert [Path(c.path).exists() for c in fitted] == [False, True, True, True]
    assert Classifier.objects.count() == 4
