"""The classify page takes answers only for a galaxy it offered to that volunteer (session or user), once, while
the offer is fresh: a galaxy never offered, offered to someone else, answered already or offered too long ago is
refused with a reason the page shows, and nothing is stored. labeling/services/votes/offers.py."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from labeling.models import ClassifyOffer, Subject, VolunteerClassification
from labeling.services.votes.offers import (
    OfferRefused,
    classify_offer_next,
    classify_offered_submit,
    offers_prune,
)
from tests.labeling.votes.classify_helpers import ARTIFACT, ROUND, Browser, open_to_volunteers

pytestmark = pytest.mark.django_db


@pytest.fixture
def policy(tmp_path):
    return open_to_volunteers(tmp_path / "import")


def stored(policy) -> list[tuple[int, str]]:
    return list(VolunteerClassification.objects.filter(tree=policy.tree).values_list("galaxy_id", "volunteer_id"))


def other_galaxy(policy, *besides: int) -> int:
    return policy.dataset.galaxies.exclude(pk__in=besides).order_by("pk").first().pk


def test_an_offered_galaxy_is_answered_once_and_stored(policy):
    browser = Browser(policy)
    galaxy = browser.offered()
    answered = browser.submit(galaxy)
    assert answered.status_code == 201 and answered.json()["classified"] == 1
    assert stored(policy) == [(galaxy, f"session:{browser.session}")]
    assert ClassifyOffer.objects.get(galaxy_id=galaxy).used_at is not None


def test_a_galaxy_never_offered_is_refused_with_403_and_stored_nowhere(policy):
    browser = Browser(policy)
    offered = browser.offered()
    chosen = other_galaxy(policy, offered)
    refused = browser.submit(chosen, ARTIFACT)
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_offered" and "not offered to you" in refused.json()["detail"]
    assert stored(policy) == []
    assert Subject.objects.get(galaxy_id=chosen, tree=policy.tree).n_classifications == 0
    assert Client().post(browser.base + "submit/", {"galaxy": chosen, "answers": ARTIFACT},
                         content_type="application/json").status_code == 403  # a bare script, no page or offer


def test_a_galaxy_offered_to_another_session_is_refused(policy):
    alice, bob = Browser(policy, address="198.51.100.1"), Browser(policy, address="198.51.100.2")
    hers = alice.offered()
    bob.offered(exclude=[hers])
    refused = bob.submit(hers, ARTIFACT)
    assert refused.status_code == 403 and refused.json()["code"] == "not_offered"
    assert stored(policy) == []
    assert alice.submit(hers).status_code == 201  # still hers to answer


def test_a_second_submission_of_the_same_offer_is_refused_with_409(policy):
    browser = Browser(policy)
    galaxy = browser.offered()
    assert browser.submit(galaxy, ROUND).status_code == 201
    again = browser.submit(galaxy, ARTIFACT)
    assert again.status_code == 409
    assert again.json() == {"detail": "Your answers for this galaxy are already saved.", "code": "used"}
    assert VolunteerClassification.objects.get(galaxy_id=galaxy).answers == ROUND
    assert Subject.objects.get(galaxy_id=galaxy, tree=policy.tree).n_classifications == 1


def test_an_expired_offer_is_refused_and_the_galaxy_can_be_offered_afresh(policy, settings):
    settings.GALAXY_CLASSIFY_OFFER_TTL = 3600
    browser = Browser(policy)
    galaxy = browser.offered()
    ClassifyOffer.objects.filter(galaxy_id=galaxy).update(offered_at=timezone.now() - timedelta(seconds=3601))
    refused = browser.submit(galaxy)
    assert refused.status_code == 403 and refused.json()["code"] == "expired"
    assert "waits 1 hour for its answers" in refused.json()["detail"]
    assert stored(policy) == []
    # Offered again (the page loads the next galaxy): a fresh offer, answered.
    others = list(policy.dataset.galaxies.exclude(pk=galaxy).values_list("pk", flat=True))
    assert browser.offered(exclude=others) == galaxy
    assert browser.submit(galaxy).status_code == 201


def test_a_signed_in_volunteers_offers_follow_them_to_another_browser_but_not_to_their_anonymous_session(
        policy, volunteer):
    laptop = Browser(policy, user=volunteer)
    galaxy = laptop.offered()
    phone = Browser(policy, user=volunteer, address="198.51.100.9")
    assert phone.submit(galaxy).status_code == 201
    assert stored(policy) == [(galaxy, f"user:{volunteer.pk}")]

    anonymous = Browser(policy)
    theirs = anonymous.offered()
    anonymous.client.force_login(volunteer)  # signing in: answers go under the user, who was not offered it
    assert anonymous.submit(theirs).status_code == 403


def test_answers_the_tree_refuses_leave_the_offer_unspent(policy):
    offered = classify_offer_next(policy=policy, volunteer_id="session:a")
    with pytest.raises(Exception, match="spiral"):
        classify_offered_submit(policy=policy, galaxy=offered.galaxy, answers={"smooth-or-featured": "spiral"},
                                volunteer_id="session:a")
    assert ClassifyOffer.objects.get(galaxy=offered.galaxy).used_at is None
    assert classify_offered_submit(policy=policy, galaxy=offered.galaxy, answers=ROUND,
                                   volunteer_id="session:a").created


def test_the_service_refuses_every_case_by_its_code(policy):
    galaxy = classify_offer_next(policy=policy, volunteer_id="session:a").galaxy
    for volunteer in ("session:b", "user:1"):
        with pytest.raises(OfferRefused) as refused:
            classify_offered_submit(policy=policy, galaxy=galaxy, answers=ROUND, volunteer_id=volunteer)
        assert refused.value.code == "not_offered"
    classify_offered_submit(policy=policy, galaxy=galaxy, answers=ROUND, volunteer_id="session:a")
    with pytest.raises(OfferRefused) as refused:
        classify_offered_submit(policy=policy, galaxy=galaxy, answers=ROUND, volunteer_id="session:a")
    assert refused.value.code == "used"
    assert VolunteerClassification.objects.filter(galaxy=galaxy).count() == 1


def test_expired_offers_are_pruned_and_fresh_ones_kept(policy, settings):
    settings.GALAXY_CLASSIFY_OFFER_TTL = 600
    galaxies = list(policy.dataset.galaxies.order_by("pk")[:3])
    old = timezone.now() - timedelta(seconds=601)
    for number, galaxy in enumerate(galaxies[:2]):
        ClassifyOffer.objects.create(policy=policy, galaxy=galaxy, volunteer_id=f"session:gone{number}",
                                     offered_at=old, used_at=old if number else None)
    ClassifyOffer.objects.create(policy=policy, galaxy=galaxies[2], volunteer_id="session:here")
    assert offers_prune() == 2
    assert list(ClassifyOffer.objects.values_list("volunteer_id", flat=True)) == ["session:here"]


def test_offering_prunes_expired_offers_at_most_once_per_interval(policy, settings):
    settings.GALAXY_CLASSIFY_OFFER_TTL = 600
    galaxy = policy.dataset.galaxies.order_by("pk").first()
    old = timezone.now() - timedelta(seconds=601)
    ClassifyOffer.objects.create(policy=policy, galaxy=galaxy, volunteer_id="session:gone", offered_at=old)
    classify_offer_next(policy=policy, volunteer_id="session:a")
    assert not ClassifyOffer.objects.filter(volunteer_id="session:gone").exists()
    ClassifyOffer.objects.create(policy=policy, galaxy=galaxy, volunteer_id="session:gone", offered_at=old)
    classify_offer_next(policy=policy, volunteer_id="session:b")  # within PRUNE_EVERY of the last pruning
    assert ClassifyOffer.objects.filter(volunteer_id="session:gone").exists()
