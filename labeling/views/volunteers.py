"""The admin's page of volunteers (who classifies suspiciously fast, who disagrees with everyone) and excluding a
volunteer from the counts, or including them again. Admins only."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from labeling.models import Dataset, DecisionTree
from labeling.selectors.volunteers import DEFAULT_SORT, SORTS, volunteer_report
from labeling.services.votes.exclusions import volunteer_exclude, volunteer_include
from labeling.views.access import staff_required

PAGE_SIZE = 50


def _min_classifications(raw: str | None) -> int:
    try:
        return max(1, int(raw or 1))
    except ValueError:
        return 1


@require_GET
@staff_required
def volunteer_list(request):
    slug, tree_name = request.GET.get("dataset"), request.GET.get("tree")
    dataset = get_object_or_404(Dataset, slug=slug) if slug else None
    tree = get_object_or_404(DecisionTree, name=tree_name) if tree_name else None
    sort = request.GET.get("sort", DEFAULT_SORT)
    if sort.lstrip("-") not in SORTS:
        sort = DEFAULT_SORT
    minimum = _min_classifications(request.GET.get("min"))
    report = volunteer_report(dataset=dataset, tree=tree, sort=sort, min_classifications=minimum)
    page = Paginator(report.rows, PAGE_SIZE).get_page(request.GET.get("page"))
    columns = [(key, heading, _toggle(sort, key)) for key, (heading, _) in SORTS.items()]
    return render(request, "labeling/volunteers.html", {
        "dataset": dataset, "tree": tree, "sort": sort, "min": minimum, "columns": columns,
        "datasets": Dataset.objects.order_by("name"), "trees": DecisionTree.objects.order_by("name"),
        "page": page, "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "excluded": report.excluded, "ended": report.ended,
    })


def _toggle(current: str, key: str) -> str:
    """The sort a column heading links to: its key, or the other direction when it is the current sort."""
    return f"-{key}" if current == key else key


def _back(request):
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return redirect(back if back and safe else "volunteer-list")


def _recounted(result: dict) -> str:
    return (f"{result['galaxies']} galax{'y' if result['galaxies'] == 1 else 'ies'} recounted, "
            f"{result['subjects']} subject(s) changed, {result['weighted']} weighting(s) and "
            f"{result['consensus']} consensus rule(s) computed again")


@require_POST
@staff_required
def volunteer_exclude_view(request):
    volunteer = request.POST.get("volunteer", "")
    try:
        _, result = volunteer_exclude(volunteer=volunteer, reason=request.POST.get("reason", ""), admin=request.user)
    except ValidationError as error:
        messages.error(request, f"Could not exclude {volunteer}: {' '.join(error.messages)}")
    else:
        messages.success(request, f"Excluded {volunteer}: {_recounted(result)}.")
    return _back(request)


@require_POST
@staff_required
def volunteer_include_view(request):
    volunteer = request.POST.get("volunteer", "")
    try:
        _, result = volunteer_include(volunteer=volunteer, admin=request.user, note=request.POST.get("note", ""))
    except ValidationError as error:
        messages.error(request, f"Could not include {volunteer}: {' '.join(error.messages)}")
    else:
        messages.success(request, f"Included {volunteer} again: {_recounted(result)}.")
    return _back(request)
