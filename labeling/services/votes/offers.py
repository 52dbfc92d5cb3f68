"""Offers: the classify page takes a volunteer's answers only for a galaxy it offered to that volunteer (a session
or a user), once, while the offer is fresh. A script opening a fresh session per request, or sending answers for a
galaxy of its choosing, stores nothing: it gets the galaxies the offer policy picks, one answer each.

The offer record lives on the server (labeling.models.ClassifyOffer; the model says why not a signed token).
"""

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from labeling.models import ClassifyOffer, ClassifyPolicy, Galaxy, Subject, VolunteerClassification
from labeling.services.votes.classify import classify_next, classify_submit

# Expired offers are deleted at most once per this many seconds, by whichever request comes first (one indexed
# DELETE); the cache key makes that once per site when the cache is shared, once per process otherwise.
PRUNE_EVERY = 600
PRUNE_KEY = "classify-offers-pruned"


class OfferRefused(Exception):
    """Answers for a galaxy the volunteer may not answer now; ``code`` says why, the message says it in words.

    Codes: "not_offered" (never offered to this volunteer), "expired" (offered longer ago than
    GALAXY_CLASSIFY_OFFER_TTL), "used" (answered already).
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def classify_offer_next(*, policy: ClassifyPolicy, volunteer_id: str, exclude: list[int] = (),
                        rng=None) -> Subject | None:
    """The next galaxy for the volunteer (labeling.services.votes.classify.classify_next), recorded as offered to
    them from now; None when none is left."""
    subject = classify_next(policy=policy, volunteer_id=volunteer_id, exclude=exclude, rng=rng)
    if subject is None:
        return None
    # An upsert: the same galaxy offered again (a reloaded page) gets a fresh offer time, and two requests at once
    # cannot both insert.
    ClassifyOffer.objects.bulk_create(
        [ClassifyOffer(policy=policy, galaxy_id=subject.galaxy_id, volunteer_id=volunteer_id)],
        update_conflicts=True, unique_fields=["policy", "galaxy", "volunteer_id"], update_fields=["offered_at"])
    if cache.add(PRUNE_KEY, True, timeout=PRUNE_EVERY):
        offers_prune()
    return subject


def classify_offered_submit(*, policy: ClassifyPolicy, galaxy: Galaxy, answers: dict, volunteer_id: str,
                            user=None) -> VolunteerClassification:
    """Spend the volunteer's offer of ``galaxy`` and store their answers (classify_submit), both or neither.

    Raises:
        OfferRefused: when the galaxy was not offered to this volunteer, the offer expired, or it was used already.
        ValidationError: when the answers do not follow the tree (the offer stays unspent).
    """
    now = timezone.now()
    fresh_since = now - timedelta(seconds=settings.GALAXY_CLASSIFY_OFFER_TTL)
    offers = ClassifyOffer.objects.filter(policy=policy, galaxy=galaxy, volunteer_id=volunteer_id)
    with transaction.atomic():
        # One conditional UPDATE spends the offer: of two requests racing with the same offer, one matches a row.
        if not offers.filter(used_at__isnull=True, offered_at__gte=fresh_since).update(used_at=now):
            raise _refusal(offers.first(), fresh_since)
        return classify_submit(policy=policy, galaxy=galaxy, answers=answers, volunteer_id=volunteer_id, user=user)


def _refusal(offer: ClassifyOffer | None, fresh_since) -> OfferRefused:
    if offer is None:
        return OfferRefused("not_offered", "This galaxy was not offered to you here (perhaps you signed in or out "
                                           "since it was shown).")
    if offer.used_at is not None:
        return OfferRefused("used", "Your answers for this galaxy are already saved.")
    ttl = settings.GALAXY_CLASSIFY_OFFER_TTL
    span = f"{ttl / 3600:g} hour{'s' if ttl != 3600 else ''}" if ttl >= 3600 else f"{ttl // 60} minutes"
    return OfferRefused("expired", f"This galaxy was shown to you too long ago (a galaxy waits {span} for its "
                                   "answers).")


def offers_prune() -> int:
    """Delete the offers older than GALAXY_CLASSIFY_OFFER_TTL, used or not: a used one's classification is the
    record that stays. Returns how many were deleted."""
    cutoff = timezone.now() - timedelta(seconds=settings.GALAXY_CLASSIFY_OFFER_TTL)
    deleted, _ = ClassifyOffer.objects.filter(offered_at__lt=cutoff).delete()
    return deleted
