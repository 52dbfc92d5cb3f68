"""The life of a background job: queued, running with progress, and how it ended, including when its worker died."""

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Job
from labeling.services.jobs.lifecycle import (
    JobCancelled,
    JobConflict,
    JobReporter,
    job_cancel,
    job_create,
    job_rerun,
    job_run,
    jobs_mark_abandoned,
)

pytestmark = pytest.mark.django_db


def _job(**arguments) -> Job:
    return job_create(kind=Job.Kind.BUILD_INDEX, arguments=arguments or {"feature_set": 1}, enqueue=False)


def test_a_job_that_works_ends_succeeded_with_its_result_and_full_progress():
    job = _job()

    def work(job, reporter):
        assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING
        reporter.progress(1, 4, "first quarter")
        return {"answer": 42}

    assert job_run(job.pk, work) == {"answer": 42}
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.result == {"answer": 42}
    assert job.progress == 100 and job.started_at <= job.finished_at
    assert job.worker_pid == os.getpid() and job.worker_host == socket.gethostname()


def test_a_job_that_raises_is_recorded_as_failed_with_the_error_and_does_not_raise():
    job = _job()

    def work(job, reporter):
        raise ValueError("k=500 clusters for 12 galaxies")

    outcome = job_run(job.pk, work)

    job.refresh_from_db()
    assert outcome == {"status": "failed", "error": "ValueError: k=500 clusters for 12 galaxies"}
    assert job.status == Job.Status.FAILED
    assert job.message == "ValueError: k=500 clusters for 12 galaxies"
    assert "Traceback" in job.error and job.finished_at is not None


def test_progress_is_written_at_most_every_interval_but_a_new_phase_always_shows():
    job = _job()
    reporter = JobReporter(job.pk, min_interval=3600)
    reporter.progress(1, 10, "extracting")
    reporter.progress(5, 10, "extracting")  # too soon: not written
    job.refresh_from_db()
    assert job.progress == pytest.approx(10.0) and job.message == "extracting"
    reporter.progress(2, 4, "indexing")
    job.refresh_from_db()
    assert job.progress == pytest.approx(50.0) and job.message == "indexing"
    reporter.progress(4, 4, "indexing")  # the end of a phase is always written
    job.refresh_from_db()
    assert job.progress == pytest.approx(100.0)


def test_a_cancelled_running_job_stops_at_its_next_check_and_ends_cancelled():
    job = _job()

    def work(job, reporter):
        job_cancel(job=job)
        reporter._last_cancel_check = -10.0  # the reporter checks the database at most every 2 s
        reporter.check_cancelled()
        raise AssertionError("not reached")

    assert job_run(job.pk, work) == {"status": "cancelled"}
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED


def test_a_job_cancelled_while_queued_is_never_run():
    job = _job()
    job_cancel(job=job)
    ran = []
    assert job_run(job.pk, lambda job, reporter: ran.append(job))["status"] == "skipped"
    assert ran == [] and Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED


def test_a_job_handed_out_twice_runs_once():
    job = _job()
    runs = []
    job_run(job.pk, lambda job, reporter: runs.append(1) or {})
    assert job_run(job.pk, lambda job, reporter: runs.append(2) or {})["status"] == "skipped"
    assert runs == [1]


def test_the_same_job_cannot_be_queued_twice_but_other_arguments_can():
    _job(feature_set=7)
    with pytest.raises(JobConflict, match="already queued as job #"):
        _job(feature_set=7)
    _job(feature_set=8)


def test_a_job_of_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown job kind 'train_everything'"):
        job_create(kind="train_everything", arguments={}, enqueue=False)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_running_job_whose_worker_process_died_is_marked_failed_with_the_reason():
    job, alive = _job(feature_set=1), _job(feature_set=2)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=timezone.now(),
                                         heartbeat_at=timezone.now(), worker_host=socket.gethostname(),
                                         worker_pid=_dead_pid())
    Job.objects.filter(pk=alive.pk).update(status=Job.Status.RUNNING, heartbeat_at=timezone.now(),
                                           worker_host=socket.gethostname(), worker_pid=os.getpid())

    assert jobs_mark_abandoned() == 1

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "killed or restarted" in job.error
    assert Job.objects.get(pk=alive.pk).status == Job.Status.RUNNING


def test_a_running_job_on_another_machine_without_a_sign_of_life_for_too_long_is_marked_failed(settings):
    settings.GALAXY_JOB_STALE_SECONDS = 60
    quiet, recent = _job(feature_set=1), _job(feature_set=2)
    for job, age in ((quiet, 120), (recent, 10)):
        Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, worker_host="elsewhere", worker_pid=1,
                                             heartbeat_at=timezone.now() - timedelta(seconds=age))
    assert jobs_mark_abandoned() == 1
    assert "no sign of life" in Job.objects.get(pk=quiet.pk).error
    assert Job.objects.get(pk=recent.pk).status == Job.Status.RUNNING


def test_a_finished_job_runs_again_as_a_new_job_with_its_arguments_but_a_running_one_does_not():
    job = _job(feature_set=3)
    job_run(job.pk, lambda job, reporter: {})
    again = job_rerun(job=Job.objects.get(pk=job.pk))
    assert again.pk != job.pk and again.arguments == {"feature_set": 3} and again.rerun_of_id == job.pk
    with pytest.raises(ValueError, match="still queued"):
        job_rerun(job=again)


def test_job_cancelled_is_what_check_cancelled_raises():
    job = _job()
    job_cancel(job=job)
    with pytest.raises(JobCancelled):
        JobReporter(job.pk).check_cancelled()
