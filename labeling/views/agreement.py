"""Agreement between experts and the admin's review of their disagreements."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from labeling.models import Dataset, Galaxy, LabelClass, LabelSchema
from labeling.selectors.agreement import agreement_stats, disagreements, schemas_with_expert_labels
from labeling.services.labelling.actions import label_resolve
from labeling.views.access import expert_required, staff_required


def _scope(request) -> tuple[LabelSchema | None, Dataset | None, list[LabelSchema]]:
    """The schema (asked for, else the first one experts used) and the optional dataset of the request."""
    schemas = schemas_with_expert_labels()
    name = request.GET.get("schema")
    schema = get_object_or_404(LabelSchema, name=name) if name else (schemas[0] if schemas else None)
    slug = request.GET.get("dataset")
    dataset = get_object_or_404(Dataset, slug=slug) if slug else None
    return schema, dataset, schemas


@expert_required
def agreement(request):
    schema, dataset, schemas = _scope(request)
    return render(request, "labeling/agreement.html", {
        "schema": schema, "dataset": dataset, "schemas": schemas,
        "datasets": Dataset.objects.order_by("name"),
        "stats": agreement_stats(schema=schema, dataset=dataset) if schema else None,
    })


@staff_required
def review(request):
    schema, dataset, schemas = _scope(request)
    include_resolved = request.GET.get("resolved") == "1"
    return render(request, "labeling/review.html", {
        "schema": schema, "dataset": dataset, "schemas": schemas, "datasets": Dataset.objects.order_by("name"),
        "include_resolved": include_resolved,
        "classes": list(schema.classes.all()) if schema else [],
        "rows": disagreements(schema=schema, dataset=dataset, include_resolved=include_resolved) if schema else [],
    })


@staff_required
@require_POST
def review_resolve(request, galaxy_id: int):
    galaxy = get_object_or_404(Galaxy, pk=galaxy_id)
    schema = get_object_or_404(LabelSchema, name=request.POST.get("schema", ""))
    label_class = LabelClass.objects.filter(schema=schema, key=request.POST.get("label_class", "")).first()
    if label_class is None:
        messages.error(request, f"Choose one of the classes of {schema} to resolve galaxy {galaxy.external_id}.")
    else:
        try:
            label_resolve(admin=request.user, galaxy=galaxy, schema=schema, label_class=label_class,
                          note=request.POST.get("note", "").strip())
        except (PermissionDenied, ValidationError) as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"Galaxy {galaxy.external_id}: resolved as {label_class.name}.")
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return redirect(back if back and safe else "review")
