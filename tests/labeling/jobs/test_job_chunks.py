"""Feature extraction split into chunks that several workers take in parallel: the chunks cover every galaxy once,
the last one completes the job and continues its chain, a failed or cancelled chunk ends the job without losing
what was stored, and a dead chunk worker is noticed. Tasks run inline here; tests/deploy/test_stack.py runs the same
through two real workers over Redis."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from labeling import tasks
from labeling.models import FeatureSet, Job, JobChunk
from labeling.services.jobs.lifecycle import job_create, job_rerun, jobs_mark_abandoned, task_cluster
from labeling.services.learning import features as features_service
from labeling.services.learning.activation import version_activate
from labeling.services.learning.jobs import extraction_start
from mlcore.features.store import FeatureStore
from tests.labeling.ml_helpers import extracted, galaxy10_subset, tiny_model

pytestmark = pytest.mark.django_db
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset(tmp_path / "import")  # 18 real galaxies


def _vectors(feature_set: FeatureSet) -> dict[int, np.ndarray]:
    store = FeatureStore.open(feature_set.store_dir)
    return dict(zip(store.keys().tolist(), store.get(store.keys()), strict=True))


def test_a_split_extraction_covers_every_galaxy_once_and_matches_one_run_in_one_process(dataset):
    split = extracted(dataset, chunk_size=5)
    job = Job.objects.get(kind=Job.Kind.EXTRACT_FEATURES)
    chunks = list(job.chunks.order_by("number"))

    assert [chunk.size for chunk in chunks] == [5, 5, 5, 3]
    assert all(chunk.status == Job.Status.SUCCEEDED for chunk in chunks)
    assert all(a.last_key < b.first_key for a, b in zip(chunks, chunks[1:], strict=False))
    assert job.result["chunks"] == 4 and job.result["added"] == 18 and job.result["count"] == 18
    assert job.progress == 100.0 and split.count == 18 and split.failed == {}
    by_chunks = _vectors(split)

    FeatureSet.objects.all().delete()
    whole = _vectors(extracted(dataset))  # 18 <= 2000: one process, no chunks
    assert by_chunks.keys() == whole.keys()
    assert all(np.array_equal(by_chunks[key], whole[key]) for key in whole)


def test_only_the_galaxies_still_missing_are_split(dataset):
    extracted(dataset)  # everything stored already
    job = extraction_start(dataset=dataset, model_version=tiny_model(), enqueue=False, chunk_size=5)
    assert tasks.extract_features(job.pk)["added"] == 0
    assert not JobChunk.objects.exists()


def test_the_chunk_that_finishes_last_continues_the_activation_chain(dataset, django_capture_on_commit_callbacks):
    version = tiny_model()
    with override_settings(GALAXY_EXTRACT_CHUNK=7), django_capture_on_commit_callbacks(execute=True):
        version_activate(version=version, dataset=dataset)

    assert JobChunk.objects.count() == 3
    dataset.refresh_from_db()
    feature_set = FeatureSet.objects.get()
    assert dataset.active_version == version and feature_set.has_index
    assert feature_set.clusterings.count() == 1
    kinds = set(Job.objects.values_list("kind", flat=True))
    assert {Job.Kind.EXTRACT_FEATURES, Job.Kind.BUILD_INDEX, Job.Kind.CLUSTER} <= kinds
    assert set(Job.objects.values_list("status", flat=True)) == {Job.Status.SUCCEEDED}


def test_a_failed_chunk_fails_the_job_keeps_what_was_stored_and_a_rerun_does_the_rest(dataset, monkeypatch):
    real = features_service.features_extract
    second_chunk_first_key = sorted(dataset.galaxies.values_list("pk", flat=True))[6]

    def failing(**kwargs):
        if kwargs.get("key_range") and kwargs["key_range"][0] == second_chunk_first_key:
            raise OSError("disk full while reading the images")
        return real(**kwargs)

    monkeypatch.setattr(tasks, "features_extract", failing)
    job = extraction_start(dataset=dataset, model_version=tiny_model(), enqueue=False, chunk_size=6)
    assert tasks.extract_features(job.pk)["status"] == "handed off"

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert "chunk 1" in job.error and "disk full" in job.error and str(second_chunk_first_key) in job.error
    statuses = list(job.chunks.order_by("number").values_list("status", flat=True))
    assert statuses == [Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.CANCELLED]
    assert FeatureSet.objects.get().count == 6

    monkeypatch.undo()
    again = job_rerun(job=job)
    tasks.extract_features(again.pk)
    again.refresh_from_db()
    assert again.status == Job.Status.SUCCEEDED and again.result["added"] == 12 and again.result["count"] == 18


def test_cancelling_the_job_stops_its_chunks(dataset, monkeypatch):
    real = features_service.features_extract
    calls = []

    def cancel_after_first_chunk(**kwargs):
        calls.append(kwargs["key_range"])
        if len(calls) == 2:
            Job.objects.filter(kind=Job.Kind.EXTRACT_FEATURES).update(cancel_requested=True)
        return real(**kwargs)

    monkeypatch.setattr(tasks, "features_extract", cancel_after_first_chunk)
    job = extraction_start(dataset=dataset, model_version=tiny_model(), enqueue=False, chunk_size=6, batch_size=2)
    tasks.extract_features(job.pk)

    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    statuses = list(job.chunks.order_by("number").values_list("status", flat=True))
    assert statuses == [Job.Status.SUCCEEDED, Job.Status.CANCELLED, Job.Status.CANCELLED]
    assert FeatureSet.objects.get().count < 18


def test_unreadable_images_in_different_chunks_are_all_listed(dataset):
    broken = list(dataset.galaxies.order_by("pk"))[::8]  # in chunks 0, 1 and 2
    for galaxy in broken:
        Path(galaxy.image.path).write_bytes(b"not an image")
    feature_set = extracted(dataset, chunk_size=6)

    assert set(feature_set.failed) == {str(galaxy.pk) for galaxy in broken}
    assert feature_set.count == 18 - len(broken)


def test_a_chunk_whose_worker_died_fails_its_job(dataset):
    job = job_create(kind=Job.Kind.EXTRACT_FEATURES, arguments={"model_version": tiny_model().pk}, dataset=dataset,
                     enqueue=False)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    JobChunk.objects.create(job=job, number=0, first_key=1, last_key=9, size=9, status=Job.Status.RUNNING,
                            worker_host=socket.gethostname(), worker_pid=dead.pid)

    assert jobs_mark_abandoned() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and f"pid {dead.pid}" in job.error
    assert JobChunk.objects.get().status == Job.Status.FAILED


@override_settings(GALAXY_GPU_CLUSTER="galaxy-labeling-gpu", GALAXY_GPU_JOB_KINDS=["retrain", "extract_features"])
def test_gpu_job_kinds_go_to_the_gpu_cluster_and_the_rest_to_the_default_one():
    assert task_cluster("retrain") == "galaxy-labeling-gpu"
    assert task_cluster("extract_features") == "galaxy-labeling-gpu"
    assert task_cluster("cluster") is None


def test_without_a_gpu_cluster_every_job_goes_to_the_default_cluster():
    assert task_cluster("retrain") is None


def test_a_gpu_worker_serves_its_own_queue_and_signs_like_the_site(tmp_path):
    """django-q2 reads the worker's queue from Q_CLUSTER_NAME and the cluster's settings from ALT_CLUSTERS; the
    signing salt (the site name) must stay the same, or the GPU worker could not read what the web server queued."""
    probe = ("import django; django.setup(); from django_q.conf import Conf; "
             "print(Conf.PREFIX, Conf.CLUSTER_NAME, Conf.WORKERS)")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("Q_", "GALAXY_", "DJANGO_"))}
    env.update(DJANGO_SETTINGS_MODULE="labeling.settings", DJANGO_SECRET_KEY="x" * 50, VAR_DIR=str(tmp_path),
               GALAXY_GPU_CLUSTER="galaxy-labeling-gpu", Q_GPU_WORKERS="3", Q_WORKERS="2")
    web = subprocess.run([sys.executable, "-c", probe], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    gpu = subprocess.run([sys.executable, "-c", probe], env={**env, "Q_CLUSTER_NAME": "galaxy-labeling-gpu"},
                         cwd=REPO_ROOT, capture_output=True, text=True)

    assert web.stdout.split() == ["galaxy-labeling", "galaxy-labeling", "2"], web.stderr
    assert gpu.stdout.split() == ["galaxy-labeling", "galaxy-labeling-gpu", "3"], gpu.stderr
