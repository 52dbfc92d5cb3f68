"""Rate limits of the classify endpoints (labeling/views/classify.py, rate_limited): per volunteer (session or
signed-in user) and per client address, each refused with 429, a Retry-After header and a message the page shows;
a client's own X-Forwarded-For counts for nothing unless a trusted proxy is configured. Last, a bounded run of a bot
rotating sessions beside two honest volunteers."""

import time

import pytest

from labeling.models import ClassifyOffer, VolunteerClassification
from tests.labeling.votes.classify_helpers import ARTIFACT, ROUND, Browser, freeze_rate_clock, open_to_volunteers

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    freeze_rate_clock(monkeypatch)


@pytest.fixture
def policy(tmp_path):
    return open_to_volunteers(tmp_path / "import")


def classify(browser: Browser, times: int) -> list[int]:
    """The browser answers ``times`` galaxies as the page does: the next one, then its answers. Statuses."""
    codes, held = [], []
    for _ in range(times):
        galaxy = browser.offered(exclude=held)
        held = [galaxy]
        codes.append(browser.submit(galaxy).status_code)
    return codes


def assert_slowed_down(response, wait: int = 50):
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) == wait  # the clock stands 10 s into a minute and an hour
    body = response.json()
    assert body["code"] == "rate_limited" and body["retry_after"] == wait
    assert f"Please wait {wait} seconds." in body["detail"] if wait < 120 else \
        f"Please wait {round(wait / 60)} minutes." in body["detail"]


def test_a_volunteer_answering_faster_than_a_person_is_slowed_down_and_nothing_more_is_stored(policy, settings):
    settings.GALAXY_CLASSIFY_SUBMITS_PER_VOLUNTEER = ((3, 60),)
    browser = Browser(policy)
    assert classify(browser, 3) == [201, 201, 201]
    galaxy = browser.offered()
    refused = browser.submit(galaxy)
    assert_slowed_down(refused)
    assert refused.json()["detail"].startswith("Answers are coming from you faster than anyone can look at")
    assert VolunteerClassification.objects.filter(tree=policy.tree).count() == 3
    assert ClassifyOffer.objects.get(galaxy_id=galaxy).used_at is None  # the page sends it again after the wait
    assert Browser(policy).submit(browser.offered()).status_code == 403  # another session: counted apart


def test_a_signed_in_volunteer_is_counted_across_browsers(policy, settings, volunteer):
    settings.GALAXY_CLASSIFY_SUBMITS_PER_VOLUNTEER = ((2, 60),)
    laptop, phone = Browser(policy, user=volunteer), Browser(policy, user=volunteer, address="198.51.100.2")
    assert classify(laptop, 2) == [201, 201]
    assert_slowed_down(phone.submit(phone.offered()))


def test_fresh_sessions_from_one_address_share_its_limit(policy, settings):
    settings.GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS = ((4, 60), (100, 3600))
    codes = [code for _ in range(6) for code in classify(Browser(policy, address="203.0.113.5"), 1)]
    assert codes == [201] * 4 + [429] * 2
    refused = Browser(policy, address="203.0.113.5").submit(1)
    assert_slowed_down(refused)
    assert "coming from your network (people sharing a connection count together)" in refused.json()["detail"]
    assert classify(Browser(policy, address="203.0.113.6"), 1) == [201]  # another address


def test_the_hourly_rate_of_an_address_says_to_wait_for_the_hour(policy, settings):
    settings.GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS = ((10, 60), (2, 3600))
    browser = Browser(policy)
    classify(browser, 2)
    refused = browser.submit(browser.offered())
    assert_slowed_down(refused, wait=3600 - 10)


def test_asking_for_the_next_galaxy_is_limited_too(policy, settings):
    settings.GALAXY_CLASSIFY_OFFERS_PER_VOLUNTEER = ((3, 60),)
    browser = Browser(policy)
    held = []
    for _ in range(3):
        held.append(browser.offered(exclude=held))
    assert_slowed_down(browser.next(exclude=held))
    assert ClassifyOffer.objects.count() == 3  # a refused request offers nothing

    settings.GALAXY_CLASSIFY_OFFERS_PER_ADDRESS = ((5, 60),)
    assert [Browser(policy, address="203.0.113.7").next().status_code for _ in range(6)] == [200] * 5 + [429]


