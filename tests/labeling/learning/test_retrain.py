"""Retrain cycles: a new model version trained on the labels, evaluated on the fixed held-out split beside its
baselines, activated through a chain of jobs when better, and failures that leave the previous version serving."""

import os
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase

from labeling import tasks
from labeling.management.commands.retrain import base_version
from labeling.models import Classifier, Dataset, ExpertLabel, FeatureSet, Job, ModelVersion
from labeling.selectors.training import rollback_target
from labeling.services.jobs.lifecycle import JobConflict, jobs_mark_abandoned
from labeling.services.learning.activation import version_activate
from labeling.services.learning.classifier import classifier_fit, current_feature_set
from labeling.services.learning.model_versions import ModelVersionError, model_version_activate
from labeling.services.learning.retrain import retrain_start, versions_dir
from labeling.services.learning.training_data import TrainingDataError, cycle_data
from tests.labeling.ml_helpers import TINY_CYCLE as TINY
from tests.labeling.ml_helpers import extracted, galaxy10_subset_for_training
from tests.labeling.ml_helpers import retrain_cycle as cycle

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    return galaxy10_subset_for_training(tmp_path / "import")


def test_a_cycle_makes_a_ready_version_with_held_out_metrics_and_baselines(dataset):
    job = cycle(dataset)
    assert job.status == Job.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    assert version.status == ModelVersion.Status.READY
    assert Path(version.checkpoint).is_file() and len(version.checkpoint_sha256) == 64
    metrics = version.metrics
    assert set(metrics["baselines"]) == {"previous version", "pixels PCA(20) + LR", "class head alone"}
    assert [row["name"] for row in metrics["comparison"]][-1] == "class head alone"
    assert 0 <= metrics["held_out"]["accuracy"] <= 1 and len(metrics["held_out"]["confusion"]) == 3
    assert [row["name"] for row in metrics["comparison"]][0] == version.name
    assert len(metrics["history"]) == 1 and metrics["history"][0]["loss"] > 0
    training = version.training
    assert training["expert_labels"] + training["held_out"] == 24
    assert set(training["classes"]) == {"2", "5", "8"} and version.trained_on == dataset
    assert len(version.training_labels["labels"]) == training["expert_labels"]
    assert set(version.training_labels["labels"].values()) == {"2", "5", "8"}
    assert version.hyperparameters["epochs"] == 1 and version.method == "finetune"


def test_the_held_out_galaxies_are_never_trained_on_nor_pseudo_labelled(dataset):
    feature_set = extracted(dataset)
    schema = ExpertLabel.objects.first().schema
    held_before = set(cycle_data(dataset=dataset, schema=schema, pseudo_threshold=0.5, pseudo_weight=0.5)
                      .test_ids.tolist())
    # Unlabel half the training galaxies, so the probability model's predictions can pseudo-label them.
    train_ids = [g for g in dataset.galaxies.values_list("pk", flat=True) if g not in held_before]
    ExpertLabel.objects.filter(galaxy_id__in=train_ids[::2]).delete()
    classifier_fit(feature_set=feature_set, schema=schema)
    data = cycle_data(dataset=dataset, schema=schema, pseudo_threshold=0.34, pseudo_weight=0.5)
    assert set(data.test_ids.tolist()) <= held_before
    pseudo = {int(g) for g, w in zip(data.train_ids, data.hard_weight, strict=True) if 0 < w < 1}
    assert pseudo and not pseudo & held_before
    assert data.snapshot["pseudo_labels"] == len(pseudo)
    assert Classifier.objects.count() == 1


def test_one_cycle_at_a_time_per_dataset(dataset):
    retrain_start(dataset=dataset, enqueue=False, **TINY)
    with pytest.raises(JobConflict, match="already queued"):
        retrain_start(dataset=dataset, enqueue=False, **TINY)
    assert ModelVersion.objects.filter(trained_on=dataset).count() == 1


def test_a_dataset_with_one_class_is_refused_and_nothing_is_made(dataset):
    ExpertLabel.objects.exclude(label_class__key="2").delete()
    with pytest.raises(TrainingDataError, match="at least two"):
        retrain_start(dataset=dataset, enqueue=False, **TINY)
    assert not ModelVersion.objects.filter(trained_on=dataset).exists() and not Job.objects.exists()


def test_the_command_prints_the_held_out_accuracy(dataset, capsys):
    call_command("retrain", "--dataset", dataset.name, "--image-size", "32", "--epochs", "1")
    output = capsys.readouterr().out
    assert "held-out accuracy" in output and "pixels PCA(20)+LR" in output
    with pytest.raises(CommandError, match="not a model version id or name"):
        call_command("retrain", "--dataset", dataset.name, "--weights", "/nowhere/model.pt")


