"""The Content-Security-Policy in a real Chromium: an admin opens every page (and hovers the charts, whose tooltips
ECharts writes as HTML), a visitor classifies, and Chromium reports no violation of the policy on any of them: not
in the console, not as a securitypolicyviolation event."""

import re

import pytest
from django.urls import reverse

from labeling.models import ClassifyPolicy, Simulation
from tests.browser.test_ml_pages_in_chromium import log_in_as_admin
from tests.labeling.api_helpers import api_world
from tests.labeling.ml_helpers import mapped
from tests.labeling.permission_helpers import context_for

pytestmark = pytest.mark.browser

# Recorded from the first script on: an inline script would itself be refused by the policy it listens for.
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def world(tmp_path, volunteer, outsider, expert, second_expert, admin_user):
    """Every kind of object a page shows: the permission tests' world, a 2-D map, a simulation, a classify policy."""
    ctx = context_for(api_world(tmp_path / "import"), volunteer=volunteer, outsider=outsider, expert=expert,
                      second_expert=second_expert, admin_user=admin_user)
    dataset = ctx.world.dataset
    simulation = Simulation.objects.create(dataset=dataset, oracle="labels.csv", curves={
        "random": [{"labels": 6, "accuracy": 0.5, "balanced_accuracy": 0.5},
                   {"labels": 12, "accuracy": 0.6, "balanced_accuracy": 0.55}],
        "margin": [{"labels": 6, "accuracy": 0.55, "balanced_accuracy": 0.5},
                   {"labels": 12, "accuracy": 0.7, "balanced_accuracy": 0.65}]},
        savings={"baseline_final_accuracy": 0.6})
    ClassifyPolicy.objects.create(dataset=dataset, tree=ctx.world.tree)
    return {"ctx": ctx, "map": mapped(ctx.world.feature_set), "simulation": simulation}


def admin_pages(world) -> list[str]:
    ctx = world["ctx"]
    dataset = ctx.world.dataset.slug
    galaxy = ctx.galaxy().pk
    return [
        reverse("home"), reverse("dataset-list"), reverse("galaxy-list"), reverse("galaxy-detail", args=[galaxy]),
        reverse("galaxy-similar", args=[galaxy]), reverse("clustering-list"),
        reverse("clustering-detail", args=[ctx.world.clustering.pk]), reverse("map-list"),
        reverse("map-detail", args=[world["map"].pk]), reverse("job-list"), reverse("label-home"),
        reverse("label-page", args=[dataset, "galaxy10"]), reverse("agreement"), reverse("review"),
        reverse("simulation-list"), reverse("simulation-detail", args=[world["simulation"].pk]),
        reverse("training"), reverse("training-curve", args=[dataset]), reverse("tree-list"),
        reverse("tree-detail", args=["gz2"]), reverse("classify-home"), reverse("classify-page", args=[dataset]),
        reverse("api-docs"), reverse("api-redoc"), reverse("admin:index"),
        reverse("admin:axes_accessattempt_changelist"), reverse("admin:labeling_galaxy_changelist"),
    ]


# The one refusal that is meant: ReDoc's "by Redocly" logo from its makers' CDN (labeling/api/docs.py).
EXPECTED = {"api-redoc": "https://cdn.redoc.ly/"}


def violations(page, console: list[str], path: str) -> list[str]:
    """What Chromium reported on the page, each once, less the refusal that is meant there."""
    found = dict.fromkeys(console + page.evaluate("() => window.__cspViolations || []"))
    expected = next((url for name, url in EXPECTED.items() if reverse(name) == path), None)
    return [item for item in found if not (expected and expected in item)]


def open_and_settle(page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")


def hover_charts(page) -> None:
    """Move over each chart, so that ECharts writes its tooltips (HTML) into the page."""
    for chart in page.locator("canvas").all()[:4]:
        box = chart.bounding_box()
        if not box:
            continue
        for fx, fy in [(0.5, 0.5), (0.3, 0.4), (0.7, 0.6), (0.45, 0.55)]:
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            page.wait_for_timeout(150)


def test_no_page_breaks_the_content_security_policy_for_an_admin_or_a_visitor(strict_page, browser, live_server,
                                                                              world):
    page = strict_page
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text)
            if "Content Security Policy" in message.text else None)
    page.add_init_script(LISTEN)
    log_in_as_admin(page, reverse("dataset-list"))
    found = {}
    for path in admin_pages(world):
        console.clear()
        open_and_settle(page, path)
        assert page.locator("body").inner_text().strip(), path  # a page, not an empty document
        hover_charts(page)
        if reported := violations(page, console, path):
            found[path] = reported

    visitor = browser.new_context(base_url=live_server.url).new_page()
    visitor.add_init_script(LISTEN)
    visitor_console: list[str] = []
    visitor.on("console", lambda message: visitor_console.append(message.text)
               if "Content Security Policy" in message.text else None)
    for path in [reverse("login"), reverse("classify-home"),
                 reverse("classify-page", args=[world["ctx"].world.dataset.slug])]:
        visitor_console.clear()
        open_and_settle(visitor, path)
        if path.startswith("/classify/") and path != reverse("classify-home"):
            visitor.wait_for_selector("#classify-app[data-ready='true']")
            visitor.locator("#answers button.answer").first.click()
        if reported := violations(visitor, visitor_console, path):
            found[f"visitor {path}"] = reported
    visitor.context.close()
    assert not found, "\n".join(f"{path}: {items}" for path, items in found.items())


def test_the_policy_really_blocks_an_inline_script(strict_page, live_server, admin_user):
    """The listener above would report a violation: an inline script added to a page is refused and reported."""
    page = strict_page
    page.add_init_script(LISTEN)
    page.goto(reverse("login"))
    page.evaluate("""() => { const s = document.createElement("script"); s.textContent = "window.ran = 1";
                             document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran") is None
    reported = page.evaluate("() => window.__cspViolations")
    assert reported and re.match(r"script-src", reported[0]), reported
