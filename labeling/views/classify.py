"""The volunteers' classify pages: choose a dataset, then walk its decision tree galaxy after galaxy. Open to
anonymous visitors (a session is their identity) as well as to signed-in users; every POST carries the CSRF
token, like every other form of the site.

Volunteers see the pixels and nothing else, as on Zooniverse: no external id, file name or catalogue column, which
can name the answer (the demo's "g10_class_8_5" is a Galaxy10 class 8 galaxy) and would bias the votes. A galaxy
travels by its primary key, and its image by a URL made of that key (``classify_image_view``) rather than the
media URL, which holds the original file name.

Answers are taken only for a galaxy offered to the volunteer, once (labeling/services/votes/offers.py), and both
endpoints are rate-limited per volunteer and per client address (labeling/ratelimit.py): a script opening a fresh
session per request still shares its address's count."""

import json
from functools import wraps
from pathlib import PurePosixPath

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from labeling.files import media_path
from labeling.models import ClassifyPolicy, Galaxy
from labeling.ratelimit import client_address, rate_limit_hit
from labeling.selectors.classify import classify_choices, volunteer_count
from labeling.services.votes.classify import subjects_ensure
from labeling.services.votes.offers import OfferRefused, classify_offer_next, classify_offered_submit

MAX_EXCLUDE = 50
# A refused offer: never offered to this volunteer or expired (403), or answered already (409).
REFUSAL_STATUS = {"not_offered": 403, "expired": 403, "used": 409}


def volunteer_of(request) -> tuple[object | None, str]:
    """(user or None, volunteer id): "user:<id>" when signed in, else "session:<key>" (a session is made)."""
    if request.user.is_authenticated:
        return request.user, f"user:{request.user.pk}"
    if not request.session.session_key:
        request.session.save()
    return None, f"session:{request.session.session_key}"


def rate_limited(action: str):
    """Refuse a request to a classify endpoint with 429 and Retry-After once its client address, or its volunteer
    (session or user), is over the rates of settings.GALAXY_CLASSIFY_<ACTION>_PER_ADDRESS / _PER_VOLUNTEER. The
    address is counted first, so that a script opening a fresh session per request is refused before any session
    is made for it."""
    def decorate(view):
        @wraps(view)
        def limited(request, *args, **kwargs):
            wait = rate_limit_hit(scope=f"classify-{action}:address", key=client_address(request),
                                  rates=getattr(settings, f"GALAXY_CLASSIFY_{action.upper()}_PER_ADDRESS"))
            whom = "from your network (people sharing a connection count together)"
            if wait is None:
                _, volunteer_id = volunteer_of(request)
                wait = rate_limit_hit(scope=f"classify-{action}:volunteer", key=volunteer_id,
                                      rates=getattr(settings, f"GALAXY_CLASSIFY_{action.upper()}_PER_VOLUNTEER"))
                whom = "from you"
            if wait is None:
                return view(request, *args, **kwargs)
            span = f"{wait} second{'s' if wait > 1 else ''}" if wait < 120 else f"{round(wait / 60)} minutes"
            what = "Answers are" if action == "submits" else "Requests for galaxies are"
            response = JsonResponse({"detail": f"{what} coming {whom} faster than anyone can look at galaxies. "
                                               f"Please wait {span}.",
                                     "code": "rate_limited", "retry_after": wait}, status=429)
            response["Retry-After"] = str(wait)
            return response
        return limited
    return decorate


def _policy(slug: str) -> ClassifyPolicy:
    policy = ClassifyPolicy.objects.select_related("dataset", "tree", "early_rule").filter(dataset__slug=slug).first()
    if policy is None:
        raise Http404("volunteers do not classify this dataset (an admin adds a classify policy for it)")
    return policy


def _static(path: str) -> str:
    # Django prefixes a relative STATIC_URL with "/" when it is read, so "/" + STATIC_URL would be "//static/...",
    # a protocol-relative URL to a host named "static".
    return path if path.startswith(("/", "http")) else static(path)


def _tree_for_page(policy: ClassifyPolicy) -> dict:
    """The tree as the page walks it, with example images as URLs."""
    definition = policy.tree.as_definition()
    for question in definition["questions"]:
        for answer in question["answers"]:
            answer["examples"] = [{"url": _static(example["image"]), "caption": example.get("caption", "")}
                                  for example in answer.get("examples", [])]
    return definition


@require_GET
def classify_home(request):
    return render(request, "labeling/classify_home.html", {"choices": classify_choices()})