def test_a_cycle_is_measured_against_its_own_datasets_active_version(dataset):
    elsewhere = Dataset.objects.create(name="Elsewhere", slug="elsewhere")
    theirs, ours = (ModelVersion.objects.create(name=name, image_size=32) for name in ("theirs", "ours"))
    model_version_activate(version=ours, dataset=dataset)
    model_version_activate(version=theirs, dataset=elsewhere)  # activated last: no longer "the" active one
    job = retrain_start(dataset=dataset, enqueue=False, **TINY)
    assert ModelVersion.objects.get(pk=job.arguments["model_version"]).parent == ours


def test_the_command_starts_from_the_datasets_own_active_version_when_asked(dataset):
    elsewhere = Dataset.objects.create(name="Elsewhere", slug="elsewhere")
    model_version_activate(version=ModelVersion.objects.create(name="theirs", image_size=32), dataset=elsewhere)
    with pytest.raises(CommandError, match=f"dataset {dataset.name!r} has no active model version"):
        base_version("active", dataset)
    ours = ModelVersion.objects.create(name="ours", image_size=32)
    model_version_activate(version=ours, dataset=dataset)
    assert base_version("active", dataset) == ours


def test_a_cancelled_cycle_fails_its_version_and_keeps_the_active_one(dataset, monkeypatch):
    active = ModelVersion.objects.create(name="serving", image_size=32)
    model_version_activate(version=active, dataset=dataset)
    job = retrain_start(dataset=dataset, enqueue=False, **TINY)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    tasks.retrain(job.pk)
    job.refresh_from_db()
    version = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert job.status == Job.Status.CANCELLED and version.status == ModelVersion.Status.FAILED
    assert version.error == "cancelled" and not version.checkpoint
    dataset.refresh_from_db()
    assert dataset.active_version == active and version.parent == active


def test_a_worker_killed_mid_training_leaves_the_version_failed_with_the_reason(dataset):
    active = ModelVersion.objects.create(name="serving", image_size=32)
    model_version_activate(version=active, dataset=dataset)
    job = retrain_start(dataset=dataset, enqueue=False, **TINY)
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    import socket

    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, worker_host=socket.gethostname(),
                                         worker_pid=dead)
    ModelVersion.objects.filter(pk=job.arguments["model_version"]).update(status=ModelVersion.Status.TRAINING)
    assert jobs_mark_abandoned() == 1
    version = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert version.status == ModelVersion.Status.FAILED and f"pid {dead}" in version.error
    dataset.refresh_from_db()
    assert dataset.active_version == active


def test_activating_runs_extraction_index_activation_clusters_and_queues(dataset,
                                                                         django_capture_on_commit_callbacks):
    job = cycle(dataset)
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    Dataset.objects.filter(pk=dataset.pk).update(active_version=None)  # whether or not the cycle won
    with django_capture_on_commit_callbacks(execute=True):
        version_activate(version=version, dataset=dataset)
    kinds = list(Job.objects.order_by("pk").values_list("kind", "status"))
    assert [kind for kind, _ in kinds[-4:]] == ["extract_features", "build_index", "cluster", "build_queue"]
    assert all(status == "succeeded" for _, status in kinds[-4:]), kinds
    dataset.refresh_from_db()
    assert dataset.active_version == version and version.status == ModelVersion.Status.READY
    feature_set = FeatureSet.objects.get(model_version=version, dataset=dataset)
    assert feature_set.has_index and feature_set.clusterings.exists()
    # A cycle serves vectors averaged over each image's 8 flips and quarter turns, as it was judged on.
    assert feature_set.rotation_invariant and version.rotation_invariant_features
    assert current_feature_set(dataset=dataset) == feature_set


def test_a_cycle_is_judged_on_the_features_it_will_serve(dataset, monkeypatch):
    from mlcore.training import galaxy_model

    asked = []
    original = galaxy_model.predict

    def spy(model, images, **options):
        asked.append(options.get("d4", False))
        return original(model, images, **options)

    monkeypatch.setattr(galaxy_model, "predict", spy)
    rotation_invariant = ModelVersion.objects.get(pk=cycle(dataset).result["model_version"])
    assert rotation_invariant.hyperparameters["rotation_invariant"] is True and asked == [True, True]
    asked.clear()
    plain = ModelVersion.objects.get(pk=cycle(dataset, seed=1, rotation_invariant=False).result["model_version"])
    assert not plain.rotation_invariant_features and asked == [False, False]


def test_rollback_activates_an_earlier_version_again(dataset, django_capture_on_commit_callbacks):
    first = ModelVersion.objects.get(pk=cycle(dataset).result["model_version"])
    second = ModelVersion.objects.get(pk=cycle(dataset, seed=1).result["model_version"])
    for version in (second, first):
        ModelVersion.objects.filter(pk=version.pk, status=ModelVersion.Status.FAILED).update(status="ready")
        version.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            version_activate(version=version, dataset=dataset)
    dataset.refresh_from_db()
    assert dataset.active_version == first and rollback_target(dataset=dataset) == second


