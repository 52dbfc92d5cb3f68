"""Outside features and predictions imported as jobs over the API (labeling/services/imports/outside_jobs.py): files
under GALAXY_IMPORT_ROOT, admins only, the job's result the import's report, a bad file failing it with nothing
written."""

import numpy as np
import pytest
from django.urls import reverse

from labeling.models import Classifier, FeatureSet, Job, LabelClass, LabelSchema
from labeling.services.imports.jobs import ImportArgumentError
from labeling.services.imports.outside_jobs import features_job_start
from tests.labeling.factories import make_galaxies

pytestmark = pytest.mark.django_db


@pytest.fixture
def import_root(settings, tmp_path):
    root = tmp_path / "imports"
    root.mkdir()
    settings.GALAXY_IMPORT_ROOT = root
    return root


@pytest.fixture
def world(import_root):
    make_galaxies(3, dataset_name="outside")
    np.save(import_root / "features.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    (import_root / "ids.txt").write_text("g0\ng1\ng2\n")
    schema = LabelSchema.objects.create(name="shape")
    for n, key in enumerate(["round", "disc"]):
        LabelClass.objects.create(schema=schema, key=key, name=key, order=n)
    (import_root / "p.csv").write_text("id,round,disc\ng0,0.9,0.1\ng1,0.4,0.6\n")
    return import_root


FEATURES = {"path": "features.npy", "ids": "ids.txt", "dataset_name": "outside", "name": "zoobot", "use": True}
PREDICTIONS = {"path": "p.csv", "dataset_name": "outside", "schema": "shape", "name": "zoobot"}


def post(client, url_name: str, body: dict, capture):
    with capture(execute=True):  # the tests' worker runs tasks inline, once the request's transaction commits
        return client.post(reverse(url_name), body, content_type="application/json")


def test_an_admin_imports_features_over_the_api_and_reads_how_it_ended(
        client, admin_user, world, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    started = post(client, "api-job-import-features", FEATURES, django_capture_on_commit_callbacks)
    assert started.status_code == 201 and started.json()["kind"] == "import_features"
    job = client.get(reverse("api-job-detail", args=[started.json()["id"]])).json()
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["imported"] == 3 and job["result"]["used"] is True
    feature_set = FeatureSet.objects.get()
    assert feature_set.count == 3 and feature_set.dataset.active_version == feature_set.model_version


def test_an_admin_imports_predictions_over_the_api(client, admin_user, world, django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    started = post(client, "api-job-import-predictions", PREDICTIONS, django_capture_on_commit_callbacks)
    assert started.status_code == 201
    job = Job.objects.get(pk=started.json()["id"])
    assert job.status == "succeeded" and job.result["rows"] == 2
    assert Classifier.objects.get().predictions.count() == 2


def test_a_bad_file_fails_the_job_naming_the_row_and_writes_nothing(
        client, admin_user, world, django_capture_on_commit_callbacks):
    (world / "p.csv").write_text("id,round,disc\ng0,0.9,0.3\n")
    client.force_login(admin_user)
    started = post(client, "api-job-import-predictions", PREDICTIONS, django_capture_on_commit_callbacks)
    job = Job.objects.get(pk=started.json()["id"])
    assert job.status == "failed" and "p.csv, row 2: the probabilities sum to 1.2000" in job.error
    assert not Classifier.objects.exists()


@pytest.mark.parametrize("url_name, body", [("api-job-import-features", FEATURES),
                                            ("api-job-import-predictions", PREDICTIONS)])
def test_experts_and_strangers_may_not_start_an_import(client, expert, world, url_name, body,
                                                       django_capture_on_commit_callbacks):
    assert post(client, url_name, body, django_capture_on_commit_callbacks).status_code in (401, 403)
    client.force_login(expert)
    assert post(client, url_name, body, django_capture_on_commit_callbacks).status_code == 403
    assert not Job.objects.exists() and not FeatureSet.objects.exists() and not Classifier.objects.exists()


@pytest.mark.parametrize("change, field, says", [
    ({"path": "../features.npy"}, "path", "points outside the folder"),
    ({"ids": ""}, "ids", "an .npy array holds no ids"),
    ({"dataset_name": "elsewhere"}, "dataset_name", "no dataset 'elsewhere'"),
    ({"path": "p.csv", "ids": "", "name": " "}, "name", "may not be blank"),
])
def test_a_bad_request_is_a_400_naming_the_field_and_queues_nothing(client, admin_user, world, change, field, says,
                                                                   django_capture_on_commit_callbacks):
    client.force_login(admin_user)
    response = post(client, "api-job-import-features", {**FEATURES, **change}, django_capture_on_commit_callbacks)
    assert response.status_code == 400 and says in response.json()[field][0], response.json()
    assert not Job.objects.exists()


def test_the_service_refuses_a_file_that_holds_no_vectors(world):
    (world / "notes.txt").write_text("hello")
    with pytest.raises(ImportArgumentError, match="path: 'notes.txt' is not a vector file"):
        features_job_start(path="notes.txt", dataset_name="outside", name="zoobot")
