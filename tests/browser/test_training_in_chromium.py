"""The learning-curve page in a real Chromium: the charts draw, and choosing a cycle changes the loss curve's bold line,
the confusion matrix and the gallery of mistakes. Screenshots land in BROWSER_SCREENSHOT_DIR."""

import pytest

from tests.browser.test_ml_pages_in_chromium import log_in_as_admin
from tests.labeling.learning.test_training_pages import metrics, version
from tests.labeling.ml_helpers import galaxy10_subset

pytestmark = pytest.mark.browser


def option(page, element_id: str, path: str):
    return page.evaluate(f"window.echarts.getInstanceByDom(document.getElementById('{element_id}')).getOption()"
                         f".{path}")


def test_choosing_a_cycle_shows_its_confusion_matrix_and_mistakes(page, tmp_path, admin_user, screenshot_dir):
    dataset = galaxy10_subset(tmp_path / "import", per_class=4)
    galaxies = list(dataset.galaxies.order_by("pk")[:2])
    for number, galaxy in enumerate(galaxies, start=1):
        version(dataset, f"cycle {number}", expert_labels=6 * number, metrics=metrics(
            accuracy=0.5 + 0.2 * number, history=[1.0 / number, 0.8 / number],
            mistakes=[{"index": 0, "true": "2", "predicted": "8", "probability": 0.9, "galaxy": galaxy.pk}]))
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in_as_admin(page, f"/training/{dataset.slug}/")
    page.wait_for_function("window.echarts && window.echarts.getInstanceByDom(document.getElementById('confusion'))")
    assert option(page, "curve-accuracy", "series[0].data.length") == 2
    assert option(page, "confusion", "title[0].text").startswith("confusion, cycle 2")
    assert option(page, "curve-loss", "series[1].lineStyle.width") == 3
    assert page.locator(f".cycle-mistakes[data-version] a[href='/galaxies/{galaxies[1].pk}/']").is_visible()
    page.screenshot(path=str(screenshot_dir / "training-curve.png"), full_page=True)

    page.select_option("#cycle-select", label="1: cycle 1")
    assert option(page, "confusion", "title[0].text").startswith("confusion, cycle 1")
    assert option(page, "curve-loss", "series[0].lineStyle.width") == 3
    assert page.locator(f"a[href='/galaxies/{galaxies[0].pk}/']").is_visible()
    assert not page.locator(f"a[href='/galaxies/{galaxies[1].pk}/']").is_visible()
    assert errors == []

    page.goto("/training/")
    page.screenshot(path=str(screenshot_dir / "training.png"), full_page=True)
