"""The machine-learning pages in a real Chromium: follow a neighbour, hover and click the 2-D map, start a
clustering from the Jobs page and open its gallery. Screenshots land in BROWSER_SCREENSHOT_DIR."""

import re

import pytest

from tests.browser.test_pages_in_chromium import images_loaded
from tests.labeling.ml_helpers import clustered, extracted, galaxy10_subset, indexed, mapped

pytestmark = pytest.mark.browser


@pytest.fixture
def analysed(tmp_path, admin_user):
    dataset = galaxy10_subset(tmp_path / "import")
    feature_set = indexed(extracted(dataset))
    clustering = clustered(feature_set, k=3)
    return {"dataset": dataset, "feature_set": feature_set, "clustering": clustering,
            "map": mapped(feature_set, "pca")}


def log_in_as_admin(page, next_url: str) -> None:
    page.goto(f"/login/?next={next_url}")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "pw-ada")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(next_url.split("#")[0]) + "$"))


def test_a_neighbour_on_a_galaxys_page_opens_that_galaxy(page, analysed, screenshot_dir):
    galaxy = analysed["dataset"].galaxies.order_by("pk").first()
    log_in_as_admin(page, f"/galaxies/{galaxy.pk}/")
    tiles = page.locator(".neighbours .neighbour")
    assert tiles.count() == 8
    page.wait_for_load_state("load")
    assert all(width > 0 for width in images_loaded(page, ".neighbours img"))
    scores = [float(s) for s in tiles.evaluate_all("tiles => tiles.map(t => t.dataset.score)")]
    assert scores == sorted(scores, reverse=True)
    page.screenshot(path=str(screenshot_dir / "detail-neighbours.png"), full_page=True)
    first = tiles.first.get_attribute("data-galaxy")
    tiles.first.locator("a").click()
    page.wait_for_url(re.compile(rf"/galaxies/{first}/$"))


def test_the_map_shows_every_galaxy_hover_shows_its_thumbnail_and_a_click_opens_it(page, analysed, screenshot_dir):
    log_in_as_admin(page, f"/maps/{analysed['map'].pk}/")
    page.wait_for_selector("#map[data-ready='true']")
    assert page.evaluate("window.galaxyMap.data.ids.length") == 18
    assert page.locator("#map-colour option").all_inner_texts()[1].startswith("k-means, k=3")
    # Colour by the expert labels: three classes, three series in the legend.
    page.select_option("#map-colour", "expert:galaxy10")
    assert page.evaluate("window.galaxyMap.chart.getOption().series.map(s => s.name)") == [
        "Round Smooth", "Barred Spiral", "Edge-on without Bulge"]
    target = page.evaluate("""() => {
        const {chart, data} = window.galaxyMap;
        const point = chart.getOption().series[0].data[0];
        const [x, y] = chart.convertToPixel({seriesIndex: 0}, [point[0], point[1]]);
        const box = document.getElementById('map').getBoundingClientRect();
        return {x: box.left + x, y: box.top + y, id: data.ids[point[2]], name: data.external_ids[point[2]]};
    }""")
    page.mouse.move(target["x"], target["y"])
    tooltip = page.locator(".map-tip")
    tooltip.wait_for()
    assert target["name"] in tooltip.inner_text()
    page.wait_for_function("() => { const i = document.querySelector('.map-tip img'); "
                           "return i && i.complete && i.naturalWidth > 0; }")
    page.screenshot(path=str(screenshot_dir / "map.png"))
    page.mouse.click(target["x"], target["y"])
    page.wait_for_url(re.compile(rf"/galaxies/{target['id']}/$"))


def test_an_admin_starts_a_clustering_on_the_jobs_page_and_opens_its_gallery(page, analysed, screenshot_dir):
    log_in_as_admin(page, "/jobs/")
    form = page.locator("#start-cluster")
    form.locator("select[name=feature_set]").select_option(str(analysed["feature_set"].pk))
    form.locator("select[name=method]").select_option("spectral")
    form.locator("input[name=k]").fill("3")
    form.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/jobs/$"))
    assert "Started job #" in page.locator(".messages").inner_text()
    row = page.locator("#jobs tbody tr").first
    assert row.locator(".job-status").inner_text() == "succeeded"  # the tests' tasks run inline
    page.screenshot(path=str(screenshot_dir / "jobs.png"), full_page=True)
    row.locator(".job-link").click()
    page.wait_for_url(re.compile(r"/clusterings/\d+/$"))
    assert page.locator("h1").inner_text().startswith("spectral (landmark-based), k=3")
    assert page.locator(".cluster-card").count() == 3
    # The samples load lazily: bring them all into view, then every one must have decoded.
    page.evaluate("document.querySelectorAll('.sample-grid img').forEach(i => i.loading = 'eager')")
    page.wait_for_function("[...document.querySelectorAll('.sample-grid img')].every(i => i.complete)")
    assert all(width > 0 for width in images_loaded(page, ".sample-grid img"))
    page.screenshot(path=str(screenshot_dir / "clusters.png"), full_page=True)
