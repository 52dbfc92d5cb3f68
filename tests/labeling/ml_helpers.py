"""Helpers for the machine-learning tests: a small dataset of real Galaxy10 DECaLS galaxies with their labels,
a small random-weight model, and jobs run inline as a worker would run them."""

import shutil
from pathlib import Path

from labeling import tasks
from labeling.models import Dataset, FeatureSet, Job, ModelVersion
from labeling.services.imports.galaxies import galaxies_import
from labeling.services.learning.jobs import clustering_start, embedding_start, extraction_start, index_start
from labeling.services.learning.model_versions import model_version_get_or_create
from tests.labeling.import_helpers import read_csv, write_csv

DEMO_GALAXY10 = Path(__file__).resolve().parents[2] / "labeling" / "demo_data" / "galaxy10"
# Round smooth, barred spiral, edge-on without bulge: classes that look unlike each other.
CLASSES = ("2", "5", "8")


def galaxy10_subset_folder(folder: Path, *, classes=CLASSES, per_class: int = 6) -> Path:
    """A folder import of ``per_class`` real images of each class: images/ and labels.csv."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = [row for row in read_csv(DEMO_GALAXY10 / "labels.csv") if row["label"] in classes
            and row["id"].startswith("g10_class_") and int(row["id"].rsplit("_", 1)[1]) < per_class]
    for row in rows:
        shutil.copy(DEMO_GALAXY10 / row["file"], folder / row["file"])
    write_csv(folder / "labels.csv", rows)
    return folder


def galaxy10_subset(folder: Path, *, classes=CLASSES, per_class: int = 6, name: str = "Galaxy10 subset") -> Dataset:
    """Import ``per_class`` real images of each class, labelled in the galaxy10 schema."""
    galaxy10_subset_folder(folder, classes=classes, per_class=per_class)
    galaxies_import(dataset_name=name, fmt="folder", path=folder, schema_name="galaxy10")
    return Dataset.objects.get(name=name)


def galaxy10_subset_for_training(folder: Path, *, per_class: int = 8) -> Dataset:
    """:func:`galaxy10_subset` whose galaxies fall on both sides of the fixed held-out split, as a retrain cycle needs.

    The split depends on the galaxy ids alone, and a shared PostgreSQL server hands out ever new ids: with 24
    galaxies, about one import in 200 would hold none out. Such an import is dropped and made again (new ids)."""
    from mlcore.training.evaluate import held_out_mask

    for _ in range(5):
        dataset = galaxy10_subset(folder, per_class=per_class)
        held_out = held_out_mask(list(dataset.galaxies.values_list("pk", flat=True)))
        if held_out.any() and not held_out.all():
            return dataset
        dataset.delete()
    raise AssertionError("five imports in a row fell on one side of the held-out split")


def tiny_model(**options) -> ModelVersion:
    """ResNet-18 with seeded random weights at 32 px: seconds for a few dozen images on a CPU."""
    return model_version_get_or_create(**{"backbone": "resnet18", "weights": "random", "image_size": 32, **options})


def finished(job: Job) -> Job:
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, f"{job}: {job.error or job.message}"
    return job


TINY_CYCLE = {"image_size": 32, "epochs": 1}


def retrain_cycle(dataset: Dataset, **options) -> Job:
    """One retrain cycle (TINY_CYCLE unless told otherwise) run as a worker would, with the jobs it starts (an
    activation chain when it wins) run too."""
    from django.test import TestCase

    from labeling.services.learning.retrain import retrain_start

    job = retrain_start(dataset=dataset, enqueue=False, **{**TINY_CYCLE, **options})
    with TestCase.captureOnCommitCallbacks(execute=True):
        tasks.retrain(job.pk)
    job.refresh_from_db()
    return job


def extracted(dataset: Dataset, model: ModelVersion | None = None, **options) -> FeatureSet:
    job = extraction_start(dataset=dataset, model_version=model or tiny_model(), enqueue=False,
                           **{"batch_size": 8, **options})
    tasks.extract_features(job.pk)
    return FeatureSet.objects.get(pk=finished(job).result["feature_set"])


def indexed(feature_set: FeatureSet, kind: str = "auto") -> FeatureSet:
    job = index_start(feature_set=feature_set, kind=kind, enqueue=False)
    tasks.build_index(job.pk)
    finished(job)
    feature_set.refresh_from_db()
    return feature_set


def clustered(feature_set: FeatureSet, method: str = "kmeans", k: int = 3, **options):
    job = clustering_start(feature_set=feature_set, method=method, k=k, enqueue=False, **options)
    tasks.cluster(job.pk)
    return feature_set.clusterings.get(pk=finished(job).result["clustering"])


def mapped(feature_set: FeatureSet, method: str = "pca", **options):
    job = embedding_start(feature_set=feature_set, method=method, enqueue=False, **options)
    tasks.embed_2d(job.pk)
    return feature_set.embeddings.get(pk=finished(job).result["embedding"])
