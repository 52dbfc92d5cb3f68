"""The classify page in a real Chromium when the server says no: answers sent too fast (429) stay on the page with
how long to wait and go in when sent again; a galaxy offered too long ago (403) is not saved, the page says so and
shows another; the next galaxy refused for a moment (429) appears by itself after the wait. The classify endpoints'
limits and offers themselves are tested in tests/labeling/votes/."""

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from labeling.models import ClassifyOffer, VolunteerClassification
from tests.labeling.votes.classify_helpers import freeze_rate_clock, open_to_volunteers

pytestmark = pytest.mark.browser

APP_READY = "#classify-app[data-ready='true']"
ARTIFACT = {"smooth-or-featured": "artifact"}


@pytest.fixture
def policy(tmp_path):
    return open_to_volunteers(tmp_path / "import", per_class=1)


def shown_galaxy(page) -> int:
    return int(page.get_attribute("#classify-app", "data-galaxy") or 0)


def status(page) -> str:
    return page.locator("#classify-status").inner_text()


def answer_artifact(page) -> int:
    """Answer the shown galaxy with the shortest walk (a star or artifact) and send it; the galaxy answered."""
    page.wait_for_selector(APP_READY)
    galaxy = shown_galaxy(page)
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    return galaxy


def stored(policy) -> dict[int, dict]:
    return dict(VolunteerClassification.objects.filter(tree=policy.tree).values_list("galaxy_id", "answers"))


def test_answers_sent_too_fast_wait_on_the_page_and_go_in_when_sent_again(page, policy, settings, monkeypatch):
    freeze_rate_clock(monkeypatch)  # the two answers fall in one minute, however slowly the browser goes
    settings.GALAXY_CLASSIFY_SUBMITS_PER_VOLUNTEER = ((1, 60),)
    page.goto(f"/classify/{policy.dataset.slug}/")
    first = answer_artifact(page)
    page.wait_for_function("(first) => document.getElementById('classify-app').dataset.galaxy !== String(first)",
                           arg=first)
    second = answer_artifact(page)
    page.wait_for_function("() => document.getElementById('classify-status').textContent.startsWith('Not saved yet')")
    assert status(page).startswith("Not saved yet: Answers are coming from you faster than anyone can look at "
                                   "galaxies. Please wait 50 seconds.")
    assert status(page).endswith("Then press Enter to send your answers again.")
    assert shown_galaxy(page) == second and page.locator("#summary").is_visible()  # the answers are still there
    assert stored(policy) == {first: ARTIFACT}

    cache.clear()  # the minute has passed
    page.keyboard.press("Enter")
    page.wait_for_function("(second) => document.getElementById('classify-app').dataset.galaxy !== String(second)",
                           arg=second)
    assert status(page) == "Thank you! Saved."
    assert stored(policy) == {first: ARTIFACT, second: ARTIFACT}


def test_a_galaxy_offered_too_long_ago_is_not_saved_and_the_page_shows_another(page, policy, settings):
    settings.GALAXY_CLASSIFY_OFFER_TTL = 3600
    page.goto(f"/classify/{policy.dataset.slug}/")
    page.wait_for_selector(APP_READY)
    stale = shown_galaxy(page)
    ClassifyOffer.objects.filter(galaxy_id=stale).update(offered_at=timezone.now() - timedelta(hours=2))
    answer_artifact(page)
    page.wait_for_function("(stale) => document.getElementById('classify-app').dataset.galaxy !== String(stale)",
                           arg=stale)
    assert status(page) == ("Not saved: This galaxy was shown to you too long ago (a galaxy waits 1 hour for its "
                            "answers). Here is another galaxy.")
    assert shown_galaxy(page) and page.locator("#galaxy-image").is_visible()
    assert stored(policy) == {}


def test_the_next_galaxy_refused_for_a_moment_appears_by_itself_after_the_wait(page, policy):
    refusals = []

    def refuse_once(route):
        if refusals:
            route.continue_()
            return
        refusals.append(route.request.url)
        route.fulfill(status=429, headers={"Retry-After": "1", "Content-Type": "application/json"},
                      body=json.dumps({"detail": "Requests for galaxies are coming from you faster than anyone can "
                                                 "look at galaxies. Please wait 1 second.", "code": "rate_limited",
                                       "retry_after": 1}))

    page.route("**/next/?*", refuse_once)
    page.goto(f"/classify/{policy.dataset.slug}/")
    page.wait_for_function("() => document.getElementById('question-text').textContent === 'Just a moment…'")
    assert status(page) == ("Requests for galaxies are coming from you faster than anyone can look at galaxies. "
                            "Please wait 1 second. The next galaxy then appears by itself.")
    assert page.locator("#galaxy-image").is_hidden()
    page.keyboard.press("3")  # nothing to answer meanwhile
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('classify-app').dataset.galaxy !== ''", timeout=10_000)
    page.wait_for_selector(APP_READY)
    assert len(refusals) == 1 and status(page) == "" and page.locator("#galaxy-image").is_visible()
    assert page.locator("#question-step").inner_text() == "Question 1"
    assert stored(policy) == {}
