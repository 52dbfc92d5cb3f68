"""The expert's labelling pages: choosing a dataset and schema, and the keyboard-driven labelling page."""

from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from labeling.models import Dataset, LabelSchema
from labeling.selectors.queue import labelled_today, labelling_choices
from labeling.views.access import expert_required

SHORTCUTS = "1234567890"


@expert_required
def label_home(request):
    return render(request, "labeling/label_home.html", {
        "choices": labelling_choices(expert=request.user), "labelled_today": labelled_today(expert=request.user),
    })


@expert_required
def label_page(request, dataset: str, schema: str):
    dataset = get_object_or_404(Dataset, slug=dataset)
    schema = get_object_or_404(LabelSchema.objects.prefetch_related("classes"), name=schema)
    classes = [{"key": c.key, "name": c.name, "shortcut": SHORTCUTS[i] if i < len(SHORTCUTS) else ""}
               for i, c in enumerate(schema.classes.all())]
    config = {
        "dataset": {"id": dataset.pk, "name": dataset.name, "slug": dataset.slug},
        "schema": {"name": schema.name, "title": schema.title or schema.name, "classes": classes},
        "urls": {"next": reverse("api-queue-next"), "labels": reverse("api-labels"),
                 "undo": reverse("api-labels-undo"), "skip": reverse("api-queue-skip", args=[0]).replace(
                     "/0/", "/ENTRY/"), "bulk": reverse("api-labels-bulk")},
        "user": request.user.get_username(),
    }
    return render(request, "labeling/label.html", {"dataset": dataset, "schema": schema, "classes": classes,
                                                   "config": config})