@require_GET
@ensure_csrf_cookie
def classify_page(request, dataset: str):
    policy = _policy(dataset)
    subjects_ensure(policy=policy)
    _, volunteer_id = volunteer_of(request)
    config = {
        "dataset": {"name": policy.dataset.name, "slug": policy.dataset.slug},
        "tree": _tree_for_page(policy),
        "urls": {"next": reverse("classify-next", args=[policy.dataset.slug]),
                 "submit": reverse("classify-submit", args=[policy.dataset.slug])},
        "classified": volunteer_count(policy=policy, volunteer_id=volunteer_id),
    }
    return render(request, "labeling/classify.html", {"policy": policy, "config": config})


def _galaxy_json(galaxy: Galaxy, policy: ClassifyPolicy) -> dict:
    """What a volunteer's page gets of a galaxy: its key (sent back with the answers) and its image's URL."""
    return {"id": galaxy.pk, "image_url": reverse("classify-image", args=[policy.dataset.slug, galaxy.pk])}


@require_GET
@rate_limited("offers")
def classify_next_view(request, dataset: str):
    """The next galaxy for this volunteer, offered to them from now, or null when none is left; ?exclude=1,2 skips
    those the page holds."""
    policy = _policy(dataset)
    _, volunteer_id = volunteer_of(request)
    try:
        exclude = [int(part) for part in request.GET.get("exclude", "").split(",") if part.strip()][:MAX_EXCLUDE]
    except ValueError:
        return JsonResponse({"exclude": ["a comma-separated list of galaxy ids"]}, status=400)
    subject = classify_offer_next(policy=policy, volunteer_id=volunteer_id, exclude=[e for e in exclude if e > 0])
    return JsonResponse({"galaxy": _galaxy_json(subject.galaxy, policy) if subject else None,
                         "classified": volunteer_count(policy=policy, volunteer_id=volunteer_id)})


@require_GET
def classify_image_view(request, dataset: str, galaxy_id: int):
    """The image of a galaxy of a dataset volunteers classify, under a neutral name: the bytes themselves rather than
    a redirect, since the media URL a redirect led to would show the file name."""
    policy = _policy(dataset)
    galaxy = get_object_or_404(Galaxy.objects.only("image"), pk=galaxy_id, dataset=policy.dataset)
    if not galaxy.image:
        raise Http404("this galaxy has no image")
    try:
        path = media_path(galaxy.image.name)
    except SuspiciousFileOperation:
        raise Http404("this galaxy's image is not a media file") from None
    suffix = PurePosixPath(galaxy.image.name).suffix.lower()
    # FileResponse names the file in Content-Disposition: give it a name that says nothing.
    response = FileResponse(path.open("rb"), filename=f"galaxy{suffix}")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_POST
@rate_limited("submits")
def classify_submit_view(request, dataset: str):
    """Store the volunteer's answers for a galaxy offered to them: 201 when stored (200 when they had classified it
    before it was offered); 403 for a galaxy not offered to them or offered too long ago, 409 for a second sending
    of the same offer, each with a "detail" to show and a "code" (OfferRefused's)."""
    policy = _policy(dataset)
    user, volunteer_id = volunteer_of(request)
    try:
        payload = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"body": ["not JSON"]}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"body": ["a JSON object with galaxy and answers"]}, status=400)
    galaxy_id, answers = payload.get("galaxy"), payload.get("answers")
    if not isinstance(galaxy_id, int) or isinstance(galaxy_id, bool) or not 1 <= galaxy_id < 2**63:
        return JsonResponse({"galaxy": ["a galaxy id"]}, status=400)
    if not isinstance(answers, dict) or not answers:
        return JsonResponse({"answers": ["an object of question key to answer key (or list of keys)"]}, status=400)
    galaxy = get_object_or_404(Galaxy, pk=galaxy_id, dataset=policy.dataset)
    try:
        classification = classify_offered_submit(policy=policy, galaxy=galaxy, answers=answers,
                                                  volunteer_id=volunteer_id, user=user)
    except OfferRefused as refusal:
        return JsonResponse({"detail": refusal.message, "code": refusal.code}, status=REFUSAL_STATUS[refusal.code])
    except ValidationError as error:
        return JsonResponse(error.message_dict if hasattr(error, "error_dict") else {"answers": error.messages},
                            status=400)
    return JsonResponse({"id": classification.pk, "stored": classification.created,
                         "classified": volunteer_count(policy=policy, volunteer_id=volunteer_id)},
                        status=201 if classification.created else 200)


__all__ = ["classify_home", "classify_image_view", "classify_next_view", "classify_page", "classify_submit_view"]
