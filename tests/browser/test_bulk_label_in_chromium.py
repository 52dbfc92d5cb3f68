"""Bulk labelling in a real Chromium: an expert ticks a whole cluster in the gallery, chooses a class and labels
them in one go; the toolbar says how many, and the database has the labels. A screenshot lands in
BROWSER_SCREENSHOT_DIR."""

import re

import pytest

from labeling.models import ExpertLabel
from tests.labeling.ml_helpers import clustered, extracted, galaxy10_subset, indexed

pytestmark = pytest.mark.browser


def test_an_expert_labels_a_whole_cluster_from_the_gallery(page, tmp_path, expert, screenshot_dir):
    clustering = clustered(indexed(extracted(galaxy10_subset(tmp_path / "import"))), k=3)
    url = f"/clusterings/{clustering.pk}/"
    page.goto(f"/login/?next={url}")
    page.fill("#id_username", "edwin")
    page.fill("#id_password", "pw-edwin")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(url) + "$"))

    submit = page.locator("#bulk-submit")
    assert submit.is_disabled() and submit.inner_text() == "Label 0 selected"
    largest = max(range(clustering.k), key=lambda n: clustering.sizes[n])
    card = page.locator(f".cluster-card[data-cluster='{largest}']")
    members = [int(v) for v in card.locator("input.bulk-check").evaluate_all("boxes => boxes.map(b => b.value)")]
    card.locator("input.bulk-all").check()
    page.locator("#bulk-schema").select_option("galaxy10")
    page.locator("#bulk-class").select_option("5")
    page.locator("#bulk-note").fill("whole cluster looks barred")
    assert submit.inner_text() == f"Label {len(members)} selected" and submit.is_enabled()
    # One galaxy ticked off again: the cluster's "select all" shows a partial selection.
    card.locator("input.bulk-check").first.uncheck()
    assert card.locator("input.bulk-all").evaluate("box => box.indeterminate")
    submit.click()

    status = page.locator("#bulk-status")
    status.filter(has_text="Labelled").wait_for()
    labelled = members[1:]
    assert status.inner_text() == f"Labelled {len(labelled)} galax{'y' if len(labelled) == 1 else 'ies'} " \
                                  f"as Barred Spiral."
    page.screenshot(path=str(screenshot_dir / "bulk-label.png"), full_page=True)
    mine = ExpertLabel.objects.filter(expert=expert, superseded_at__isnull=True)
    assert sorted(mine.values_list("galaxy_id", flat=True)) == sorted(labelled)
    assert set(mine.values_list("label_class__key", "note", "provenance")) == {
        ("5", "whole cluster looks barred", "bulk")}
    assert submit.inner_text() == "Label 0 selected"
