"""Each dataset's own active model version: activating a version on one dataset (the chain extract -> index ->
activate -> cluster -> queues) makes it serve that dataset's neighbours, clusters and queues and changes no other
dataset; a dataset's rollback activates its previous version again and leaves the others alone. Like every test
here it runs on SQLite and on PostgreSQL (tests/run_suite.py); the race at the end needs PostgreSQL's row locks."""

import threading

import pytest
from django.db import connection
from django.test import TestCase

from labeling.models import Activation, Clustering, Dataset, Job, ModelVersion, QueueEntry
from labeling.selectors.similarity import feature_set_for
from labeling.selectors.training import rollback_target
from labeling.services.labelling.queue import queue_build
from labeling.services.learning.activation import dataset_rollback, version_activate
from labeling.services.learning.classifier import current_feature_set
from labeling.services.learning.model_versions import ModelVersionError, model_version_activate
from tests.labeling.ml_helpers import extracted, indexed, tiny_model
from tests.labeling.queue_helpers import partly_labelled

pytestmark = pytest.mark.django_db


@pytest.fixture
def surveys(tmp_path, expert):
    """Two datasets of the same real galaxies, partly labelled, and an expert whose queues the chains rebuild."""
    north, schema = partly_labelled(tmp_path / "north", name="North survey")
    south, _ = partly_labelled(tmp_path / "south", name="South survey")
    return north, south, schema


@pytest.fixture
def versions():
    return tiny_model(seed=0), tiny_model(seed=1)


