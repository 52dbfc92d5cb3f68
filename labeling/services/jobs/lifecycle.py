"""Background jobs: created and queued here, run through :func:`job_run`, watched by people on the Jobs page.

A job's row is the truth people read. :func:`job_run` marks it running (with the worker's host and pid), hands
the work a :class:`JobReporter` for progress and cancellation, and records how it ended: succeeded with a small
result, failed with the error text, or cancelled. It does not re-raise: a failed job is a finished task whose
result says so, and the caller (a worker, a command, a test running tasks inline) reads the row.

A worker killed mid-job (SIGKILL, a restart, a machine going down) cannot record anything. :func:`jobs_mark_abandoned`
finds such jobs: a running job whose worker process on this host no longer exists, or whose last sign of life is
older than GALAXY_JOB_STALE_SECONDS, is marked failed with the reason. It runs before every job and whenever the
Jobs page asks. Re-running a job starts a new one with the same arguments; extraction then resumes where the
killed one stopped, since the vectors it stored stay stored.
"""

import os
import socket
import time
import traceback
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from labeling.models import Dataset, Job
from labeling.services.jobs.base import JobCancelled, JobConflict, JobHandedOff, task_cluster
from labeling.services.jobs.chunks import chunks_mark_abandoned


class JobReporter:
    """Progress and cancellation for one running job, cheap to call in a tight loop.

    Progress is written at most every ``min_interval`` seconds (the last call of a phase always shows up once the
    phase changes); each write also refreshes the job's heartbeat. ``echo`` receives every call, e.g. a terminal's
    progress bar.
    """

    def __init__(self, job_id: int, *, min_interval: float = 0.5, echo: Callable[[int, int, str], None] | None = None):
        self.job_id = job_id
        self.min_interval = min_interval
        self.echo = echo
        self._last_write = 0.0
        self._last_message = None
        self._last_cancel_check = 0.0
        self._cancelled = False

    def progress(self, done: int, total: int, message: str = "") -> None:
        if self.echo is not None:
            self.echo(done, total, message)
        now = time.monotonic()
        if message == self._last_message and now - self._last_write < self.min_interval and done < total:
            return
        self._last_write, self._last_message = now, message
        percent = 100.0 * done / total if total else 0.0
        self.write(min(100.0, percent), message[:300])

    def write(self, percent: float, message: str) -> None:
        """Record progress on the job's row, with a heartbeat."""
        Job.objects.filter(pk=self.job_id).update(progress=percent, message=message, heartbeat_at=timezone.now())

    def cancel_requested(self) -> bool:
        """True once a person asked to cancel; checked against the database at most every 2 s."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= 2.0:
            self._last_cancel_check = now
            self._cancelled = Job.objects.filter(pk=self.job_id, cancel_requested=True).exists()
        return self._cancelled

    def check_cancelled(self) -> None:
        """Raise JobCancelled when a person asked to cancel; call between the phases of a job."""
        if self.cancel_requested():
            raise JobCancelled()


def job_create(*, kind: str, arguments: dict, dataset: Dataset | None = None, user=None, enqueue: bool = True,
               rerun_of: Job | None = None) -> Job:
    """A queued job; with ``enqueue`` its task (labeling.tasks.<kind>) is queued once the transaction commits.

    Commands pass enqueue=False and run the job in their own process with :func:`job_run`.

    Raises:
        ValueError: for an unknown kind.
        JobConflict: when a job of this kind with these arguments is already queued or running (two extractions
            into one feature store would trip over each other; a second one would do nothing new anyway).
    """
    if kind not in Job.Kind.values:
        raise ValueError(f"unknown job kind {kind!r}; one of {', '.join(Job.Kind.values)}")
    jobs_mark_abandoned()
    active = Job.objects.filter(kind=kind, status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
    # Compared here, not in SQL: JSON equality differs between databases (key order on SQLite); few jobs are active.
    twin = next((job for job in active if job.arguments == arguments), None)
    if twin is not None:
        raise JobConflict(f"the same {twin.get_kind_display()} job is already {twin.status} as job #{twin.pk}")
    job = Job.objects.create(kind=kind, arguments=arguments, dataset=dataset,
                             created_by=user if user is not None and user.is_authenticated else None,
                             rerun_of=rerun_of)
    if enqueue:
        transaction.on_commit(lambda: async_task(f"labeling.tasks.{kind}", job.pk, group=kind,
                                                 cluster=task_cluster(kind)))
    return job


def job_rerun(*, job: Job, user=None) -> Job:
    """A new job with the arguments of a finished one."""
    if not job.is_finished:
        raise ValueError(f"job #{job.pk} is still {job.status}; cancel it or wait before running it again")
    return job_create(kind=job.kind, arguments=job.arguments, dataset=job.dataset, user=user, rerun_of=job)


def job_cancel(*, job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next check. A finished job is left alone."""
    if job.status == Job.Status.QUEUED:
        Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
            status=Job.Status.CANCELLED, cancel_requested=True, finished_at=timezone.now(),
            message="cancelled before it started")
    elif job.status == Job.Status.RUNNING:
        Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job.refresh_from_db()
    return job


