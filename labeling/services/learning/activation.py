"""Activating a model version on one dataset: its features are extracted, indexed, then it becomes that dataset's
active version, and the dataset is clustered and its queues rebuilt, as a chain of jobs. Every dataset has its own
active version: the chain touches its own dataset only. The previous version keeps serving until the new one's
neighbour index exists; rolling back is activating the dataset's previous version again (its features are already
there)."""

from labeling.models import Clustering, Dataset, FeatureSet, Job, ModelVersion
from labeling.selectors.training import rollback_target
from labeling.services.jobs.lifecycle import JobConflict
from labeling.services.learning.model_versions import ModelVersionError, model_version_activate

CHAIN = ["build_index", "cluster", "build_queue"]
DEFAULT_K = 10


def version_activate(*, version: ModelVersion, dataset: Dataset, user=None) -> Job:
    """Start the chain extract_features -> build_index -> (activate on ``dataset``) -> cluster -> build_queue.

    Raises:
        ModelVersionError: when the version is not ready, or its weights file is missing or unreadable (checked
            now, so nothing is half activated).
        JobConflict: when the same extraction is already queued or running.
    """
    from labeling.services.learning.jobs import extraction_start
    from mlcore.features.backbone import WeightsError, build_backbone

    if version.status != ModelVersion.Status.READY:
        raise ModelVersionError(f"model version {version.name!r} is {version.status}; only a ready version can be "
                                "activated")
    if version.is_imported:
        return _imported_activate(version, dataset, user)
    try:
        build_backbone(version.backbone, version.weights_argument, seed=version.seed)
    except (WeightsError, OSError) as exc:
        raise ModelVersionError(f"model version {version.name!r} cannot be activated: {exc}") from None
    return extraction_start(dataset=dataset, model_version=version, user=user,
                            rotation_invariant=version.rotation_invariant_features,
                            chain={"activate": version.pk, "next": list(CHAIN)})


def _imported_activate(version: ModelVersion, dataset: Dataset, user) -> Job:
    """An outside model's features cannot be extracted here: its imported vectors are indexed, then the chain goes on
    as after an extraction (activate, cluster, queues)."""
    from labeling.services.learning.jobs import index_start

    feature_set = FeatureSet.objects.filter(model_version=version, dataset=dataset, count__gt=0).first()
    if feature_set is None:
        raise ModelVersionError(f"{version.name!r} has only imported features, and none of dataset {dataset.name!r}: "
                                f"import them first (import_features --dataset {dataset.name!r} --name "
                                f"{version.name!r} FILE)")
    return index_start(feature_set=feature_set, user=user, chain={"activate": version.pk, "next": CHAIN[1:]})


def dataset_rollback(*, dataset: Dataset, user=None) -> Job:
    """Activate the dataset's previous version again (selectors.training.rollback_target), through the same chain;
    other datasets are left as they are.

    Raises:
        ModelVersionError: when the dataset has no earlier version to return to, or its weights are unusable.
        JobConflict: when the same extraction is already queued or running.
    """
    dataset.refresh_from_db(fields=["active_version"])
    previous = rollback_target(dataset=dataset)
    if previous is None:
        raise ModelVersionError(f"dataset {dataset.name!r} has no earlier active version to roll back to")
    return version_activate(version=previous, dataset=dataset, user=user)


def chain_continue(*, job: Job, feature_set: FeatureSet) -> list[Job]:
    """After a chained job succeeded: activate the version on the chain's dataset (the feature set's) once its index
    exists, then start the next step."""
    from labeling.services.learning.jobs import clustering_start, index_start

    chain = job.arguments.get("chain")
    if not chain:
        return []
    activate = chain.get("activate")
    if job.kind == Job.Kind.BUILD_INDEX and activate:
        model_version_activate(version=ModelVersion.objects.get(pk=activate), dataset=feature_set.dataset,
                               user=job.created_by)
        activate = None
    steps = list(chain.get("next") or [])
    if not steps:
        return []
    step, rest = steps[0], {"activate": activate, "next": steps[1:]}
    try:
        if step == "build_index":
            return [index_start(feature_set=feature_set, user=job.created_by, chain=rest)]
        if step == "cluster":
            previous = Clustering.objects.filter(feature_set__dataset=feature_set.dataset).order_by(
                "-created_at").first()
            k = min(previous.k if previous else DEFAULT_K, max(2, feature_set.count))
            return [clustering_start(feature_set=feature_set, method=previous.method if previous else "kmeans", k=k,
                                     user=job.created_by, chain=rest)]
        if step == "build_queue":
            return _rebuild_queues(feature_set.dataset, job.created_by)
    except (JobConflict, ValueError):  # the same job already queued, or too few galaxies to cluster
        return []
    raise ValueError(f"unknown step {step!r} in the job chain of job #{job.pk}")


def _rebuild_queues(dataset: Dataset, user) -> list[Job]:
    from labeling.models import LabelSchema, QueueEntry
    from labeling.selectors.labels import label_sets
    from labeling.services.labelling.queue import queue_build_start

    schemas = {label_set.schema for label_set in label_sets(dataset=dataset)}
    schemas |= set(LabelSchema.objects.filter(pk__in=QueueEntry.objects.filter(dataset=dataset).values("schema")))
    jobs = []
    for schema in sorted(schemas, key=lambda s: s.name):
        try:
            jobs.append(queue_build_start(dataset=dataset, schema=schema, user=user))
        except JobConflict:
            continue
    return jobs
