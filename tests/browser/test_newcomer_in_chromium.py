"""A newcomer's first minutes on the demo, in a real Chromium: the expert signs in, follows the first link the home
page offers, labels 10 galaxies by keyboard at 10 keys a second and finds them stored; the galaxy grid opens on
pictures although vote-only galaxies came first; a visitor classifying sees no id that could give the answer away."""

import re

import pytest

from labeling.models import Dataset, ExpertLabel, Galaxy
from labeling.services.demo.load import GALAXY10, demo_load

pytestmark = pytest.mark.browser

KEYS = list("1357924680")


@pytest.fixture
def demo(settings, tmp_path, transactional_db):
    """The demo as `make demo` loads it, less the 19,761-row Stripe 82 table; 300 vote-only galaxies stand in for it,
    made first so that a listing by id alone would open on them."""
    settings.VAR_DIR = tmp_path / "var"
    votes_only = Dataset.objects.create(name="Votes without images", slug="votes-without-images")
    Galaxy.objects.bulk_create(Galaxy(dataset=votes_only, external_id=f"v{i}") for i in range(300))
    return demo_load(include_stripe82=False)


def test_a_newcomer_labels_ten_galaxies_from_the_home_page_then_browses_and_classifies(page, browser, live_server,
                                                                                      demo, screenshot_dir):
    page.goto("/login/")
    page.fill("#id_username", "expert")
    page.fill("#id_password", demo.credentials["expert"])
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(r"/$"))
    first = page.locator("main a").first
    assert re.fullmatch(r"Label \d+ galaxies", first.inner_text())
    first.click()
    page.wait_for_url(re.compile(r"/label/[\w-]+/galaxy10/$"))
    page.wait_for_selector("#label-stage[data-ready='true']")
    page.wait_for_selector(".label-neighbours .score")
    scores = page.locator(".label-neighbours .score").all_inner_texts()
    assert re.fullmatch(r"#1 · \d+", scores[0]) and scores[0] != scores[-1], scores  # not a row of 1.00s
    page.screenshot(path=str(screenshot_dir / "newcomer-label.png"))

    for key in KEYS:
        page.keyboard.press(key)
        page.wait_for_timeout(100)  # 10 keys a second
    page.wait_for_function("() => (document.body.dataset.keysWaiting || '0') === '0'")
    page.wait_for_selector("body[data-outbox='0']")
    stored = ExpertLabel.objects.filter(expert__username="expert", schema__name="galaxy10")
    assert stored.count() == 10 and stored.values("galaxy").distinct().count() == 10
    assert sorted(stored.values_list("label_class__key", flat=True)) == sorted(
        page.get_attribute(f".class-button[data-shortcut='{key}']", "data-class") for key in KEYS)

    page.goto("/galaxies/")
    tiles = page.locator(".galaxy-grid img")
    assert tiles.count() >= 24 and page.locator(".galaxy-grid .placeholder").count() == 0
    page.wait_for_function("() => [...document.querySelectorAll('.galaxy-grid img')].slice(0, 12)"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)

    visitor = browser.new_context(base_url=live_server.url).new_page()
    visitor.goto("/classify/")
    visitor.get_by_role("link", name=GALAXY10).click()
    visitor.wait_for_selector("#classify-app[data-ready='true']")
    visitor.wait_for_function("() => document.getElementById('galaxy-image').naturalWidth > 0")
    assert "g10_class" not in visitor.content()
    assert "g10_class" not in visitor.locator("#galaxy-image").evaluate("img => img.currentSrc")
    visitor.context.close()