def job_run(job_id: int, work: Callable[[Job, JobReporter], dict], *,
            echo: Callable[[int, int, str], None] | None = None) -> dict:
    """Run ``work(job, reporter)`` for a queued job and record how it ended.

    Returns:
        The work's result dict when it succeeded; ``{"status": "failed" | "cancelled" | "skipped", ...}`` otherwise.
    """
    jobs_mark_abandoned()
    now = timezone.now()
    started = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, worker_host=socket.gethostname(),
        worker_pid=os.getpid(), message="starting")
    if not started:
        # Cancelled while queued, or handed out twice by the broker after a worker died: run nothing.
        status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
        return {"status": "skipped", "reason": f"job #{job_id} is {status or 'gone'}, not queued"}
    job = Job.objects.get(pk=job_id)
    reporter = JobReporter(job_id, echo=echo)
    try:
        result = work(job, reporter)
    except JobCancelled:
        _finish(job_id, Job.Status.CANCELLED, message="cancelled")
        return {"status": "cancelled"}
    except JobHandedOff as handed:
        # No single process owns the job now: its chunks keep its heartbeat, so the abandoned-worker check must not
        # look for this process. (Tasks run inline may already have finished it; then there is nothing to clear.)
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(worker_host="", worker_pid=None)
        return {"status": "handed off", "chunks": handed.chunks}
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the job, which is what people read
        error = f"{type(exc).__name__}: {exc}"
        _finish(job_id, Job.Status.FAILED, message=error.splitlines()[0][:300],
                error=f"{error}\n\n{traceback.format_exc()}")
        return {"status": "failed", "error": error}
    _finish(job_id, Job.Status.SUCCEEDED, message="done", result=result, progress=100.0)
    return result


def _finish(job_id: int, status: str, **fields) -> None:
    Job.objects.filter(pk=job_id).update(status=status, finished_at=timezone.now(), heartbeat_at=timezone.now(),
                                         **fields)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def jobs_mark_abandoned() -> int:
    """Mark running jobs whose worker is gone as failed, saying why. Returns how many were marked."""
    host = socket.gethostname()
    stale_before = timezone.now() - timedelta(seconds=settings.GALAXY_JOB_STALE_SECONDS)
    marked = 0
    running = Job.objects.filter(status=Job.Status.RUNNING).only("pk", "kind", "arguments", "worker_host",
                                                                 "worker_pid", "heartbeat_at")
    for job in running:
        if job.worker_host == host and job.worker_pid and not _process_exists(job.worker_pid):
            reason = (f"the worker process (pid {job.worker_pid} on {host}) ended while the job was running: it was "
                      "killed or restarted. Run the job again; feature extraction resumes where it stopped.")
        elif job.heartbeat_at is not None and job.heartbeat_at < stale_before:
            reason = (f"no sign of life since {job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC (more than "
                      f"{settings.GALAXY_JOB_STALE_SECONDS} s): its worker on {job.worker_host} was presumably "
                      "stopped. Run the job again.")
        else:
            continue
        if Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
                status=Job.Status.FAILED, finished_at=timezone.now(), message="abandoned: worker gone", error=reason):
            marked += 1
            _version_failed(job, reason)
    return marked + chunks_mark_abandoned(host=host, stale_before=stale_before, process_exists=_process_exists)


def _version_failed(job: Job, reason: str) -> None:
    """A training job's model version fails with its job (the active version is untouched: it never changed)."""
    from labeling.models import ModelVersion

    if job.kind in (Job.Kind.RETRAIN, Job.Kind.PRETRAIN) and job.arguments.get("model_version"):
        ModelVersion.objects.filter(pk=job.arguments["model_version"], status__in=[
            ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING]).update(
            status=ModelVersion.Status.FAILED, error=f"training stopped: {reason}")
