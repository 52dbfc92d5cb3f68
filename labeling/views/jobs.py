"""The Jobs page: import catalogues from the server's import folder, start feature extraction, indexes,
clusterings, maps, probability-model refits and queue rebuilds; watch their progress; cancel or re-run.

Experts and admins may watch; starting, cancelling and re-running are for staff (admins)."""

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from labeling import selectors
from labeling.forms import (
    BuildIndexForm,
    BuildQueueForm,
    ClusterForm,
    ExtractFeaturesForm,
    FitClassifierForm,
    MapForm,
)
from labeling.import_forms import SOURCES_LIST_ID, ImportGalaxiesForm, ImportVotesForm
from labeling.models import Job
from labeling.services.imports.jobs import IMPORT_FORMATS, import_job_start, import_sources
from labeling.services.jobs.lifecycle import job_cancel, job_rerun, jobs_mark_abandoned
from labeling.services.labelling.queue import queue_build_start
from labeling.services.learning.classifier import classifier_fit_start
from labeling.services.learning.jobs import clustering_start, embedding_start, extraction_start, index_start
from labeling.services.learning.model_versions import ModelVersionError, model_version_get_or_create
from labeling.views.access import expert_required, staff_required

FORMS = {
    Job.Kind.IMPORT_GALAXIES: ImportGalaxiesForm,
    Job.Kind.IMPORT_VOTES: ImportVotesForm,
    Job.Kind.EXTRACT_FEATURES: ExtractFeaturesForm,
    Job.Kind.BUILD_INDEX: BuildIndexForm,
    Job.Kind.CLUSTER: ClusterForm,
    Job.Kind.EMBED_2D: MapForm,
    Job.Kind.FIT_CLASSIFIER: FitClassifierForm,
    Job.Kind.BUILD_QUEUE: BuildQueueForm,
}
TITLES = {
    Job.Kind.IMPORT_GALAXIES: "Import galaxies",
    Job.Kind.IMPORT_VOTES: "Import volunteer votes",
    Job.Kind.EXTRACT_FEATURES: "Extract features",
    Job.Kind.BUILD_INDEX: "Build a neighbour index",
    Job.Kind.CLUSTER: "Cluster",
    Job.Kind.EMBED_2D: "Make a 2-D map",
    Job.Kind.FIT_CLASSIFIER: "Refit the probability model",
    Job.Kind.BUILD_QUEUE: "Rebuild the labelling queues",
}
JOBS_SHOWN = 50


def _start(kind: str, data: dict, user) -> Job:
    if kind in IMPORT_FORMATS:
        return import_job_start(kind=kind, path=data["path"], fmt=data["format"], dataset_name=data["dataset"],
                                labels=data.get("labels", ""), schema=data.get("schema", ""),
                                skip_bad=data["skip_bad"], panoptes=data.get("panoptes"), user=user)
    if kind == Job.Kind.EXTRACT_FEATURES:
        version = data["model_version"] or model_version_get_or_create(
            backbone=data["backbone"], weights=data["weights"], image_size=data["image_size"], seed=data["seed"],
            user=user)
        return extraction_start(dataset=data["dataset"], model_version=version,
                                rotation_invariant=data["rotation_invariant"], user=user)
    if kind == Job.Kind.BUILD_INDEX:
        return index_start(feature_set=data["feature_set"], kind=data["kind"], user=user)
    if kind == Job.Kind.CLUSTER:
        return clustering_start(feature_set=data["feature_set"], method=data["method"], k=data["k"],
                                pca_components=data["pca_components"], user=user)
    if kind == Job.Kind.FIT_CLASSIFIER:
        return classifier_fit_start(dataset=data["dataset"], schema=data["schema"], user=user,
                                    rebuild_queues=data["rebuild_queues"])
    if kind == Job.Kind.BUILD_QUEUE:
        return queue_build_start(dataset=data["dataset"], schema=data["schema"], strategy=data["strategy"] or None,
                                 user=user)
    return embedding_start(feature_set=data["feature_set"], method=data["method"], schema=data["schema"], user=user)


def job_link(job: Job) -> str | None:
    """Where a finished job's result can be seen."""
    result = job.result or {}
    if "clustering" in result:
        return reverse("clustering-detail", args=[result["clustering"]])
    if "embedding" in result:
        return reverse("map-detail", args=[result["embedding"]])
    if "dataset_slug" in result:  # an import: its galaxies
        return f"{reverse('galaxy-list')}?{urlencode({'dataset': result['dataset_slug']})}"
    return None


@expert_required
def job_list(request, forms=None):
    jobs_mark_abandoned()
    jobs = list(Job.objects.select_related("dataset", "created_by")[:JOBS_SHOWN])
    for job in jobs:
        job.link = job_link(job)
    forms = forms or {kind: form() for kind, form in FORMS.items()}
    return render(request, "labeling/job_list.html", {
        "jobs": jobs, "forms": [(kind, TITLES[kind], form) for kind, form in forms.items()],
        "feature_sets": selectors.feature_sets_overview(),
        "active": any(not job.is_finished for job in jobs),
        "import_sources": import_sources() if request.user.is_staff else [], "import_sources_id": SOURCES_LIST_ID,
    })


@require_POST
@staff_required
def job_start(request, kind: str):
    if kind not in FORMS:
        return redirect("job-list")
    form = FORMS[kind](request.POST)
    if not form.is_valid():
        forms = {other: FORMS[other]() for other in FORMS}
        forms[kind] = form
        messages.error(request, f"Could not start {Job.Kind(kind).label}: see the form below.")
        return job_list(request, forms=forms)
    try:
        job = _start(kind, form.cleaned_data, request.user)
    except (ModelVersionError, ValueError) as exc:
        messages.error(request, f"Could not start {Job.Kind(kind).label}: {exc}")
    else:
        messages.success(request, f"Started job #{job.pk}: {job.get_kind_display()}.")
    return redirect("job-list")


@require_POST
@staff_required
def job_cancel_view(request, job_id: int):
    job = job_cancel(job=get_object_or_404(Job, pk=job_id))
    messages.info(request, f"Job #{job.pk}: " + ("cancelled." if job.status == Job.Status.CANCELLED else
                                                 "asked to stop; it will at its next checkpoint."))
    return redirect("job-list")


@require_POST
@staff_required
def job_rerun_view(request, job_id: int):
    try:
        job = job_rerun(job=get_object_or_404(Job, pk=job_id), user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Started job #{job_id} again as job #{job.pk}.")
    return redirect("job-list")


@expert_required
def job_status(request):
    """Live progress for the Jobs page: the listed jobs' status, progress and message."""
    jobs_mark_abandoned()
    ids = [int(part) for part in request.GET.get("ids", "").split(",") if part.strip().isdigit()][:JOBS_SHOWN]
    rows = []
    for job in Job.objects.filter(pk__in=ids):
        rows.append({"id": job.pk, "status": job.status, "status_display": job.get_status_display(),
                     "progress": round(job.progress, 1), "message": job.message, "finished": job.is_finished,
                     "link": job_link(job)})
    return JsonResponse({"jobs": rows})
