"""Retrain cycles trained in several processes (GALAXY_TRAIN_PROCESSES > 1,
labeling/services/learning/train_processes.py): torchrun on two CPU processes makes a version like the single-process
path does; a failing subprocess fails the cycle with its stderr and keeps the active version; a cancel reaches the
subprocess through its cancel file."""

import sys
import textwrap
from pathlib import Path

import pytest
from django.test import TestCase, override_settings

from labeling import tasks
from labeling.models import Job, ModelVersion
from labeling.services.learning import train_processes
from labeling.services.learning.model_versions import model_version_activate
from labeling.services.learning.retrain import retrain_start
from mlcore.training.galaxy_model import load_model
from tests.labeling.ml_helpers import galaxy10_subset_for_training

pytestmark = pytest.mark.django_db
TINY = {"image_size": 32, "epochs": 1}


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset_for_training(tmp_path / "import")


def cycle(dataset, messages: list | None = None) -> Job:
    """One cycle run as a worker would; ``messages`` collects the progress messages it reports."""
    job = retrain_start(dataset=dataset, enqueue=False, **TINY)
    echo = None if messages is None else lambda done, total, message: messages.append(message)
    with TestCase.captureOnCommitCallbacks(execute=True):
        tasks.retrain(job.pk, echo=echo)
    job.refresh_from_db()
    return job


def temporary_folders() -> list[Path]:
    root = train_processes.temporary_root()
    return list(root.iterdir()) if root.exists() else []


def fake_launcher(monkeypatch, script: str) -> None:
    """Replace torchrun by a Python script, given the launcher's output folder as ``outdir``."""
    def command(*, spec, outdir, checkpoint, processes):
        return [sys.executable, "-c", f"outdir = {str(outdir)!r}\n" + textwrap.dedent(script)]

    monkeypatch.setattr(train_processes, "launch_command", command)


@override_settings(GALAXY_TRAIN_PROCESSES=2)
def test_a_cycle_on_two_training_processes_makes_a_ready_version_with_its_metrics(dataset):
    messages = []

    job = cycle(dataset, messages)

    assert job.status == Job.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    assert version.status == ModelVersion.Status.READY
    assert version.metrics["processes"] == 2 and len(version.metrics["history"]) == 1
    assert 0 <= version.metrics["held_out"]["accuracy"] <= 1
    _, info = load_model(version.checkpoint)
    assert info["classes"] == ["2", "5", "8"] and Path(version.checkpoint).parent.name == f"version-{version.pk}"
    assert "training in 2 processes (torchrun): starting" in messages
    assert any(message.startswith("training: epoch 1/1, batch 1/1, loss ") for message in messages)
    assert temporary_folders() == []  # the spec (decoded images) and the logs are gone


@override_settings(GALAXY_TRAIN_PROCESSES=2)
def test_a_failing_training_process_fails_the_cycle_with_its_stderr_and_keeps_the_active_version(
        dataset, monkeypatch):
    active = ModelVersion.objects.create(name="serving", image_size=32)
    model_version_activate(version=active, dataset=dataset)
    fake_launcher(monkeypatch, """
        import sys
        sys.stderr.write("[rank1]: torch.OutOfMemoryError: CUDA out of memory\\n")
        sys.exit(1)
    """)

    job = cycle(dataset)

    version = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert job.status == Job.Status.FAILED
    assert "TrainingProcessError" in job.error and "exit status 1" in job.error
    assert "CUDA out of memory" in job.error and "CUDA out of memory" in version.error
    assert version.status == ModelVersion.Status.FAILED and not version.checkpoint
    dataset.refresh_from_db()
    assert dataset.active_version == active
    assert temporary_folders() == []


@override_settings(GALAXY_TRAIN_PROCESSES=2)
def test_a_cancel_reaches_the_training_processes_through_their_cancel_file(dataset, monkeypatch):
    # Stands in for rank 0: it reports a batch, then waits for the cancel file and stops as the launcher does.
    fake_launcher(monkeypatch, """
        import json, os, sys, time
        step = {"event": "progress", "epoch": 1, "epochs": 1, "batch": 1, "batches": 2, "loss": 1.0, "eta_s": 1.0,
                "images_per_s": 1.0}
        print("@train_launch " + json.dumps(step), flush=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(outdir, "cancel")) and time.monotonic() < deadline:
            time.sleep(0.05)
        sys.exit(3 if os.path.exists(os.path.join(outdir, "cancel")) else 0)
    """)
    job = retrain_start(dataset=dataset, enqueue=False, **TINY)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)

    tasks.retrain(job.pk)

    job.refresh_from_db()
    version = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert job.status == Job.Status.CANCELLED
    assert version.status == ModelVersion.Status.FAILED and version.error == "cancelled"
