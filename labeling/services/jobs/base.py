"""What every job module shares: the exceptions a job's work raises, and which workers take each kind of job.

Kept apart from the job lifecycle (lifecycle.py) so that the chunks (chunks.py), which the lifecycle calls, can
use them without importing the lifecycle back.
"""

from django.conf import settings


class JobConflict(ValueError):
    """The same job is already queued or running."""


class JobCancelled(Exception):
    """Raised inside a job's work when a person asked to cancel it. (This module stays free of torch, which the web
    server never needs: the extraction service turns mlcore's own Cancelled into this.)"""


class JobHandedOff(Exception):
    """Raised by a job's work once it has handed the rest to chunks that other workers run (services/jobs/chunks.py):
    the job stays running, and the chunk that finishes last records how it ended."""

    def __init__(self, chunks: int):
        super().__init__(f"handed to {chunks} chunks")
        self.chunks = chunks


def task_cluster(kind: str) -> str | None:
    """The django-q2 cluster whose workers take jobs of ``kind``: GALAXY_GPU_CLUSTER for the kinds listed in
    GALAXY_GPU_JOB_KINDS when a GPU cluster is configured, else None (the default cluster)."""
    if settings.GALAXY_GPU_CLUSTER and kind in settings.GALAXY_GPU_JOB_KINDS:
        return settings.GALAXY_GPU_CLUSTER
    return None
