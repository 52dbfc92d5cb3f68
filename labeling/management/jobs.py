"""What the machine-learning commands share: finding the dataset and feature set they name, and running a Job
in the command's own process (the same task function a worker runs) with a progress bar."""

import time
from collections.abc import Callable
from typing import TextIO

from django.core.management.base import CommandError

from labeling.management.progress import PhaseBars
from labeling.models import Dataset, FeatureSet, Job


def dataset_named(name: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name).first() or Dataset.objects.filter(slug=name).first()
    if dataset is None:
        known = ", ".join(repr(n) for n in Dataset.objects.values_list("name", flat=True)) or "none yet"
        raise CommandError(f"no dataset {name!r} (datasets: {known})")
    return dataset


def feature_set_of(dataset: Dataset, feature_set_id: int | None) -> FeatureSet:
    """The feature set asked for, else the dataset's most recently updated one."""
    sets = FeatureSet.objects.filter(dataset=dataset).select_related("model_version", "dataset")
    feature_set = sets.filter(pk=feature_set_id).first() if feature_set_id else sets.order_by("-updated_at").first()
    if feature_set is None:
        which = f"feature set #{feature_set_id}" if feature_set_id else "no feature set"
        raise CommandError(f"dataset {dataset.name!r} has {which}: run extract_features --dataset "
                           f"{dataset.name!r} first")
    return feature_set


def run_here(task: Callable[..., dict], job: Job, *, unit: str = "step", stream: TextIO | None = None
             ) -> tuple[Job, float]:
    """Run ``task(job.pk, echo=...)`` now, in this process, its progress shown on ``stream`` (a command's
    ``self.stderr``; sys.stderr by default); returns the finished job and the seconds it took.

    Raises:
        CommandError: when the job failed or was cancelled, with its error.
    """
    started = time.monotonic()
    with PhaseBars(unit=unit, stream=stream) as bars:
        task(job.pk, echo=bars)
    job.refresh_from_db()
    if job.status != Job.Status.SUCCEEDED:
        reason = job.error.split("\n\n")[0] if job.error else job.message
        raise CommandError(f"job #{job.pk} {job.status}: {reason}")
    return job, time.monotonic() - started