def activate(version: ModelVersion, dataset: Dataset) -> None:
    """The whole activation chain, run inline as the workers would run it."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        version_activate(version=version, dataset=dataset)
    dataset.refresh_from_db()
    assert set(Job.objects.filter(dataset=dataset).values_list("status", flat=True)) == {Job.Status.SUCCEEDED}


def queued_versions(dataset: Dataset) -> set[int]:
    return set(QueueEntry.objects.filter(dataset=dataset).values_list("model_version", flat=True))


def neighbours(client, galaxy, **params) -> list[tuple[int, float]]:
    response = client.get(f"/api/galaxies/{galaxy.pk}/neighbours/", {"k": 5, **params})
    assert response.status_code == 200, response.content
    return [(row["galaxy"], round(row["similarity"], 5)) for row in response.json()]


def test_each_dataset_serves_its_own_versions_neighbours_clusters_and_queues(client, expert, surveys, versions):
    north, south, schema = surveys
    a, b = versions
    activate(a, north)
    # North also holds B's vectors, indexed after A's (a comparison someone ran): with one active version for the
    # whole site, activating B on South made these serve North too.
    north_b = indexed(extracted(north, b))
    north_clusterings = set(Clustering.objects.filter(feature_set__dataset=north).values_list("pk", flat=True))
    north_queue = set(QueueEntry.objects.filter(dataset=north).values_list("pk", "galaxy", "model_version"))
    north_history = list(Activation.objects.filter(dataset=north).values_list("pk", flat=True))

    activate(b, south)

    north.refresh_from_db()
    assert (north.active_version, south.active_version) == (a, b)
    assert feature_set_for(dataset=north).model_version == a and feature_set_for(dataset=south).model_version == b
    assert current_feature_set(dataset=north).model_version == a
    assert current_feature_set(dataset=south).model_version == b
    # South's chain clustered and queued South alone, and North's history did not move.
    assert set(Clustering.objects.filter(feature_set__dataset=north).values_list("pk", flat=True)) == north_clusterings
    assert Clustering.objects.filter(feature_set__dataset=south, feature_set__model_version=b).exists()
    assert set(QueueEntry.objects.filter(dataset=north).values_list("pk", "galaxy", "model_version")) == north_queue
    assert queued_versions(north) == {a.pk} and queued_versions(south) == {b.pk}
    assert list(Activation.objects.filter(dataset=north).values_list("pk", flat=True)) == north_history
    # A later rebuild of North's queues (after a label, say) still chooses by A's features.
    queue_build(dataset=north, schema=schema)
    assert queued_versions(north) == {a.pk}
    # A North galaxy's neighbours, as a script asks for them, are A's and not B's.
    client.force_login(expert)
    galaxy = north.galaxies.order_by("pk").first()
    north_a = feature_set_for(dataset=north)
    assert neighbours(client, galaxy) == neighbours(client, galaxy, feature_set=north_a.pk)
    assert neighbours(client, galaxy) != neighbours(client, galaxy, feature_set=north_b.pk)
    assert {row["galaxy"] for row in client.get(f"/api/galaxies/{galaxy.pk}/neighbours/").json()} <= set(
        north.galaxies.values_list("pk", flat=True))
    # The API says which datasets each version serves.
    served = {row["id"]: row["active_for"] for row in client.get("/api/model-versions/").json()["results"]}
    assert served == {a.pk: [north.pk], b.pk: [south.pk]}
    datasets = {row["id"]: row["active_version"] for row in client.get("/api/datasets/").json()["results"]}
    assert datasets == {north.pk: a.pk, south.pk: b.pk}


def test_a_rollback_activates_the_datasets_previous_version_and_leaves_the_others_alone(surveys, versions):
    north, south, _ = surveys
    a, b = versions
    activate(a, north)
    activate(b, north)
    activate(a, south)
    south_history = list(Activation.objects.filter(dataset=south).values_list("pk", flat=True))
    south_jobs = Job.objects.filter(dataset=south).count()
    assert queued_versions(north) == {b.pk}

    with TestCase.captureOnCommitCallbacks(execute=True):
        job = dataset_rollback(dataset=north)

    north.refresh_from_db()
    south.refresh_from_db()
    assert job.dataset == north and job.arguments["chain"]["activate"] == a.pk
    assert north.active_version == a and feature_set_for(dataset=north).model_version == a
    assert queued_versions(north) == {a.pk}
    assert south.active_version == a and feature_set_for(dataset=south).model_version == a
    assert list(Activation.objects.filter(dataset=south).values_list("pk", flat=True)) == south_history
    assert Job.objects.filter(dataset=south).count() == south_jobs
    # A second rollback returns to where the first started.
    assert rollback_target(dataset=north) == b


def test_activating_records_each_switch_once_per_dataset(admin_user):
    north, south = (Dataset.objects.create(name=name, slug=name.lower()) for name in ("North", "South"))
    a, b = (ModelVersion.objects.create(name=name, image_size=32) for name in ("a", "b"))

    model_version_activate(version=a, dataset=north, user=admin_user)
    model_version_activate(version=a, dataset=north)  # the same version again is no switch
    model_version_activate(version=b, dataset=south)

    history = list(Activation.objects.order_by("pk").values_list("dataset__name", "model_version__name",
                                                                 "activated_by__username"))
    assert history == [("North", "a", "ada"), ("South", "b", None)]
    north.refresh_from_db()
    south.refresh_from_db()
    assert (north.active_version, south.active_version) == (a, b)
    assert set(a.active_for.all()) == {north} and set(b.active_for.all()) == {south}


def test_a_dataset_without_an_earlier_version_cannot_roll_back():
    north = Dataset.objects.create(name="North", slug="north")
    with pytest.raises(ModelVersionError, match="no earlier active version"):
        dataset_rollback(dataset=north)
    model_version_activate(version=ModelVersion.objects.create(name="a", image_size=32), dataset=north)
    with pytest.raises(ModelVersionError, match="no earlier active version"):
        dataset_rollback(dataset=north)
    assert not Job.objects.exists()


def test_a_failed_version_is_never_a_rollback_target():
    north = Dataset.objects.create(name="North", slug="north")
    a, b, c = (ModelVersion.objects.create(name=name, image_size=32) for name in ("a", "b", "c"))
    for version in (a, b, c):
        model_version_activate(version=version, dataset=north)
    ModelVersion.objects.filter(pk=b.pk).update(status=ModelVersion.Status.FAILED)
    assert rollback_target(dataset=north) == a


def test_extraction_through_the_api_defaults_to_the_datasets_own_active_version(client, admin_user, surveys, versions):
    north, south, _ = surveys
    a, _ = versions
    model_version_activate(version=a, dataset=north)
    client.force_login(admin_user)

    started = client.post("/api/jobs/", {"kind": "extract_features", "dataset": north.pk})
    refused = client.post("/api/jobs/", {"kind": "extract_features", "dataset": south.pk})

    assert started.status_code == 201, started.content
    assert Job.objects.get(pk=started.json()["id"]).arguments["model_version"] == a.pk
    assert refused.status_code == 400 and "has no active model version" in refused.json()["model_version"][0]


def at_once(*calls):
    """Each call in a thread of its own, released together by a barrier, each with its own connection."""
    barrier = threading.Barrier(len(calls))
    errors: list = []

    def run(call):
        try:
            barrier.wait(timeout=30)
            call()
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "an activation hung (a deadlock?)"
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_chains_finishing_at_once_switch_a_dataset_once_and_leave_the_others_alone():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: the race needs PostgreSQL's row locks")
    north, south = (Dataset.objects.create(name=name, slug=name.lower()) for name in ("North", "South"))
    a, b = (ModelVersion.objects.create(name=name, image_size=32) for name in ("a", "b"))

    def activating(version, dataset):
        return lambda: model_version_activate(version=version, dataset=Dataset.objects.get(pk=dataset.pk))

    for switch in range(1, 7):
        target = (a, b)[switch % 2]
        # Three of North's chains that activate the same version end together, and one of South's beside them.
        at_once(*[activating(target, north)] * 3, activating(b, south))
        north.refresh_from_db()
        south.refresh_from_db()
        history = list(Activation.objects.filter(dataset=north).order_by("-activated_at", "-pk"))
        assert north.active_version == target == history[0].model_version
        assert len(history) == switch  # one switch recorded, however many chains finished at once
        assert south.active_version == b and Activation.objects.filter(dataset=south).count() == 1


def test_the_active_version_serves_the_kind_of_features_it_asks_for(tmp_path):
    from tests.labeling.ml_helpers import galaxy10_subset

    dataset = galaxy10_subset(tmp_path / "import")
    version = tiny_model()
    plain, rotated = extracted(dataset, version), extracted(dataset, version, rotation_invariant=True)
    for feature_set in (plain, rotated):
        indexed(feature_set)
    model_version_activate(version=version, dataset=dataset)
    assert current_feature_set(dataset=dataset) == plain and feature_set_for(dataset=dataset) == plain
    ModelVersion.objects.filter(pk=version.pk).update(hyperparameters={"rotation_invariant": True})
    assert current_feature_set(dataset=dataset) == rotated and feature_set_for(dataset=dataset) == rotated
