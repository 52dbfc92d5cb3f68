"""The API's documentation pages in a real Chromium: Swagger UI lists the operations and runs one with the
browser's session, ReDoc renders the reference; neither page asks any other host for anything."""

import re

import pytest

from labeling.services.imports.datasets import dataset_get_or_create
from tests.browser.test_ml_pages_in_chromium import log_in_as_admin

pytestmark = pytest.mark.browser


@pytest.fixture
def requested_hosts(page):
    """Every URL the page requests, to prove the pages load nothing from a CDN."""
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def test_swagger_ui_runs_a_request_with_the_session(page, live_server, admin_user, requested_hosts, screenshot_dir):
    dataset_get_or_create(name="Stripe 82 votes")
    log_in_as_admin(page, "/api/docs/")
    operation = page.locator("#operations-datasets-datasets_list")
    operation.wait_for()
    assert page.locator(".opblock").count() >= 35
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    # The documented example response is also a .microlight block; only the live table holds the server's answer,
    # and it appears once the request has come back.
    body = operation.locator(".live-responses-table .response .microlight").first
    body.wait_for()
    assert "Stripe 82 votes" in body.inner_text()
    page.screenshot(path=str(screenshot_dir / "api-docs.png"), full_page=False)
    elsewhere = [url for url in requested_hosts if not url.startswith((live_server.url, "data:", "blob:"))]
    assert requested_hosts and not elsewhere


def test_redoc_renders_the_reference_and_its_outside_logo_is_blocked(strict_page, live_server, admin_user):
    page = strict_page  # the policy enforced: it is what stops the logo
    refused = []
    page.on("requestfailed", lambda request: refused.append((request.url, request.failure)))
    loaded = []
    page.on("requestfinished", lambda request: loaded.append(request.url))
    log_in_as_admin(page, "/api/redoc/")
    page.get_by_role("heading", name=re.compile("Galaxy labelling API")).wait_for()
    assert page.locator("text=expert-labels").count() > 0
    page.wait_for_load_state("networkidle")
    assert [url for url in loaded if not url.startswith((live_server.url, "data:", "blob:"))] == []
    # ReDoc's attribution logo points at its makers' CDN; the page's Content-Security-Policy stops it in the browser.
    assert all(failure == "csp" for url, failure in refused if not url.startswith(live_server.url)), refused
