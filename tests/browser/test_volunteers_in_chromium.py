"""An admin excludes a bot-like session from the page of volunteers, in a real Chromium: the fastest comes first,
the row's folded form takes a reason, and the session moves to the excluded list with its votes out of the counts.
A screenshot lands in BROWSER_SCREENSHOT_DIR."""

import re

import pytest

from labeling.models import VolunteerExclusion, VoteSummary
from tests.labeling.screening_helpers import BOT, screening_world

pytestmark = pytest.mark.browser


def test_an_admin_excludes_the_fastest_session_from_the_page(page, volunteer, admin_user, screenshot_dir):
    world = screening_world(volunteer)
    url = "/volunteers/?sort=median_gap"
    page.goto(f"/login/?next={url}")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "pw-ada")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(url) + "$"))

    first = page.locator("#volunteers tbody tr").first
    assert first.get_attribute("data-volunteer") == BOT
    first.locator("summary").click()
    first.locator("input[name=reason]").fill("a galaxy a second")
    first.locator("button:has-text('Exclude')").click()

    page.wait_for_selector(f"#excluded tr[data-volunteer='{BOT}']")
    assert page.locator(f"#volunteers tr[data-volunteer='{BOT}']").count() == 0
    assert "4 galaxies recounted" in page.locator(".messages").inner_text()
    page.screenshot(path=str(screenshot_dir / "volunteers.png"), full_page=True)
    exclusion = VolunteerExclusion.objects.get()
    assert (exclusion.volunteer, exclusion.reason, exclusion.excluded_by) == (BOT, "a galaxy a second", admin_user)
    root = VoteSummary.objects.get(galaxy=world.galaxies[0], question__key="smooth-or-featured", source="aggregated")
    assert root.total == 4
