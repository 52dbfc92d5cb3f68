"""Importing from the Jobs page in a real Chromium: an admin picks a folder the form suggests, starts the import,
and follows the finished job's link to the imported galaxies. Screenshots land in BROWSER_SCREENSHOT_DIR."""

import re

import pytest

from labeling.models import Galaxy
from tests.browser.test_ml_pages_in_chromium import log_in_as_admin
from tests.browser.test_pages_in_chromium import images_loaded, tile_ids
from tests.labeling.ml_helpers import galaxy10_subset_folder

pytestmark = pytest.mark.browser


def test_an_admin_imports_a_suggested_folder_and_opens_the_imported_galaxies(page, admin_user, settings, tmp_path,
                                                                             screenshot_dir):
    settings.GALAXY_IMPORT_ROOT = tmp_path / "imports"
    galaxy10_subset_folder(settings.GALAXY_IMPORT_ROOT / "galaxy10-sample", classes=("2", "8"), per_class=2)

    log_in_as_admin(page, "/jobs/")
    form = page.locator("#start-import_galaxies")
    path = form.locator("input[name=path]")
    suggestions = page.locator(f"#{path.get_attribute('list')} option").evaluate_all("os => os.map(o => o.value)")
    assert "galaxy10-sample" in suggestions and "galaxy10-sample/labels.csv" in suggestions
    path.fill("galaxy10-sample")
    form.locator("select[name=format]").select_option("folder")
    form.locator("input[name=dataset]").fill("Sample from the browser")
    form.locator("input[name=schema]").fill("galaxy10")
    form.locator("button[type=submit]").click()

    page.wait_for_url(re.compile(r"/jobs/$"))
    row = page.locator("#jobs tbody tr").first
    assert row.locator(".job-status").inner_text() == "succeeded"  # the tests' tasks run inline
    assert "4 created" in row.locator(".job-summary").inner_text()
    page.screenshot(path=str(screenshot_dir / "jobs-import.png"), full_page=True)
    row.locator(".job-link").click()
    page.wait_for_url(re.compile(r"/galaxies/\?dataset=sample-from-the-browser$"))
    assert sorted(tile_ids(page)) == sorted(Galaxy.objects.values_list("external_id", flat=True))
    assert len(tile_ids(page)) == 4 and all(width > 0 for width in images_loaded(page, ".galaxy-grid img"))


def test_a_path_outside_the_import_folder_is_shown_as_an_error_on_the_form(page, admin_user, settings, tmp_path):
    settings.GALAXY_IMPORT_ROOT = tmp_path / "imports"
    settings.GALAXY_IMPORT_ROOT.mkdir()
    log_in_as_admin(page, "/jobs/")
    form = page.locator("#start-import_votes")
    form.locator("input[name=path]").fill("../secrets.csv")
    form.locator("input[name=dataset]").fill("Anything")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state("load")
    error = page.locator("#start-import_votes .field-error").first.inner_text()
    assert "points outside the folder" in error
    assert "Could not start import votes" in page.locator(".messages").inner_text()