def test_an_unreadable_checkpoint_is_refused_before_anything_changes(dataset):
    active = ModelVersion.objects.create(name="serving", image_size=32)
    job = cycle(dataset)
    assert job.status == Job.Status.SUCCEEDED, job.error
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    # Whether or not the cycle won and activated itself, "serving" is the active version when the test starts.
    model_version_activate(version=active, dataset=dataset)
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.READY
    Path(version.checkpoint).write_bytes(b"not a checkpoint")
    jobs_before = Job.objects.count()
    with pytest.raises(ModelVersionError, match="cannot be activated"):
        version_activate(version=version, dataset=dataset)
    assert Job.objects.count() == jobs_before
    dataset.refresh_from_db()
    assert dataset.active_version == active


def test_a_full_disk_fails_the_cycle_with_a_clear_error_and_no_file(dataset, monkeypatch):
    import torch

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    job = cycle(dataset)
    version = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert job.status == Job.Status.FAILED and "No space left" in job.error
    assert version.status == ModelVersion.Status.FAILED and "No space left" in version.error
    folder = versions_dir() / f"version-{version.pk}"
    assert not version.checkpoint and not (folder.exists() and any(folder.iterdir()))


def test_self_supervised_pretraining_makes_a_version_a_cycle_can_start_from(dataset, capsys):
    from mlcore.features.backbone import build_backbone

    call_command("pretrain", "--dataset", dataset.name, "--image-size", "32", "--epochs", "1")
    assert "contrastive loss" in capsys.readouterr().out
    pretrained = ModelVersion.objects.get(method="simclr")
    assert pretrained.status == ModelVersion.Status.READY and pretrained.training["images"] == 24
    build_backbone("resnet18", pretrained.checkpoint)  # an ordinary backbone checkpoint
    job = cycle(dataset, base=pretrained)
    version = ModelVersion.objects.get(pk=job.result["model_version"])
    assert version.parent == pretrained and version.metrics["previous_version"] == pretrained.name


def test_a_cycle_from_the_galaxy_backbone_trains_on_its_crop_and_passes_it_on(dataset, monkeypatch):
    from labeling.services.learning import retrain_eval
    from labeling.services.learning.model_versions import model_version_get_or_create
    from mlcore.features.backbone import input_crop

    galaxy = model_version_get_or_create(weights="galaxy")
    job = retrain_start(dataset=dataset, base=galaxy, epochs=1, enqueue=False)
    version = ModelVersion.objects.get(pk=job.arguments["model_version"])
    assert version.image_size == 96  # the base's own size (64) when none is asked for, but at least 96
    judged = []
    original = retrain_eval.previous_version_baseline

    def spy(parent, backbone, seed, data, train_images, test_images):
        judged.append((train_images.shape[-1], test_images.shape[-1]))
        return original(parent, backbone, seed, data, train_images, test_images)

    monkeypatch.setattr(retrain_eval, "previous_version_baseline", spy)
    with TestCase.captureOnCommitCallbacks(execute=True):
        tasks.retrain(job.pk)
    version.refresh_from_db()

    assert version.status == ModelVersion.Status.READY, version.error
    assert input_crop(version.checkpoint) == 0.5
    assert judged == [(64, 64)], "the galaxy backbone is judged on images at its own 64 px, not the cycle's 96"


def test_a_second_pretraining_of_the_same_dataset_is_refused(dataset):
    from labeling.services.learning.pretrain import pretrain_start

    pretrain_start(dataset=dataset, image_size=32, epochs=1, enqueue=False)
    with pytest.raises(JobConflict, match="already queued"):
        pretrain_start(dataset=dataset, image_size=32, epochs=1, enqueue=False)


def test_a_cycle_with_a_parent_is_judged_with_the_parents_regression_averaged_in(dataset, monkeypatch):
    from labeling.services.learning import retrain_eval
    from tests.labeling.ml_helpers import tiny_model

    def perfect(parent, backbone, seed, data, train_images, test_images):
        # The previous version's regression knows every held-out answer: averaged in at weight 1/2, it decides.
        return parent.name, np.eye(len(data.classes))[[data.classes.index(y) for y in data.test_labels]]

    monkeypatch.setattr(retrain_eval, "previous_version_baseline", perfect)
    version = ModelVersion.objects.get(pk=cycle(dataset, base=tiny_model()).result["model_version"])
    metrics = version.metrics
    assert set(metrics["baselines"]) == {"previous version", "pixels PCA(20) + LR", "class head alone",
                                         "without the previous version"}
    assert metrics["baselines"]["previous version"]["accuracy"] == 1.0
    assert metrics["held_out"]["accuracy"] == 1.0
    assert metrics["baselines"]["without the previous version"]["accuracy"] < 1.0