def test_an_x_forwarded_for_header_sent_by_the_client_is_ignored(policy, settings):
    settings.GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS = ((2, 60),)
    codes = [code for number in range(4)
             for code in classify(Browser(policy, address="203.0.113.5",
                                          HTTP_X_FORWARDED_FOR=f"192.0.2.{number}"), 1)]
    assert codes == [201, 201, 429, 429]


def test_behind_a_trusted_proxy_each_client_counts_by_the_address_the_proxy_appended(policy, settings):
    settings.GALAXY_TRUSTED_PROXY_COUNT = 1
    settings.GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS = ((2, 60),)
    proxy = "10.0.0.2"  # every request reaches the application from the proxy

    def via_proxy(client: str, forged: str = "") -> Browser:
        return Browser(policy, address=proxy, HTTP_X_FORWARDED_FOR=f"{forged}{client}")

    # One client forging a different address each time is still that client; another client counts apart.
    assert [classify(via_proxy("203.0.113.5", forged=f"192.0.2.{n}, "), 1)[0] for n in range(3)] == [201, 201, 429]
    assert classify(via_proxy("203.0.113.6"), 2) == [201, 201]


def test_a_bot_rotating_sessions_stores_nothing_it_was_not_offered_and_honest_volunteers_all_land(policy,
                                                                                                 settings):
    """The attack of issue 21: a script opening a fresh session per request and sending "artifact" for one galaxy of
    its choosing, 30 times, from one address; two honest volunteers classify beside it from their own addresses.
    The address limit is set to 10 a minute here: the default 60 would let 30 attempts through the limit, and the
    point is to see the limit hold."""
    settings.GALAXY_CLASSIFY_SUBMITS_PER_ADDRESS = ((10, 60), (600, 3600))
    bot_address = "203.0.113.66"
    target = policy.dataset.galaxies.order_by("pk").first().pk
    honest = [Browser(policy, address="198.51.100.11"), Browser(policy, address="198.51.100.12")]
    honest_codes, held = {0: [], 1: []}, {0: [], 1: []}
    bot_codes, bot_sessions, offered_to_bot = [], set(), set()
    started = time.monotonic()
    for attempt in range(30):
        bot = Browser(policy, address=bot_address)  # a fresh session every time
        bot_sessions.add(f"session:{bot.session}")
        response = bot.next()
        if response.status_code == 200 and response.json()["galaxy"]:
            offered_to_bot.add((f"session:{bot.session}", response.json()["galaxy"]["id"]))
        bot_codes.append(bot.submit(target, ARTIFACT).status_code)
        if attempt % 3 == 0:  # an honest volunteer takes a while over each galaxy
            who = attempt // 3 % 2
            galaxy = honest[who].offered(exclude=held[who])
            held[who] = [galaxy]
            honest_codes[who].append(honest[who].submit(galaxy, ROUND).status_code)
    elapsed = time.monotonic() - started

    assert len(bot_sessions) == 30
    bot_rows = list(VolunteerClassification.objects.filter(volunteer_id__in=bot_sessions).values_list(
        "volunteer_id", "galaxy_id"))
    assert len(bot_rows) <= 10, bot_rows
    assert set(bot_rows) <= offered_to_bot  # never a galaxy it was not offered
    assert set(bot_codes) <= {201, 403, 429} and bot_codes[10:] == [429] * 20
    assert bot_codes.count(201) == len(bot_rows)
    assert VolunteerClassification.objects.filter(galaxy_id=target, answers=ARTIFACT).count() == len(bot_rows)

    assert honest_codes == {0: [201] * 5, 1: [201] * 5}
    honest_rows = VolunteerClassification.objects.filter(answers=ROUND, volunteer_id__in=[
        f"session:{browser.session}" for browser in honest])
    assert honest_rows.count() == 10
    assert elapsed < 120  # bounded: 30 attempts and 10 honest answers on loopback
