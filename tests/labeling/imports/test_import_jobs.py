"""Imports started by an admin on the Jobs page (labeling/services/imports/jobs.py): files named under
GALAXY_IMPORT_ROOT, run as background jobs by the same importers as the commands, a bad file failing the job with
every problem named and nothing written."""

import html
import os

import pytest
from django.db import connections, transaction
from django.urls import reverse

from labeling.models import Dataset, ExpertLabel, Galaxy, Job, VoteSummary
from labeling.services.imports.jobs import ImportProgress, import_job_start, import_source, import_sources
from labeling.services.jobs.lifecycle import job_create
from labeling.tasks import import_galaxies
from labeling.tasks import import_votes as import_votes_task
from tests.labeling.import_helpers import read_csv, write_csv
from tests.labeling.ml_helpers import galaxy10_subset_folder
from tests.labeling.vote_import_helpers import KAGGLE_HEADER, SPIRAL, SPIRAL_REACH, kaggle_row, write_table

pytestmark = pytest.mark.django_db


@pytest.fixture
def import_root(settings, tmp_path):
    root = tmp_path / "imports"
    root.mkdir()
    settings.GALAXY_IMPORT_ROOT = root
    return root


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def start(client, kind: str, fields: dict, capture):
    with capture(execute=True):  # the tests' worker runs tasks inline, once the request's transaction commits
        return client.post(reverse("job-start", args=[kind]), {"skip_bad": "", **fields})


def media_files(settings) -> list[str]:
    return sorted(str(path.relative_to(settings.MEDIA_ROOT)) for path in settings.MEDIA_ROOT.rglob("*")
                  if path.is_file())


