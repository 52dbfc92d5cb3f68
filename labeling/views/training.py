"""The Training page (model versions, retrain cycles, self-supervised pretraining, activation and rollback, both per
dataset) and each dataset's learning curve across its cycles.

Experts and admins may look; starting training and activating a version are for staff (admins)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from labeling.forms import PretrainForm, RetrainForm
from labeling.models import Dataset, ModelVersion
from labeling.selectors.training import (
    curve_datasets,
    dataset_activations,
    learning_curve,
    training_jobs_in_progress,
    training_versions,
)
from labeling.services.learning.activation import dataset_rollback, version_activate
from labeling.services.learning.retrain import retrain_start
from labeling.views.access import expert_required, staff_required

ACTIVATION_STEPS = "extract → index → activate → cluster → queues"
PRETRAIN = "pretrain"  # the pretraining form's prefix: both forms on the page have a dataset, a seed ...


def _pretrain_service():
    """``pretrain_start`` when this installation has self-supervised pretraining, else None."""
    try:
        from labeling.services.learning.pretrain import pretrain_start
    except ModuleNotFoundError as exc:
        if exc.name != "labeling.services.learning.pretrain":
            raise  # the module exists but something it needs is missing: say so, do not hide the form silently
        return None
    return pretrain_start


@expert_required
def training_page(request, retrain_form=None, pretrain_form=None):
    has_pretrain = _pretrain_service() is not None
    retrain_form = retrain_form or RetrainForm()
    versions = training_versions()
    return render(request, "labeling/training.html", {
        "versions": versions, "curve_datasets": curve_datasets(versions), "jobs": training_jobs_in_progress(),
        "activations": dataset_activations(),
        "retrain_form": retrain_form,
        "pretrain_form": (pretrain_form or PretrainForm(prefix=PRETRAIN)) if has_pretrain else None,
        # The datasets an untrained version may be activated on (the choices of the retrain form's dataset).
        "datasets": list(retrain_form.fields["dataset"].queryset) if request.user.is_staff else [],
        "activation_steps": ACTIVATION_STEPS,
    })


@require_POST
@staff_required
def training_start(request):
    form = RetrainForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Could not start a retrain cycle: see the form below.")
        return training_page(request, retrain_form=form)
    data = form.cleaned_data
    try:
        job = retrain_start(dataset=data["dataset"], schema=data["schema"], backbone=data["backbone"],
                            base=data["base"], image_size=data["image_size"], epochs=data["epochs"], lr=data["lr"],
                            pseudo_threshold=data["pseudo_threshold"], soft_vote_weight=data["soft_vote_weight"],
                            seed=data["seed"], rotation_invariant=data["rotation_invariant"], user=request.user)
    except ValueError as exc:  # JobConflict, TrainingDataError and settings out of range are all ValueErrors
        form.add_error(None, str(exc))
        messages.error(request, f"Could not start a retrain cycle: {exc}")
        return training_page(request, retrain_form=form)
    messages.success(request, f"Started retrain cycle job #{job.pk}.")
    return redirect("training")


@require_POST
@staff_required
def training_pretrain(request):
    pretrain_start = _pretrain_service()
    if pretrain_start is None:
        messages.error(request, "Self-supervised pretraining is not available in this installation.")
        return redirect("training")
    form = PretrainForm(request.POST, prefix=PRETRAIN)
    if not form.is_valid():
        messages.error(request, "Could not start pretraining: see the form below.")
        return training_page(request, pretrain_form=form)
    data = form.cleaned_data
    try:
        job = pretrain_start(dataset=data["dataset"], backbone=data["backbone"], image_size=data["image_size"],
                             epochs=data["epochs"], seed=data["seed"], user=request.user)
    except ValueError as exc:
        form.add_error(None, str(exc))
        messages.error(request, f"Could not start pretraining: {exc}")
        return training_page(request, pretrain_form=form)
    messages.success(request, f"Started self-supervised pretraining job #{job.pk}.")
    return redirect("training")


@require_POST
@staff_required
def training_activate(request, version_id: int):
    """Activate a ready version (or go back to an older one) on the dataset given as ``dataset`` (a slug, in the
    query string or the form), and on that dataset only; the version's own training dataset when none is given."""
    version = get_object_or_404(ModelVersion.objects.select_related("trained_on"), pk=version_id)
    slug = request.POST.get("dataset") or request.GET.get("dataset")
    dataset = Dataset.objects.filter(slug=slug).first() if slug else version.trained_on
    if dataset is None:
        messages.error(request, f"Could not activate {version.name}: choose the dataset to extract its features on.")
        return redirect("training")
    try:
        job = version_activate(version=version, dataset=dataset, user=request.user)
    except ValueError as exc:  # ModelVersionError, JobConflict
        messages.error(request, f"Could not activate {version.name}: {exc}")
    else:
        messages.success(request, f"Activation started: {ACTIVATION_STEPS} (job #{job.pk}).")
    return redirect("training")


@require_POST
@staff_required
def training_rollback(request, dataset: str):
    """Activate the dataset's previous version again; no other dataset changes."""
    dataset = get_object_or_404(Dataset, slug=dataset)
    try:
        job = dataset_rollback(dataset=dataset, user=request.user)
    except ValueError as exc:  # ModelVersionError (nothing to return to, unusable weights), JobConflict
        messages.error(request, f"Could not roll back {dataset.name}: {exc}")
    else:
        messages.success(request, f"Rollback of {dataset.name} started: {ACTIVATION_STEPS} (job #{job.pk}).")
    return redirect("training")


@expert_required
def training_curve(request, dataset: str):
    curve = learning_curve(dataset=get_object_or_404(Dataset, slug=dataset))
    return render(request, "labeling/training_curve.html", {
        "dataset": curve.dataset, "cycles": curve.cycles, "chart": curve.chart,
        "latest": curve.cycles[-1] if curve.cycles else None,
    })
