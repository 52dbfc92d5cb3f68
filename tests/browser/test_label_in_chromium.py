"""The expert labelling page in a real Chromium: label three galaxies with the keyboard, undo the last, and find
exactly the two labels given in the database; a label whose POST fails is kept, retried and saved; the help overlay
lists the keys. Screenshots land in BROWSER_SCREENSHOT_DIR."""

import re

import pytest

from labeling.models import ExpertLabel, LabelSchema
from labeling.services.labelling.queue import queue_build
from tests.labeling.ml_helpers import galaxy10_subset

pytestmark = pytest.mark.browser

STAGE_READY = "#label-stage[data-ready='true']"


@pytest.fixture
def queued(tmp_path, expert):
    """18 real Galaxy10 galaxies, 12 of them without a label and so in the expert's queue (the queue counts an
    imported catalogue label as done, so the import's labels are kept on the first two of each class only)."""
    dataset = galaxy10_subset(tmp_path / "import")
    schema = LabelSchema.objects.get(name="galaxy10")
    ExpertLabel.objects.filter(galaxy__dataset=dataset, expert__isnull=True).exclude(
        galaxy__external_id__regex=r"_[01]$").delete()
    summary = queue_build(dataset=dataset, schema=schema)
    assert summary["entries"] == 12
    return {"dataset": dataset, "schema": schema, "url": f"/label/{dataset.slug}/{schema.name}/"}


def open_label_page(page, url: str) -> None:
    """Sign in as the expert through the login form, landing on the labelling page with its first galaxy shown."""
    page.goto(f"/login/?next={url}")
    page.fill("#id_username", "edwin")
    page.fill("#id_password", "pw-edwin")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(url) + "$"))
    page.wait_for_selector(STAGE_READY)


def shown_galaxy(page) -> int:
    return int(page.get_attribute("#label-stage", "data-galaxy"))


def press_and_wait_for_next(page, key: str) -> int:
    """Press ``key`` on the galaxy shown; returns the galaxy labelled, once the next one's image is drawn."""
    before = shown_galaxy(page)
    page.keyboard.press(key)
    page.wait_for_selector(f"{STAGE_READY}:not([data-galaxy='{before}'])")
    return before


def class_for_key(page, key: str) -> str:
    return page.get_attribute(f".class-button[data-shortcut='{key}']", "data-class")


def current_labels(expert, schema):
    return {label.galaxy_id: label.label_class.key for label in ExpertLabel.objects.filter(
        expert=expert, schema=schema, superseded_at__isnull=True).select_related("label_class")}


def test_an_expert_labels_three_galaxies_with_the_keyboard_and_undoes_the_last(page, queued, expert,
                                                                               screenshot_dir):
    open_label_page(page, queued["url"])
    assert page.locator(".class-button").count() == 11  # ten classes with a digit, 'Uncertain' without
    page.wait_for_function("() => document.querySelector('#why dl') !== null")
    page.screenshot(path=str(screenshot_dir / "label.png"))

    keys = ["3", "6", "9"]  # Round Smooth, Barred Spiral, Edge-on without Bulge
    labelled = [press_and_wait_for_next(page, key) for key in keys]
    assert len(set(labelled)) == 3 and shown_galaxy(page) not in labelled

    page.keyboard.press("u")
    page.wait_for_selector(f"{STAGE_READY}[data-galaxy='{labelled[2]}']")
    page.wait_for_selector("body[data-outbox='0']")
    assert "Undone" in page.locator("#label-status").inner_text()

    expected = {labelled[0]: class_for_key(page, keys[0]), labelled[1]: class_for_key(page, keys[1])}
    assert current_labels(expert, queued["schema"]) == expected
    assert not ExpertLabel.objects.filter(expert=expert, galaxy_id=labelled[2]).exists()
    assert page.locator("#count-today").inner_text() == "2"

    # The undone galaxy is labelled again from its class button, as a click does what its key does.
    page.click(f".class-button[data-shortcut='{keys[2]}']")
    page.wait_for_selector(f"{STAGE_READY}:not([data-galaxy='{labelled[2]}'])")
    page.wait_for_selector("body[data-outbox='0']")
    assert current_labels(expert, queued["schema"])[labelled[2]] == class_for_key(page, keys[2])


def test_a_label_whose_post_fails_is_kept_shown_as_unsaved_and_saved_on_retry(page, queued, expert, screenshot_dir):
    attempts = []

    def fail_the_first(route):
        attempts.append(route.request.post_data_json)
        if len(attempts) == 1:
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r"/api/labels/$"), fail_the_first)
    open_label_page(page, queued["url"])
    galaxy = press_and_wait_for_next(page, "6")

    banner = page.locator("#outbox-banner")
    banner.wait_for(state="visible")
    assert banner.inner_text().startswith("1 label not saved yet — retrying")
    stored = page.evaluate("JSON.parse(localStorage.getItem('galaxy-labelling:outbox:edwin'))")
    assert [item["body"]["galaxy"] for item in stored] == [galaxy]
    page.screenshot(path=str(screenshot_dir / "label-retrying.png"))

    page.wait_for_selector("body[data-outbox='0']")
    banner.wait_for(state="hidden")
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    assert current_labels(expert, queued["schema"]) == {galaxy: class_for_key(page, "6")}


def test_undo_of_a_label_still_in_the_outbox_takes_it_back_without_the_server(page, queued, expert):
    attempts = []

    def offline(route):
        attempts.append(route.request.post_data_json)
        route.abort("internetdisconnected")

    page.route(re.compile(r"/api/labels/(undo/)?$"), offline)
    open_label_page(page, queued["url"])
    galaxy = press_and_wait_for_next(page, "3")
    page.locator("#outbox-banner").wait_for(state="visible")

    page.keyboard.press("u")
    page.wait_for_selector(f"{STAGE_READY}[data-galaxy='{galaxy}']")
    page.wait_for_selector("body[data-outbox='0']")
    assert page.locator("#outbox-banner").is_hidden()
    assert page.evaluate("localStorage.getItem('galaxy-labelling:outbox:edwin')") == "[]"
    assert [a["galaxy"] for a in attempts] == [galaxy]  # the one failed label POST, and no undo call
    assert not ExpertLabel.objects.filter(expert=expert).exists()


def test_the_help_overlay_opens_with_a_question_mark_and_lists_the_keys(page, queued):
    open_label_page(page, queued["url"])
    help_overlay = page.locator("#help")
    assert help_overlay.is_hidden()
    page.keyboard.press("?")
    help_overlay.wait_for(state="visible")
    text = help_overlay.inner_text()
    for expected in ("Barred Spiral", "Skip this galaxy", "Undo the last label", "Note for the next label",
                     "Invert", "Zoom in / out", "asinh"):
        assert expected in text
    keys = help_overlay.locator("kbd").all_inner_texts()
    assert {"1", "0", "s", "u", "n", "i", "?", "Esc"} <= set(keys)
    # Keys do nothing while the help is open; Escape closes it.
    before = shown_galaxy(page)
    page.keyboard.press("3")
    assert shown_galaxy(page) == before and page.evaluate("document.body.dataset.outbox") == "0"
    page.keyboard.press("Escape")
    help_overlay.wait_for(state="hidden")
