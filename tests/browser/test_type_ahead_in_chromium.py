"""Type-ahead on the expert labelling page in a real Chromium: keys pressed faster than the next galaxies load are
kept, shown as waiting, and applied in order, each to the galaxy on screen when it is applied; none is dropped."""

import re

import pytest

from labeling.models import ExpertLabel, Galaxy, LabelSchema, QueueEntry
from labeling.services.labelling.queue import queue_build
from tests.browser.test_label_in_chromium import STAGE_READY, class_for_key, open_label_page, shown_galaxy
from tests.labeling.ml_helpers import galaxy10_subset

pytestmark = pytest.mark.browser

# 20 label keys; 1-3-3-1-3 first, the run that once kept 3 labels of 5.
KEYS = list("13313" "79246" "80531" "97642")
WAITING = "#keys-waiting"
IMAGES = re.compile(r"\.(jpe?g|png)(\?.*)?$")


@pytest.fixture
def long_queue(tmp_path, expert):
    """30 real Galaxy10 galaxies, 24 of them without a label and so in the expert's queue, in rank order."""
    dataset = galaxy10_subset(tmp_path / "import", per_class=10)
    schema = LabelSchema.objects.get(name="galaxy10")
    ExpertLabel.objects.filter(galaxy__dataset=dataset, expert__isnull=True).exclude(
        galaxy__external_id__regex=r"_[01]$").delete()
    assert queue_build(dataset=dataset, schema=schema)["entries"] == 24
    order = list(QueueEntry.objects.filter(expert=expert, schema=schema, status=QueueEntry.Status.PENDING)
                 .order_by("rank", "id").values_list("galaxy_id", flat=True))
    return {"schema": schema, "url": f"/label/{dataset.slug}/{schema.name}/", "order": order}


def stored_labels(expert, schema) -> dict[int, str]:
    labels = ExpertLabel.objects.filter(expert=expert, schema=schema).select_related("label_class")
    assert labels.count() == len({label.galaxy_id for label in labels}), "a galaxy was labelled twice"
    return {label.galaxy_id: label.label_class.key for label in labels}


def wait_until_everything_is_applied_and_saved(page) -> None:
    page.wait_for_function("() => (document.body.dataset.keysWaiting || '0') === '0'")
    page.wait_for_selector("body[data-outbox='0']")


def slow_network(page, latency_ms: int) -> None:
    """Every request from the page takes ``latency_ms`` longer, as over a real network: a local server answers faster
    than anyone types, and would hide what an expert on a remote connection meets."""
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms,
                                                      "downloadThroughput": -1, "uploadThroughput": -1})


def test_twenty_labels_typed_at_ten_keys_a_second_are_all_stored_in_order(page, long_queue, expert):
    order = long_queue["order"]
    slow_network(page, 300)
    open_label_page(page, long_queue["url"])
    assert shown_galaxy(page) == order[0]

    for key in KEYS:
        page.keyboard.press(key)
        page.wait_for_timeout(100)  # 10 keys a second, never waiting for an image
    wait_until_everything_is_applied_and_saved(page)

    expected = {galaxy: class_for_key(page, key) for galaxy, key in zip(order, KEYS, strict=False)}
    stored = stored_labels(expert, long_queue["schema"])
    assert len(stored) == 20, f"{len(stored)} of 20 labels stored"
    assert stored == expected
    page.wait_for_selector(f"{STAGE_READY}[data-galaxy='{order[20]}']")
    assert page.locator(WAITING).is_hidden()
    assert page.locator("#outbox-failures").is_hidden()


def test_keys_pressed_while_images_are_held_back_wait_visibly_and_undo_takes_back_the_last(page, long_queue, expert,
                                                                                         screenshot_dir):
    order = long_queue["order"]
    first_image = Galaxy.objects.get(pk=order[0]).image.url
    held, released = [], []

    def hold_all_but_the_first(route):
        if released or route.request.url.endswith(first_image):
            route.continue_()
        else:
            held.append(route)

    page.route(IMAGES, hold_all_but_the_first)
    open_label_page(page, long_queue["url"])
    assert shown_galaxy(page) == order[0]

    page.keyboard.press("3")  # labels the first galaxy at once; the second's image is held back
    page.wait_for_selector(f"#label-stage[data-galaxy='{order[1]}']")
    for key in ("6", "9", "2"):
        page.keyboard.press(key)
    waiting = page.locator(WAITING)
    waiting.wait_for(state="visible")
    assert "3 keys waiting" in waiting.inner_text()
    page.keyboard.press("u")  # takes back the last key still waiting, not a stored label
    page.wait_for_function("() => document.body.dataset.keysWaiting === '2'")
    assert "2 keys waiting" in waiting.inner_text()
    page.screenshot(path=str(screenshot_dir / "label-keys-waiting.png"))
    assert stored_labels(expert, long_queue["schema"]).keys() <= {order[0]}

    assert held, "no image was held back"
    released.append(True)
    for route in held:
        route.continue_()
    wait_until_everything_is_applied_and_saved(page)
    page.wait_for_selector(f"{STAGE_READY}[data-galaxy='{order[3]}']")
    waiting.wait_for(state="hidden")
    assert stored_labels(expert, long_queue["schema"]) == {
        order[0]: class_for_key(page, "3"), order[1]: class_for_key(page, "6"), order[2]: class_for_key(page, "9")}
