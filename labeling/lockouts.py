"""Sign-in lockouts, kept by django-axes (settings AXES_*): the address failures count against, until when a locked
user or address must wait, and what the login page and the API say meanwhile.

axes counts failed sign-ins per user name and per client address (the login form, the admin's and the API's token
endpoint all authenticate through django.contrib.auth with the request); once either reaches the limit, every
sign-in for that user or from that address is refused, the right password included, until the cool-off has passed
since the last failure, or an admin deletes the lock in the admin (Axes > Access attempts).
"""

import ipaddress
import math
from datetime import datetime

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from labeling.ratelimit import client_address


def lockout_address(request: HttpRequest) -> str | None:
    """The address axes counts failures against (AXES_CLIENT_IP_CALLABLE): the rate limits' client address, by the
    same trusted-proxy rule (labeling.ratelimit.client_address), never a header the client wrote itself.

    axes stores it in an IP address column: an IPv6 client's /64 becomes the block's first address, and a request
    without an address (a test client's bare HttpRequest) None.
    """
    address = client_address(request).split("/")[0]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


# A user name longer than any user's is cut to this before axes stores it (its column holds 255 characters, and
# PostgreSQL refuses a longer value where SQLite keeps it): the login forms pass any length on to authenticate().
USERNAME_KEPT = 150


def lockout_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The user name axes counts failures against (AXES_USERNAME_CALLABLE): as axes reads it (the credentials, else
    the posted form), at most USERNAME_KEPT characters; no user name is longer, so no real one is merged."""
    if credentials:
        name = credentials.get("username")
    else:
        name = getattr(request, "data", request.POST).get("username")
    return None if name is None else str(name)[:USERNAME_KEPT]


def locked_until(request: HttpRequest, credentials: dict | None = None) -> datetime | None:
    """When the lock on this request's user name or address ends (the later of the two if both are locked), or
    None when neither is locked."""
    cool_off = get_cool_off(request)
    if cool_off is None:
        return None
    limit = get_failure_limit(request, credentials)
    last_failure = None
    for attempts in AxesProxyHandler.get_implementation().get_user_attempts(request, credentials):
        seen = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        if (seen["failures"] or 0) >= limit and (last_failure is None or seen["last"] > last_failure):
            last_failure = seen["last"]
    return last_failure + cool_off if last_failure else None


def seconds_until(moment: datetime | None) -> int:
    """Whole seconds from now until ``moment`` (at least 1), for a Retry-After header."""
    if moment is None:
        return 1
    return max(1, math.ceil((moment - timezone.now()).total_seconds()))


def lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                     credentials: dict | None = None) -> HttpResponse:
    """axes' AXES_LOCKOUT_CALLABLE: the answer to a sign-in refused because of a lock, 429 Too Many Requests.

    The login page (and the admin's) is shown again with a fresh form and when to try again; an API path gets
    JSON. (The API's token view answers for itself, see labeling/api/auth.py: axes cannot mark DRF's request.)
    """
    until = locked_until(request, credentials)
    wait = seconds_until(until)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": lockout_message(until)}, status=429)
    else:
        response = render(request, "registration/login.html", {
            "form": AuthenticationForm(request), "locked_out": True, "locked_until": until,
            "next": request.POST.get("next", request.GET.get("next", "")),
        }, status=429)
    response["Retry-After"] = str(wait)
    return response


def lockout_message(until: datetime | None) -> str:
    """The API's sentence for a locked caller, naming the time (UTC) the lock ends."""
    when = f"after {until:%H:%M} UTC" if until else "later"
    return (f"Too many failed sign-ins for this user or from this address: signing in is paused. Try again {when}, "
            "or ask an administrator to lift the lock.")
