"""The cluster gallery and the 2-D map pages: experts and admins only, as in the API."""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_control

from labeling import selectors
from labeling.models import Dataset, Embedding, LabelSchema
from labeling.services.labelling.labels import user_is_expert
from labeling.views.access import expert_required


def bulk_label_context(request) -> dict:
    """What the bulk-labelling toolbar needs (templates/labeling/_bulk_toolbar.html): whether this user may label,
    and then every schema with its classes (two queries, however many galaxies the page shows)."""
    if not user_is_expert(request.user):
        return {"can_label": False, "label_schemas": []}
    return {"can_label": True, "label_schemas": list(LabelSchema.objects.prefetch_related("classes"))}


def _dataset(request) -> Dataset | None:
    slug = request.GET.get("dataset")
    return get_object_or_404(Dataset, slug=slug) if slug else None


@expert_required
def clustering_list(request):
    dataset = _dataset(request)
    return render(request, "labeling/clustering_list.html", {
        "clusterings": selectors.clustering_list(dataset=dataset), "dataset": dataset,
        "datasets": Dataset.objects.filter(feature_sets__clusterings__isnull=False).distinct().order_by("name"),
    })


@expert_required
def clustering_detail(request, clustering_id: int):
    clustering = get_object_or_404(selectors.clustering_list(), pk=clustering_id)
    return render(request, "labeling/clustering_detail.html", {
        "clustering": clustering, "cards": selectors.clustering_gallery(clustering=clustering),
        "metrics": sorted(clustering.metrics.values(), key=lambda m: -m["ari"]),
        **bulk_label_context(request),
    })


@expert_required
def map_list(request):
    dataset = _dataset(request)
    return render(request, "labeling/map_list.html", {"maps": selectors.embedding_list(dataset=dataset),
                                                      "dataset": dataset})


@expert_required
def map_detail(request, map_id: int):
    embedding = get_object_or_404(selectors.embedding_list(), pk=map_id)
    return render(request, "labeling/map_detail.html", {"map": embedding})


@expert_required
@cache_control(private=True, max_age=300)
def map_points(request, map_id: int):
    embedding = get_object_or_404(Embedding, pk=map_id)
    return JsonResponse(selectors.embedding_points(embedding=embedding))

