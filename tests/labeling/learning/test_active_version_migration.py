"""The move to one active model version per dataset (migrations labeling 0009 and 0010): the version that was
active for the whole site becomes the active version of each dataset that holds its features, with the first row
of that dataset's activation history; datasets without its features keep none. Migrated backwards, one version is
active for the whole site again."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("labeling", "0008_job_import_kinds")]
AFTER = [("labeling", "0010_active_version_per_dataset_data")]
INDEXED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# Schema changes cannot run inside the test's transaction (SQLite refuses them with foreign keys checked).
pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets):
    """Migrate the test database to ``targets``; the models as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps(transactional_db):
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())  # the tests that follow need today's schema


def test_the_site_wide_active_version_becomes_the_active_version_of_each_dataset_with_its_features(old_apps):
    Dataset, FeatureSet, ModelVersion = (old_apps.get_model("labeling", name)
                                         for name in ("Dataset", "FeatureSet", "ModelVersion"))
    north, south, _ = (Dataset.objects.create(name=name, slug=name.lower()) for name in ("North", "South", "Bare"))
    serving = ModelVersion.objects.create(name="serving", status="active")
    other = ModelVersion.objects.create(name="other", status="ready")
    for dataset, version, rotation in ((north, serving, False), (north, serving, True), (north, other, False),
                                       (south, other, False)):
        FeatureSet.objects.create(dataset=dataset, model_version=version, rotation_invariant=rotation, dims=512,
                                  store_path=f"{dataset.slug}-{version.pk}-{rotation}",
                                  index_built_at=INDEXED_AT if version == serving and not rotation else None)

    new_apps = migrate(AFTER)

    Dataset, Activation, ModelVersion = (new_apps.get_model("labeling", name)
                                         for name in ("Dataset", "Activation", "ModelVersion"))
    assert dict(Dataset.objects.values_list("name", "active_version")) == {
        "North": serving.pk, "South": None, "Bare": None}
    assert list(Activation.objects.values_list("dataset", "model_version", "activated_at")) == [
        (north.pk, serving.pk, INDEXED_AT)]
    assert set(ModelVersion.objects.values_list("status", flat=True)) == {"ready"}

    old = migrate(BEFORE)

    assert dict(old.get_model("labeling", "ModelVersion").objects.values_list("name", "status")) == {
        "serving": "active", "other": "ready"}


def test_without_an_active_version_no_dataset_gets_one(old_apps):
    Dataset, ModelVersion = (old_apps.get_model("labeling", name) for name in ("Dataset", "ModelVersion"))
    Dataset.objects.create(name="North", slug="north")
    ModelVersion.objects.create(name="ready", status="ready")

    new_apps = migrate(AFTER)

    assert not new_apps.get_model("labeling", "Dataset").objects.exclude(active_version=None).exists()
    assert not new_apps.get_model("labeling", "Activation").objects.exists()