def test_an_admin_imports_a_folder_of_real_galaxies_from_the_jobs_page(
        as_admin, admin_user, import_root, django_capture_on_commit_callbacks):
    galaxy10_subset_folder(import_root / "g10", classes=("0", "5"), per_class=3)
    page = as_admin.get(reverse("job-list")).content.decode()
    assert 'id="start-import_galaxies"' in page and 'id="start-import_votes"' in page
    # Offered, not typed: one list for the page's three path boxes, the folder walked once.
    assert page.count('<option value="g10">') == 1 and '<option value="g10/labels.csv">' in page
    assert page.count('list="import-sources"') == 3

    response = start(as_admin, "import_galaxies", {"path": "g10", "format": "folder", "dataset": "Galaxy10 web",
                                                   "schema": "galaxy10"}, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    job = Job.objects.get()
    assert job.kind == Job.Kind.IMPORT_GALAXIES and job.status == Job.Status.SUCCEEDED, job.error
    dataset = Dataset.objects.get(name="Galaxy10 web")
    assert job.dataset == dataset and job.created_by == admin_user
    assert {key: job.result[key] for key in ("created", "updated", "unchanged", "labels_created", "skipped")} == {
        "created": 6, "updated": 0, "unchanged": 0, "labels_created": 6, "skipped": 0}
    assert sorted(ExpertLabel.objects.filter(galaxy__dataset=dataset).values_list("label_class__key", flat=True)) == [
        "0", "0", "0", "5", "5", "5"]
    assert all(galaxy.image and galaxy.thumbnail for galaxy in dataset.galaxies.all())
    status = as_admin.get(reverse("job-status"), {"ids": str(job.pk)}).json()["jobs"][0]
    assert status["link"] == f"{reverse('galaxy-list')}?dataset={dataset.slug}"
    assert "6 created" in as_admin.get(reverse("job-list")).content.decode()


def test_a_bad_row_fails_the_job_naming_it_and_nothing_is_written(
        as_admin, import_root, settings, django_capture_on_commit_callbacks):
    folder = galaxy10_subset_folder(import_root / "g10", classes=("0",), per_class=3)
    rows = read_csv(folder / "labels.csv")
    rows[1]["label"] = "42"  # not a Galaxy10 class
    write_csv(folder / "labels.csv", rows)

    start(as_admin, "import_galaxies", {"path": "g10", "format": "folder", "dataset": "Broken",
                                        "schema": "galaxy10"}, django_capture_on_commit_callbacks)

    job = Job.objects.get()
    assert job.status == Job.Status.FAILED
    assert "labels.csv, row 3, column 'label'" in job.error and "nothing was imported" in job.error
    assert not Dataset.objects.filter(name="Broken").exists() and not Galaxy.objects.exists()
    assert media_files(settings) == []


def test_skip_bad_imports_the_good_rows_and_the_job_lists_the_bad_ones(
        as_admin, import_root, django_capture_on_commit_callbacks):
    folder = galaxy10_subset_folder(import_root / "g10", classes=("0",), per_class=3)
    rows = read_csv(folder / "labels.csv")
    rows[1]["label"] = "42"
    write_csv(folder / "labels.csv", rows)

    start(as_admin, "import_galaxies", {"path": "g10", "format": "folder", "dataset": "Partly",
                                        "schema": "galaxy10", "skip_bad": "on"}, django_capture_on_commit_callbacks)

    job = Job.objects.get()
    assert job.status == Job.Status.SUCCEEDED and job.result["created"] == 2 and job.result["skipped"] == 1
    assert "row 3" in job.result["skipped_rows"][0]
    assert "1 row skipped" in as_admin.get(reverse("job-list")).content.decode()


def test_an_admin_imports_a_vote_catalogue(as_admin, import_root, django_capture_on_commit_callbacks):
    write_table(import_root / "solutions.csv", KAGGLE_HEADER, [kaggle_row(100008, SPIRAL, SPIRAL_REACH)])

    start(as_admin, "import_votes", {"path": "solutions.csv", "format": "gz2-kaggle", "dataset": "Kaggle"},
          django_capture_on_commit_callbacks)

    job = Job.objects.get()
    assert job.status == Job.Status.SUCCEEDED and job.result["created"] == 1, job.error
    assert VoteSummary.objects.filter(galaxy__dataset__name="Kaggle", galaxy__external_id="100008").count() == 11


@pytest.mark.parametrize("path, says", [
    ("/etc/passwd", "is an absolute path"),
    ("~/outside", "a home folder"),
    ("../outside", "points outside the folder"),
    ("g10/../../outside", "points outside the folder"),
    ("missing", "'missing': no such file"),
    ("escape", "points outside the folder"),
    ("a" * 300, "cannot be read: File name too long"),
    ("loop/x.csv", "cannot be read"),
    ("", "This field is required"),
])
def test_the_form_refuses_a_path_outside_the_import_folder_and_queues_nothing(as_admin, import_root, tmp_path, path,
                                                                              says):
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", import_root / "escape")
    os.symlink(import_root / "loop", import_root / "loop")  # a link to itself
    response = as_admin.post(reverse("job-start", args=["import_votes"]),
                             {"path": path, "format": "gz2-table", "dataset": "Anything"})
    assert response.status_code == 200 and says in html.unescape(response.content.decode())
    assert not Job.objects.exists()


def test_the_service_refuses_what_the_form_refuses(import_root):
    with pytest.raises(ValueError, match="format: 'csv' is not one of"):
        import_job_start(kind=Job.Kind.IMPORT_VOTES, path="x.csv", fmt="csv", dataset_name="D")
    with pytest.raises(ValueError, match="dataset: "):
        import_job_start(kind=Job.Kind.IMPORT_VOTES, path="x.csv", fmt="gz2-table", dataset_name="a\x00b")
    with pytest.raises(ValueError, match="labels: 'none.csv': no such file"):
        (import_root / "g10").mkdir()
        import_job_start(kind=Job.Kind.IMPORT_GALAXIES, path="g10", fmt="folder", dataset_name="D", labels="none.csv")
    assert not Job.objects.exists()


def test_a_file_moved_away_after_the_job_was_queued_fails_it_clearly(import_root):
    write_table(import_root / "votes.csv", KAGGLE_HEADER, [kaggle_row(100008, SPIRAL, SPIRAL_REACH)])
    job = import_job_start(kind=Job.Kind.IMPORT_VOTES, path="votes.csv", fmt="gz2-kaggle", dataset_name="Moved")
    (import_root / "votes.csv").unlink()
    import_votes_task(job.pk)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "path: 'votes.csv': no such file" in job.error


def test_the_form_offers_folders_and_catalogue_files_but_not_every_image(import_root):
    galaxy10_subset_folder(import_root / "g10", classes=("0",), per_class=2)
    (import_root / "g10" / "notes.txt").write_text("not a catalogue")
    (import_root / "votes.csv.gz").write_bytes(b"")
    (import_root / "Galaxy10_DECals.h5").write_bytes(b"")
    assert import_sources() == ["Galaxy10_DECals.h5", "g10", "g10/images", "g10/labels.csv", "votes.csv.gz"]
    assert import_source("g10/labels.csv") == (import_root / "g10" / "labels.csv").resolve()


def test_experts_see_no_import_form_and_may_not_start_one(client, expert, import_root):
    client.force_login(expert)
    assert 'id="start-import_galaxies"' not in client.get(reverse("job-list")).content.decode()
    response = client.post(reverse("job-start", args=["import_galaxies"]), {"path": "g10", "format": "folder",
                                                                             "dataset": "D"})
    assert response.status_code == 403 and not Job.objects.exists()


def test_a_cancel_stops_the_import_before_it_writes_anything(import_root, settings):
    galaxy10_subset_folder(import_root / "g10", classes=("0",), per_class=3)
    job = import_job_start(kind=Job.Kind.IMPORT_GALAXIES, path="g10", fmt="folder", dataset_name="Cancelled",
                           schema="galaxy10")
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)  # asked while it starts: its first check sees it
    assert import_galaxies(job.pk) == {"status": "cancelled"}
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and not Galaxy.objects.exists() and media_files(settings) == []


