"""Admin actions that start background jobs with sensible defaults; the Jobs page offers every option."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from labeling.models import FeatureSet
from labeling.services.jobs.lifecycle import job_cancel, job_rerun
from labeling.services.learning.activation import dataset_rollback, version_activate
from labeling.services.learning.jobs import clustering_start, embedding_start, extraction_start, index_start
from labeling.services.learning.model_versions import model_version_get_or_create


def _started(modeladmin, request, jobs: list, problems: list[str]) -> None:
    if jobs:
        modeladmin.message_user(request, format_html(
            'Started {} job(s): {}. Follow them on the <a href="{}">Jobs page</a>.', len(jobs),
            ", ".join(f"#{job.pk}" for job in jobs), reverse("job-list")), messages.SUCCESS)
    for problem in problems:
        modeladmin.message_user(request, problem, messages.ERROR)


def _latest_feature_set(dataset) -> FeatureSet | None:
    return FeatureSet.objects.filter(dataset=dataset, count__gt=0).order_by("-updated_at").first()


def _for_each_dataset(modeladmin, request, queryset, start) -> None:
    jobs, problems = [], []
    for dataset in queryset:
        try:
            jobs.append(start(dataset))
        except ValueError as exc:
            problems.append(f"{dataset.name}: {exc}")
    _started(modeladmin, request, jobs, problems)


def _needs_features(start):
    def with_features(dataset):
        feature_set = _latest_feature_set(dataset)
        if feature_set is None:
            raise ValueError("no features yet: extract features first")
        return start(feature_set)
    return with_features


@admin.action(description="Extract features (the galaxy backbone, ResNet-18 at 64 px)")
def extract_features_default(modeladmin, request, queryset):
    version = model_version_get_or_create(backbone="resnet18", weights="galaxy", user=request.user)
    _for_each_dataset(modeladmin, request, queryset, lambda dataset: extraction_start(
        dataset=dataset, model_version=version, user=request.user))


@admin.action(description="Build the neighbour index of the latest features")
def build_index_latest(modeladmin, request, queryset):
    _for_each_dataset(modeladmin, request, queryset, _needs_features(
        lambda feature_set: index_start(feature_set=feature_set, user=request.user)))


@admin.action(description="Cluster the latest features (k-means, k=10)")
def cluster_latest_kmeans(modeladmin, request, queryset):
    _for_each_dataset(modeladmin, request, queryset, _needs_features(
        lambda feature_set: clustering_start(feature_set=feature_set, method="kmeans",
                                             k=min(10, feature_set.count), user=request.user)))


@admin.action(description="Map the latest features in 2-D (UMAP)")
def map_latest_umap(modeladmin, request, queryset):
    _for_each_dataset(modeladmin, request, queryset, _needs_features(
        lambda feature_set: embedding_start(feature_set=feature_set, method="umap", user=request.user)))


@admin.action(description="Cancel the selected jobs")
def job_cancel_selected(modeladmin, request, queryset):
    for job in queryset:
        job_cancel(job=job)
    modeladmin.message_user(request, f"Asked {queryset.count()} job(s) to stop.", messages.INFO)


@admin.action(description="Run the selected jobs again")
def job_rerun_selected(modeladmin, request, queryset):
    jobs, problems = [], []
    for job in queryset:
        try:
            jobs.append(job_rerun(job=job, user=request.user))
        except ValueError as exc:
            problems.append(str(exc))
    _started(modeladmin, request, jobs, problems)


def _labelling_schemas(dataset):
    """The schemas whose labels (expert or consensus) the dataset has, or which have a queue in it."""
    from labeling.models import LabelSchema, QueueEntry
    from labeling.selectors.labels import label_sets

    ids = {label_set.schema.pk for label_set in label_sets(dataset=dataset)}
    ids |= set(QueueEntry.objects.filter(dataset=dataset).values_list("schema", flat=True).distinct())
    return list(LabelSchema.objects.filter(pk__in=ids).order_by("name"))


def _per_schema(modeladmin, request, queryset, start) -> None:
    from labeling.services.jobs.lifecycle import JobConflict

    jobs, problems = [], []
    for dataset in queryset:
        schemas = _labelling_schemas(dataset)
        if not schemas:
            problems.append(f"{dataset.name}: no label schema has labels here yet")
        for schema in schemas:
            try:
                jobs.append(start(dataset, schema))
            except (ValueError, JobConflict) as exc:
                problems.append(f"{dataset.name} ({schema.name}): {exc}")
    _started(modeladmin, request, jobs, problems)


@admin.action(description="Rebuild every expert's labelling queue (the dataset's queue policy)")
def rebuild_queues(modeladmin, request, queryset):
    from labeling.services.labelling.queue import queue_build_start

    _per_schema(modeladmin, request, queryset, lambda dataset, schema: queue_build_start(
        dataset=dataset, schema=schema, user=request.user))


@admin.action(description="Refit the probability model on the current features, then rebuild the queues")
def refit_probability_model(modeladmin, request, queryset):
    from labeling.services.learning.classifier import classifier_fit_start

    _per_schema(modeladmin, request, queryset, lambda dataset, schema: classifier_fit_start(
        dataset=dataset, schema=schema, user=request.user))


@admin.action(description="Activate on the dataset each was trained on (extract, index, cluster, rebuild queues)")
def activate_on_training_dataset(modeladmin, request, queryset):
    """Each selected model version becomes the active one of the dataset it was trained on, and of no other."""
    versions = list(queryset.select_related("trained_on"))
    trained_on = [version.trained_on_id for version in versions if version.trained_on_id]
    if len(set(trained_on)) < len(trained_on):
        _started(modeladmin, request, [], ["Two of the selected versions were trained on the same dataset: one "
                                           "version serves a dataset at a time, so select one of them."])
        return
    jobs, problems = [], []
    for version in versions:
        if version.trained_on is None:
            problems.append(f"{version.name}: no training dataset to activate it on; choose one on the Training "
                            f"page ({reverse('training')}).")
            continue
        try:
            jobs.append(version_activate(version=version, dataset=version.trained_on, user=request.user))
        except ValueError as exc:  # ModelVersionError, JobConflict
            problems.append(f"{version.name}: {exc}")
    _started(modeladmin, request, jobs, problems)


@admin.action(description="Roll back: activate each dataset's previous model version again")
def roll_back_active_version(modeladmin, request, queryset):
    _for_each_dataset(modeladmin, request, queryset, lambda dataset: dataset_rollback(dataset=dataset,
                                                                                     user=request.user))
