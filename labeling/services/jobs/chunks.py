"""A job split into chunks that several workers run in parallel, on one machine or several.

Feature extraction of a large dataset is the case: the extraction job lists the galaxies still to do, cuts them into
chunks of consecutive ids (GALAXY_EXTRACT_CHUNK each), queues one task per chunk and hands off (JobHandedOff). Any
worker of the cluster takes the next chunk from the broker. Each chunk keeps the parent job's heartbeat and progress
up to date; the chunk that finishes last, under a lock on the parent's row, marks the job succeeded and starts what
follows it in its chain. A failed chunk fails the job; a person's cancel stops every chunk at its next batch.

Nothing is lost when a worker dies: the vectors a chunk stored stay stored, and running the job again extracts only
what is missing.
"""

import os
import socket
import time
import traceback
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django_q.tasks import async_task

from labeling.models import Job, JobChunk
from labeling.services.jobs.base import JobCancelled, JobHandedOff, task_cluster


def chunks_fan_out(*, job: Job, keys: list[int], chunk_size: int) -> None:
    """Cut ``keys`` (sorted galaxy ids) into chunks, queue one task each, and raise JobHandedOff.

    The chunk rows all exist before the first task is queued, so the last chunk to finish can tell it is the last.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1, got {chunk_size}")
    shares = [keys[start:start + chunk_size] for start in range(0, len(keys), chunk_size)]
    chunks = JobChunk.objects.bulk_create([
        JobChunk(job=job, number=number, first_key=share[0], last_key=share[-1], size=len(share))
        for number, share in enumerate(shares)])
    Job.objects.filter(pk=job.pk).update(message=f"{len(chunks)} chunks of up to {chunk_size} galaxies queued",
                                         heartbeat_at=timezone.now())
    cluster = task_cluster(job.kind)
    for chunk in JobChunk.objects.filter(job=job).order_by("number").values_list("pk", flat=True):
        async_task(f"labeling.tasks.{job.kind}_chunk", chunk, group=f"{job.kind}_chunk", cluster=cluster)
    raise JobHandedOff(len(chunks))


class ChunkReporter:
    """The JobReporter interface for one chunk: progress goes to the chunk and, summed over all chunks, to the parent
    job (with its heartbeat); cancellation follows the parent (cancelled by a person, or failed by another chunk)."""

    def __init__(self, chunk: JobChunk, *, min_interval: float = 0.5):
        self.chunk = chunk
        self.min_interval = min_interval
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._stop = False

    def progress(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if now - self._last_write < self.min_interval and done < total:
            return
        self._last_write = now
        # `done` counts this run's galaxies; a chunk resumed after a crash started with some already stored.
        JobChunk.objects.filter(pk=self.chunk.pk).update(done=min(done, self.chunk.size), heartbeat_at=timezone.now())
        _parent_progress(self.chunk.job_id)

    def cancel_requested(self) -> bool:
        now = time.monotonic()
        if not self._stop and now - self._last_cancel_check >= 2.0:
            self._last_cancel_check = now
            self._stop = not Job.objects.filter(pk=self.chunk.job_id, status=Job.Status.RUNNING,
                                                cancel_requested=False).exists()
        return self._stop

    def check_cancelled(self) -> None:
        if self.cancel_requested():
            raise JobCancelled()


def chunk_run(chunk_id: int, work: Callable[[JobChunk, ChunkReporter], dict],
              finish: Callable[[Job, list[JobChunk]], dict]) -> dict:
    """Run ``work(chunk, reporter)`` for a queued chunk; the last chunk to succeed calls ``finish(job, chunks)``,
    whose dict becomes the job's result.

    Returns:
        The chunk's result, or {"status": "skipped" | "failed" | "cancelled", ...}.
    """
    now = timezone.now()
    started = JobChunk.objects.filter(pk=chunk_id, status=Job.Status.QUEUED, job__status=Job.Status.RUNNING).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, worker_host=socket.gethostname(),
        worker_pid=os.getpid())
    chunk = JobChunk.objects.select_related("job").get(pk=chunk_id)
    if not started:
        if chunk.status == Job.Status.QUEUED:  # the job ended (failed, cancelled) before this chunk's turn
            _chunk_finish(chunk_id, Job.Status.CANCELLED, error=f"job #{chunk.job_id} is {chunk.job.status}")
        return {"status": "skipped", "reason": f"chunk is {chunk.status}, job #{chunk.job_id} is {chunk.job.status}"}
    try:
        result = work(chunk, ChunkReporter(chunk))
    except JobCancelled:
        _chunk_finish(chunk_id, Job.Status.CANCELLED)
        _parent_end(chunk.job_id, Job.Status.CANCELLED, message="cancelled")
        return {"status": "cancelled"}
    except Exception as exc:  # noqa: BLE001 - recorded on the chunk and its job, which is what people read
        error = f"{type(exc).__name__}: {exc}"
        _chunk_finish(chunk_id, Job.Status.FAILED, error=f"{error}\n\n{traceback.format_exc()}")
        _parent_end(chunk.job_id, Job.Status.FAILED, message=f"chunk {chunk.number} failed: {error}"[:300],
                    error=f"chunk {chunk.number} (galaxy ids {chunk.first_key}-{chunk.last_key}) failed on "
                          f"{socket.gethostname()}: {error}")
        return {"status": "failed", "error": error}
    with transaction.atomic():
        # The parent's row lock orders the chunks' endings: exactly one of them sees every other chunk succeeded.
        job = Job.objects.select_for_update().get(pk=chunk.job_id)
        JobChunk.objects.filter(pk=chunk_id).update(status=Job.Status.SUCCEEDED, result=result, done=chunk.size,
                                                    finished_at=timezone.now(), heartbeat_at=timezone.now())
        chunks = list(JobChunk.objects.filter(job=job).order_by("number"))
        last = job.status == Job.Status.RUNNING and all(c.status == Job.Status.SUCCEEDED for c in chunks)
        if last:
            Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, progress=100.0, message="done",
                                                 finished_at=timezone.now(), heartbeat_at=timezone.now())
    if last:
        try:
            outcome = finish(job, chunks)
        except Exception as exc:  # noqa: BLE001 - e.g. the chain's next step could not start
            Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, message=f"{type(exc).__name__}: {exc}"[:300],
                                                 error=f"after all chunks succeeded: {type(exc).__name__}: {exc}")
            return result
        Job.objects.filter(pk=job.pk).update(result=outcome)
    return result


def chunks_mark_abandoned(*, host: str, stale_before: datetime, process_exists: Callable[[int], bool]) -> int:
    """Fail the running chunks whose worker is gone (as jobs_mark_abandoned does for jobs), and their jobs."""
    marked = 0
    for chunk in JobChunk.objects.filter(status=Job.Status.RUNNING).only(
            "pk", "job_id", "number", "worker_host", "worker_pid", "heartbeat_at"):
        if chunk.worker_host == host and chunk.worker_pid and not process_exists(chunk.worker_pid):
            reason = f"the worker process (pid {chunk.worker_pid} on {host}) ended while chunk {chunk.number} ran"
        elif chunk.heartbeat_at is not None and chunk.heartbeat_at < stale_before:
            reason = f"chunk {chunk.number} gave no sign of life since {chunk.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        else:
            continue
        if JobChunk.objects.filter(pk=chunk.pk, status=Job.Status.RUNNING).update(
                status=Job.Status.FAILED, finished_at=timezone.now(), error=reason):
            marked += 1
            _parent_end(chunk.job_id, Job.Status.FAILED, message="abandoned: a chunk's worker is gone",
                        error=f"{reason}. Run the job again; it extracts only what is still missing.")
    return marked


def _chunk_finish(chunk_id: int, status: str, **fields) -> None:
    JobChunk.objects.filter(pk=chunk_id).update(status=status, finished_at=timezone.now(), **fields)


def _parent_end(job_id: int, status: str, **fields) -> None:
    """End a running parent job (the first chunk to fail or be cancelled decides); a job already ended stays so."""
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(status=status, finished_at=timezone.now(),
                                                                    heartbeat_at=timezone.now(), **fields)


def _parent_progress(job_id: int) -> None:
    """The parent's progress over all its chunks, and how many are done and running, as its message."""
    totals = JobChunk.objects.filter(job_id=job_id).aggregate(
        done=Sum("done"), size=Sum("size"), chunks=Count("pk"),
        finished=Count("pk", filter=Q(status=Job.Status.SUCCEEDED)),
        running=Count("pk", filter=Q(status=Job.Status.RUNNING)))
    percent = 100.0 * (totals["done"] or 0) / totals["size"] if totals["size"] else 0.0
    message = (f"extracting in chunks: {totals['finished']} of {totals['chunks']} done, {totals['running']} "
               "running")
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(progress=min(100.0, percent), message=message,
                                                                    heartbeat_at=timezone.now())
