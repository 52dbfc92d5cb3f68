"""Browser pages: the dataset list, the galaxy grid, a galaxy's page and the decision trees. Each parses its
input, calls one selector and renders; the reads live in labeling/selectors.py.

The galaxy pages show expert labels, consensus and neighbours: experts and admins only, as in the API. Everyone
signed in reads the decision trees they classify with."""

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from labeling import selectors
from labeling.models import Clustering, Dataset, DecisionTree, Galaxy, LabelSchema
from labeling.selectors.predictions import galaxy_predictions
from labeling.views.access import expert_required

NEIGHBOURS_SHOWN = 8


class GalaxyFilterForm(forms.Form):
    """The grid's filters, read from the query string. Class choices are those of the chosen schema."""

    LABELLED_CHOICES = [
        ("", "any"),
        (selectors.LABELLED_EXPERT, "has an expert label"),
        (selectors.LABELLED_CONSENSUS, "has a consensus label"),
        (selectors.LABELLED_NONE, "has no label"),
    ]

    # Any (the default) lists every galaxy, those with an image first; the other two narrow it down.
    IMAGES_CHOICES = [
        ("", "any, pictures first"),
        (selectors.IMAGES_WITH, "with an image"),
        (selectors.IMAGES_WITHOUT, "without (votes only)"),
    ]

    dataset = forms.ModelChoiceField(Dataset.objects.order_by("name"), to_field_name="slug", required=False,
                                     empty_label="all datasets")
    schema = forms.ModelChoiceField(LabelSchema.objects.order_by("name"), to_field_name="name", required=False,
                                    empty_label="all schemas")
    # "class" in the query string; a Python attribute cannot be called that, so add_prefix maps the name.
    expert_class = forms.ChoiceField(label="Expert class", required=False)
    consensus = forms.ChoiceField(label="Consensus class", required=False)
    labelled = forms.ChoiceField(choices=LABELLED_CHOICES, required=False)
    images = forms.ChoiceField(choices=IMAGES_CHOICES, required=False)
    q = forms.CharField(label="External id", required=False, max_length=100)
    # Set by the cluster gallery's "all galaxies of this cluster" links, shown as a removable chip.
    clustering = forms.ModelChoiceField(Clustering.objects.all(), required=False, widget=forms.HiddenInput)
    cluster = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, data, **kwargs):
        super().__init__(data, **kwargs)
        schema_name = data.get("schema")
        schema = (LabelSchema.objects.filter(name=schema_name).prefetch_related("classes").first()
                  if schema_name else None)
        classes = [(c.key, c.name) for c in schema.classes.all()] if schema else []
        for name in ("expert_class", "consensus"):
            field = self.fields[name]
            field.choices = [("", "any" if schema else "pick a schema first"), *classes]
            if not schema:
                field.widget.attrs["disabled"] = True
                field.error_messages["invalid_choice"] = "Choose a schema first: class keys are only unique " \
                                                         "within one schema."

    def clean(self):
        cleaned = super().clean()
        if (cleaned.get("clustering") is None) != (cleaned.get("cluster") is None):
            raise forms.ValidationError("A cluster filter needs both the clustering and the cluster number.")
        return cleaned

    def add_prefix(self, field_name):
        return "class" if field_name == "expert_class" else super().add_prefix(field_name)


@expert_required
def dataset_list(request):
    return render(request, "labeling/dataset_list.html", {"datasets": selectors.dataset_list()})


@expert_required
def galaxy_list(request):
    form = GalaxyFilterForm(request.GET)
    if form.is_valid():
        filters = form.cleaned_data
        galaxies = selectors.galaxy_list(
            dataset=filters["dataset"],
            schema=filters["schema"],
            expert_class=filters["expert_class"] or None,
            consensus_class=filters["consensus"] or None,
            labelled=filters["labelled"] or None,
            search=filters["q"].strip(),
            clustering=filters["clustering"],
            cluster=filters["cluster"],
            images=filters["images"] or None,
        )
    else:
        # A filter we could not apply shows nothing rather than everything, next to the form's error.
        galaxies = Galaxy.objects.none()
    page = Paginator(galaxies, settings.GALAXY_PAGE_SIZE).get_page(request.GET.get("page"))
    for galaxy in page.object_list:
        galaxy.expert_badges = selectors.distinct_badges(galaxy.current_expert_labels)
    page_range = page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)
    return render(request, "labeling/galaxy_list.html", {"form": form, "page": page, "page_range": page_range})


@expert_required
def galaxy_detail(request, galaxy_id: int):
    try:
        detail = selectors.galaxy_detail(galaxy_id=galaxy_id)
    except Galaxy.DoesNotExist:
        raise Http404(f"no galaxy with id {galaxy_id}") from None
    feature_set = selectors.feature_set_for(dataset=detail.galaxy.dataset)
    neighbours = selectors.galaxy_neighbours(galaxy=detail.galaxy, feature_set=feature_set, k=NEIGHBOURS_SHOWN) \
        if feature_set else []
    return render(request, "labeling/galaxy_detail.html", {
        "detail": detail, "galaxy": detail.galaxy, "feature_set": feature_set, "neighbours": neighbours,
        "predictions": galaxy_predictions(galaxy=detail.galaxy),
    })


@login_required
def tree_list(request):
    return render(request, "labeling/tree_list.html", {"trees": selectors.tree_list()})


@login_required
def tree_detail(request, name: str):
    try:
        tree, questions = selectors.tree_detail(name=name)
    except DecisionTree.DoesNotExist:
        raise Http404(f"no decision tree called {name!r}") from None
    return render(request, "labeling/tree_detail.html", {"tree": tree, "questions": questions})
