"""Feature extraction: a dataset's galaxy images through a model version's backbone into a feature store.

Incremental: only galaxies without a vector in the store are read, and vectors are stored batch by batch, so a
run that was killed resumes where it stopped and a dataset that grew costs only its new galaxies.

Several processes may extract into one store at once, each over its own range of galaxy ids (the chunks of
services/jobs/chunks.py): the store serialises appends, and the feature set's count and failures are updated so that
no worker overwrites another's.
"""

from django.db import transaction
from django.db.models.functions import Greatest

from labeling.models import Dataset, FeatureSet, Galaxy, ModelVersion
from labeling.services.jobs.lifecycle import JobCancelled, JobReporter

STORE_DTYPE = "float16"  # half the disk of float32; cosine neighbours and clusters do not notice the rounding


def feature_set_get_or_create(*, dataset: Dataset, model_version: ModelVersion,
                              rotation_invariant: bool = False) -> FeatureSet:
    suffix = "-d4" if rotation_invariant else ""
    feature_set, _ = FeatureSet.objects.get_or_create(
        model_version=model_version, dataset=dataset, rotation_invariant=rotation_invariant,
        defaults={"store_path": f"{dataset.slug}/model-{model_version.pk}{suffix}", "dims": model_version.feature_dim,
                  "dtype": STORE_DTYPE},
    )
    return feature_set


def extraction_todo(*, feature_set: FeatureSet, key_range: tuple[int, int] | None = None) -> list[tuple[int, str]]:
    """(galaxy id, image name) of the feature set's galaxies with an image and no vector yet, by id; only ids within
    ``key_range`` (first, last inclusive) when given. Creates the store when it does not exist yet."""
    from mlcore.features.store import FeatureStore

    store = FeatureStore.open_or_create(feature_set.store_dir, dim=feature_set.dims, dtype=feature_set.dtype)
    galaxies = Galaxy.objects.filter(dataset=feature_set.dataset).exclude(image="")
    if key_range is not None:
        galaxies = galaxies.filter(pk__gte=key_range[0], pk__lte=key_range[1])
    candidates = list(galaxies.order_by("pk").values_list("pk", "image"))
    missing = ~store.has([pk for pk, _ in candidates])
    return [candidate for candidate, absent in zip(candidates, missing, strict=True) if absent]


def features_extract(*, dataset: Dataset, model_version: ModelVersion, rotation_invariant: bool = False,
                     reporter: JobReporter, batch_size: int = 64, num_workers: int | None = None,
                     threads: int | None = None, key_range: tuple[int, int] | None = None) -> tuple[FeatureSet, int]:
    """Extract the features of the dataset's galaxies that have an image and no vector yet (only those with ids in
    ``key_range``, first and last inclusive, when given).

    Returns:
        The feature set and how many galaxies got a vector in this run.

    Raises:
        JobCancelled: when the job was cancelled; the vectors stored so far stay.
        mlcore.features.backbone.WeightsError, WeightsUnavailable: the model's weights cannot be loaded.
    """
    import torch

    from mlcore.features.backbone import build_backbone, input_crop
    from mlcore.features.extraction import Cancelled, extract
    from mlcore.features.images import ImageFiles, make_loader, make_transform
    from mlcore.features.store import FeatureStore

    if threads:
        torch.set_num_threads(threads)
    feature_set = feature_set_get_or_create(dataset=dataset, model_version=model_version,
                                            rotation_invariant=rotation_invariant)
    todo = extraction_todo(feature_set=feature_set, key_range=key_range)
    store = FeatureStore.open(feature_set.store_dir)
    reporter.progress(0, max(len(todo), 1), f"loading {model_version.name}")
    model = build_backbone(model_version.backbone, model_version.weights_argument, seed=model_version.seed)
    storage = Galaxy._meta.get_field("image").storage
    files = ImageFiles([storage.path(name) for _, name in todo], [pk for pk, _ in todo],
                       make_transform(model_version.image_size, input_crop(model_version.weights_argument)))
    loader_options = {"batch_size": batch_size} | ({"num_workers": num_workers} if num_workers is not None else {})
    added = 0

    def progress(done: int, total: int) -> None:
        reporter.progress(done, total, "extracting features")

    try:
        for batch in extract(model, make_loader(files, **loader_options), d4=rotation_invariant, progress=progress,
                             should_stop=reporter.cancel_requested):
            if len(batch.keys):
                store.append(batch.keys, batch.vectors)
                added += len(batch.keys)
            # Saved per batch: the count people see, and what a resumed run trusts, follow the store. Greatest: a
            # worker that appended earlier must not lower the count another worker has just raised.
            FeatureSet.objects.filter(pk=feature_set.pk).update(count=Greatest("count", len(store)))
            _failures_record(feature_set, stored=batch.keys.tolist(), failed=batch.failed)
    except Cancelled:
        raise JobCancelled() from None
    feature_set.refresh_from_db()
    return feature_set, added


def features_count_refresh(*, feature_set: FeatureSet) -> FeatureSet:
    """Set the feature set's count to the rows its store holds (after several workers appended to it)."""
    from mlcore.features.store import FeatureStore

    FeatureSet.objects.filter(pk=feature_set.pk).update(count=len(FeatureStore.open(feature_set.store_dir)))
    feature_set.refresh_from_db()
    return feature_set


def _failures_record(feature_set: FeatureSet, *, stored: list[int], failed: list[tuple[int, str]]) -> None:
    """Add this batch's unreadable images to the feature set's failures and drop the ones now stored, under a lock
    on its row, so that workers extracting other chunks at the same time keep theirs."""
    stored_keys = {str(key) for key in stored}
    if not failed and not stored_keys & set(feature_set.failed):
        return
    with transaction.atomic():
        locked = FeatureSet.objects.select_for_update().only("failed").get(pk=feature_set.pk)
        merged = {key: reason for key, reason in locked.failed.items() if key not in stored_keys}
        merged.update({str(key): reason for key, reason in failed})
        FeatureSet.objects.filter(pk=feature_set.pk).update(failed=merged)
    feature_set.failed = merged