@pytest.mark.django_db(transaction=True)
def test_progress_inside_the_import_transaction_is_seen_by_others_on_postgresql():
    if connections["default"].vendor != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: progress inside the import's transaction is not written")
    job = job_create(kind=Job.Kind.IMPORT_VOTES, arguments={}, enqueue=False)
    progress = ImportProgress(job.pk)
    other = connections.create_connection("default")
    try:
        with transaction.atomic():
            Dataset.objects.create(name="Being imported", slug="being-imported")  # the import's own write
            progress(3, 4, "writing")
            with other.cursor() as cursor:
                cursor.execute(f"SELECT progress, message FROM {Job._meta.db_table} WHERE id = %s", [job.pk])
                assert cursor.fetchone() == (75.0, "writing")  # seen while the import's transaction is open
                cursor.execute(f"SELECT count(*) FROM {Dataset._meta.db_table}")
                assert cursor.fetchone() == (0,)  # ...whose own writes nobody sees until it commits
    finally:
        progress.close()
        other.close()


def test_a_script_starts_an_import_over_the_api_and_reads_how_it_ended(
        as_admin, import_root, django_capture_on_commit_callbacks):
    write_table(import_root / "solutions.csv", KAGGLE_HEADER, [kaggle_row(100008, SPIRAL, SPIRAL_REACH)])
    body = {"kind": "import_votes", "path": "solutions.csv", "format": "gz2-kaggle", "dataset_name": "Scripted"}
    with django_capture_on_commit_callbacks(execute=True):
        started = as_admin.post(reverse("api-job-import"), body, content_type="application/json")
    assert started.status_code == 201 and started.json()["kind"] == "import_votes"
    job = as_admin.get(reverse("api-job-detail", args=[started.json()["id"]])).json()
    assert job["status"] == "succeeded" and job["result"]["created"] == 1
    assert job["dataset"] == Dataset.objects.get(name="Scripted").pk


@pytest.mark.parametrize("change, field, says", [
    ({"path": "../votes.csv"}, "path", "points outside the folder"),
    ({"path": "missing.csv"}, "path", "'missing.csv': no such file"),
    ({"format": "folder"}, "format", "is not one of gz2-table, gz2-kaggle, gz-decals"),
    ({"dataset_name": "a\x00b"}, "dataset_name", "Null characters are not allowed"),
    ({"dataset_name": "x" * 201}, "dataset_name", "no more than 200 characters"),
    ({"dataset_name": "x" * 150}, "dataset_name", "a dataset name is at most 100 characters"),  # the service's
    ({"dataset_name": "tab\there"}, "dataset_name", "contains a control character"),
    ({"kind": "extract_features"}, "kind", "is not a valid choice"),
])
def test_a_bad_api_import_is_a_400_naming_the_field_and_queues_nothing(as_admin, import_root, change, field, says):
    (import_root / "votes.csv").write_text("objid\n")
    body = {"kind": "import_votes", "path": "votes.csv", "format": "gz2-table", "dataset_name": "D", **change}
    response = as_admin.post(reverse("api-job-import"), body, content_type="application/json")
    assert response.status_code == 400 and says in response.json()[field][0], response.json()
    assert not Job.objects.exists()


