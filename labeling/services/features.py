"""Feature extraction: a dataset's galaxy images through a model version's backbone into a feature store.

Incremental: only galaxies without a vector in the store are read, and vectors are stored batch by batch, so a
run that was killed resumes where it stopped and a dataset that grew costs only its new galaxies.
"""

from labeling.models import Dataset, FeatureSet, Galaxy, ModelVersion
from labeling.services.jobs import JobCancelled, JobReporter

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


def features_extract(*, dataset: Dataset, model_version: ModelVersion, rotation_invariant: bool = False,
                     reporter: JobReporter, batch_size: int = 64, num_workers: int | None = None,
                     threads: int | None = None) -> tuple[FeatureSet, int]:
    """Extract the features of the dataset's galaxies that have an image and no vector yet.

    Returns:
        The feature set and how many galaxies got a vector in this run.

    Raises:
        JobCancelled: when the job was cancelled; the vectors stored so far stay.
        mlcore.backbone.WeightsError, WeightsUnavailable: the model's weights cannot be loaded.
    """
    import torch

    from mlcore.backbone import build_backbone
    from mlcore.data import ImageFiles, make_loader, make_transform
    from mlcore.features import Cancelled, extract
    from mlcore.store import FeatureStore

    if threads:
        torch.set_num_threads(threads)
    feature_set = feature_set_get_or_create(dataset=dataset, model_version=model_version,
                                            rotation_invariant=rotation_invariant)
    store = FeatureStore.open_or_create(feature_set.store_dir, dim=feature_set.dims, dtype=feature_set.dtype)
    candidates = list(Galaxy.objects.filter(dataset=dataset).exclude(image="").order_by("pk")
                      .values_list("pk", "image"))
    missing = ~store.has([pk for pk, _ in candidates])
    todo = [candidate for candidate, absent in zip(candidates, missing, strict=True) if absent]
    reporter.progress(0, max(len(todo), 1), f"loading {model_version.name}")
    model = build_backbone(model_version.backbone, model_version.weights_argument, seed=model_version.seed)
    storage = Galaxy._meta.get_field("image").storage
    files = ImageFiles([storage.path(name) for _, name in todo], [pk for pk, _ in todo],
                       make_transform(model_version.image_size))
    loader_options = {"batch_size": batch_size} | ({"num_workers": num_workers} if num_workers is not None else {})
    failed = dict(feature_set.failed)
    added = 0

    def progress(done: int, total: int) -> None:
        reporter.progress(done, total, "extracting features")

    try:
        for batch in extract(model, make_loader(files, **loader_options), d4=rotation_invariant, progress=progress,
                             should_stop=reporter.cancel_requested):
            if len(batch.keys):
                store.append(batch.keys, batch.vectors)
                added += len(batch.keys)
                for key in batch.keys.tolist():
                    failed.pop(str(key), None)
            failed.update({str(key): reason for key, reason in batch.failed})
            # Saved per batch: the count people see, and what a resumed run trusts, follow the store.
            FeatureSet.objects.filter(pk=feature_set.pk).update(count=len(store), failed=failed)
    except Cancelled:
        raise JobCancelled() from None
    feature_set.refresh_from_db()
    return feature_set, added
