"""Browsing by similarity: a galaxy's nearest neighbours under a feature set, and its thumbnail for hover cards."""

from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from labeling import selectors
from labeling.files import media_path
from labeling.models import Galaxy
from labeling.views.access import expert_required
from labeling.views.clusters import bulk_label_context

SIMILAR_DEFAULT, SIMILAR_MAX = 48, 200


def _int(value, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value), low), high)
    except (TypeError, ValueError):
        return default


@expert_required
def galaxy_similar(request, galaxy_id: int):
    galaxy = get_object_or_404(Galaxy.objects.select_related("dataset"), pk=galaxy_id)
    chosen = request.GET.get("features")
    feature_set = selectors.feature_set_for(dataset=galaxy.dataset,
                                            feature_set_id=_int(chosen, 0, 0, 2**62) if chosen else None)
    k = _int(request.GET.get("k"), SIMILAR_DEFAULT, 1, SIMILAR_MAX)
    neighbours = selectors.galaxy_neighbours(galaxy=galaxy, feature_set=feature_set, k=k) if feature_set else []
    return render(request, "labeling/galaxy_similar.html", {
        "galaxy": galaxy, "feature_set": feature_set, "neighbours": neighbours, "k": k,
        "feature_sets": selectors.indexed_feature_sets(dataset=galaxy.dataset), "k_choices": [24, 48, 96, 200],
        **bulk_label_context(request),
    })


@expert_required
def galaxy_thumbnail(request, galaxy_id: int):
    """A redirect to the galaxy's thumbnail, so the map need not ship 100k image URLs to the browser."""
    galaxy = get_object_or_404(Galaxy.objects.only("thumbnail"), pk=galaxy_id)
    if not galaxy.thumbnail:
        raise Http404("this galaxy has no image")
    try:
        # A name edited to leave MEDIA_ROOT ('../../etc/passwd', a symlink out) would send the browser elsewhere.
        media_path(galaxy.thumbnail.name)
    except SuspiciousFileOperation:
        raise Http404("this galaxy's thumbnail is not a media file") from None
    return redirect(galaxy.thumbnail.url)
