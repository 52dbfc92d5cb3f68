"""Real Chromium through Playwright's sync API, against pytest-django's live server.

Chromium comes from the system (Debian's `chromium` package); nothing is downloaded. Without it these tests skip and
say so in the summary.
"""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django would then refuse the tests' own ORM calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_DIR = Path(os.environ.get("BROWSER_SCREENSHOT_DIR", "/tmp/galaxy-labeling-screenshots"))


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"BROWSER TESTS SKIPPED: no Chromium at {CHROMIUM} (install Debian's 'chromium' package or set "
                    f"CHROMIUM_PATH); never run 'playwright install' here, it downloads")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("BROWSER TESTS SKIPPED: the 'playwright' Python package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def served_media(settings):
    """The live server serves MEDIA_ROOT too, so that <img> tags really load (the tests run with DEBUG off)."""
    settings.GALAXY_SERVE_FILES = True


def _page(browser, live_server, *, bypass_csp: bool):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url,
                                  bypass_csp=bypass_csp)
    context.set_default_timeout(15_000)
    return context, context.new_page()


@pytest.fixture
def page(browser, live_server, served_media):
    """A page whose Content-Security-Policy is not enforced: Playwright's wait_for_function compiles its predicate
    in the page when a first check fails, which a policy without 'unsafe-eval' refuses. The policy itself is proven
    with ``strict_page`` (tests/browser/test_content_security_policy_in_chromium.py)."""
    context, page = _page(browser, live_server, bypass_csp=True)
    yield page
    context.close()


@pytest.fixture
def strict_page(browser, live_server, served_media):
    """A page as a visitor's browser has it: the Content-Security-Policy enforced."""
    context, page = _page(browser, live_server, bypass_csp=False)
    yield page
    context.close()


@pytest.fixture
def screenshot_dir() -> Path:
    """Where screenshots go for a person to look at; outside the repository, never committed."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT_DIR