def test_a_script_imports_a_panoptes_export_over_the_api_with_a_shipped_mapping(
        as_admin, import_root, django_capture_on_commit_callbacks):
    import shutil

    from tests.labeling.panoptes_helpers import GZD5, GZD5_GALAXIES, make_dataset

    make_dataset("GZD-5", GZD5_GALAXIES)
    shutil.copy(GZD5, import_root / "classifications.csv")
    body = {"kind": "import_votes", "path": "classifications.csv", "format": "panoptes", "dataset_name": "GZD-5",
            "mapping": "gz_decals", "workflow_versions": ["66"]}
    with django_capture_on_commit_callbacks(execute=True):
        started = as_admin.post(reverse("api-job-import"), body, content_type="application/json")
    assert started.status_code == 201, started.json()
    job = as_admin.get(reverse("api-job-detail", args=[started.json()["id"]])).json()
    assert job["status"] == "succeeded" and job["result"]["created"] == 8, job
    assert "8 classifications imported" in job["result"]["summary"]


@pytest.mark.parametrize("change, says", [
    ({"mapping": ""}, "a Panoptes export needs its mapping: gz2, gz_decals"),
    ({"mapping": "/etc/hostname"}, "/etc/hostname"),  # any file of the server: refused, only the import folder's
    ({"mapping": "../mapping.json"}, "points outside the folder"),
    ({"format": "gz2-table", "mapping": "gz_decals"}, "only for the format 'panoptes'"),
])
def test_a_panoptes_import_over_the_api_needs_a_mapping_from_the_shipped_ones_or_the_import_folder(
        as_admin, import_root, change, says):
    (import_root / "classifications.csv").write_text("classification_id\n")
    body = {"kind": "import_votes", "path": "classifications.csv", "format": "panoptes", "dataset_name": "D",
            **change}
    response = as_admin.post(reverse("api-job-import"), body, content_type="application/json")
    assert response.status_code == 400 and says in response.json()["mapping"][0], response.json()
    assert not Job.objects.exists()


def test_an_admin_imports_a_panoptes_export_from_the_jobs_page(as_admin, import_root,
                                                               django_capture_on_commit_callbacks):
    import shutil

    from tests.labeling.panoptes_helpers import GZD5, GZD5_GALAXIES, make_dataset

    assert '<option value="panoptes">' in as_admin.get(reverse("job-list")).content.decode()
    make_dataset("GZD-5", GZD5_GALAXIES)
    shutil.copy(GZD5, import_root / "classifications.csv")
    response = start(as_admin, "import_votes", {"path": "classifications.csv", "format": "panoptes",
                                                 "dataset": "GZD-5", "mapping": "gz_decals",
                                                 "workflow_versions": "66"}, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.arguments["panoptes"]["workflow_versions"] == ["66"]
    assert job.status == Job.Status.SUCCEEDED and job.result["created"] == 8, job.error


@pytest.mark.parametrize("fields, field, says", [
    ({"format": "panoptes"}, "mapping", "a Panoptes export needs its mapping: gz2, gz_decals"),
    ({"format": "panoptes", "mapping": "../mapping.json"}, "mapping", "points outside the folder"),
    ({"format": "gz2-table", "mapping": "gz_decals"}, "mapping", "for Zooniverse classification exports only"),
    ({"format": "gz2-table", "subject_keys": "iauname"}, "mapping", "for Zooniverse classification exports only"),
])
def test_the_jobs_page_names_a_bad_panoptes_option_on_its_field_and_queues_nothing(as_admin, import_root, fields,
                                                                                   field, says):
    (import_root / "classifications.csv").write_text("classification_id\n")
    response = as_admin.post(reverse("job-start", args=["import_votes"]),
                             {"path": "classifications.csv", "dataset": "D", **fields})
    assert response.status_code == 200
    assert any(says in error for error in response.context["forms"][1][2].errors[field]), \
        response.context["forms"][1][2].errors
    assert not Job.objects.exists()
