"""Who may do what on the pages: sign-in first, then 403 (not a login loop) for a signed-in user without the right."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from labeling.services.labelling.labels import user_is_expert


def staff_required(view):
    """Staff (admins) only: anonymous visitors are sent to sign in, other users get 403 Forbidden."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("only admins may do this")
        return view(request, *args, **kwargs)

    return guarded


def expert_required(view):
    """Experts (group 'experts') and admins only: anonymous visitors are sent to sign in, others get 403."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not user_is_expert(request.user):
            raise PermissionDenied("only experts and admins may open this page")
        return view(request, *args, **kwargs)

    return guarded


def home(request):
    """Where "/" and signing in lead: for experts and admins, where each role starts (the labelling queue with the
    most work, a retrain cycle, the classify pages); everyone else goes straight to the classify pages (volunteers
    may not browse the labelled catalogue, so a page of links they cannot open would only lead to 403s)."""
    if not user_is_expert(request.user):
        return redirect("classify-home")
    from labeling.selectors.queue import labelling_start

    return render(request, "labeling/home.html", {"start": labelling_start(expert=request.user)})
