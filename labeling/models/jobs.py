"""Background jobs (feature extraction, indexes, clusterings, maps) as a person sees them: what was asked, by whom,
how far it got, and how it ended. django-q2 runs them; this row is what survives the worker (see
services/jobs/lifecycle.py)."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from labeling.models.catalogue import Dataset


class Job(models.Model):
    class Kind(models.TextChoices):
        EXTRACT_FEATURES = "extract_features", "extract features"
        BUILD_INDEX = "build_index", "build neighbour index"
        CLUSTER = "cluster", "cluster"
        EMBED_2D = "embed_2d", "2-D map"
        FIT_CLASSIFIER = "fit_classifier", "fit probability model"
        BUILD_QUEUE = "build_queue", "build labelling queues"
        RETRAIN = "retrain", "retrain cycle"
        PRETRAIN = "pretrain", "self-supervised pretraining"
        IMPORT_GALAXIES = "import_galaxies", "import galaxies"
        IMPORT_VOTES = "import_votes", "import votes"
        IMPORT_FEATURES = "import_features", "import features"
        IMPORT_PREDICTIONS = "import_predictions", "import predictions"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=20, choices=Kind.choices)
    arguments = models.JSONField(default=dict, blank=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0 to 100.")
    message = models.CharField(max_length=300, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="jobs")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of a running job.")
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "kind"])]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def duration(self):
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class JobChunk(models.Model):
    """One share of a job that several workers run in parallel (feature extraction of a large dataset).

    The parent job stays running while its chunks run; the chunk that finishes last completes it (see
    services/jobs/chunks.py). ``first_key`` and ``last_key`` bound the galaxy ids the chunk covers, inclusive.
    """

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField(help_text="0, 1, ... in the order the chunks were made.")
    first_key = models.BigIntegerField()
    last_key = models.BigIntegerField()
    size = models.PositiveIntegerField(help_text="Galaxies to do when the chunk was made.")
    done = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Job.Status.choices, default=Job.Status.QUEUED)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_host = models.CharField(max_length=255, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="job_chunk_number_unique")]
        indexes = [models.Index(fields=["status"])]

    def __str__(self):
        return f"chunk {self.number} of job #{self.job_id} ({self.status})"
