"""The volunteers' classify page in a real Chromium, signed out: two galaxies classified through different branches of
the GZ DECaLS tree with keys and clicks, answers changed with Back (on the way, and from the summary back across a
branch), the help panel's example images really served, and exactly the two walks given stored under the visitor's
session and counted in the vote summaries; Enter pressed again while a submit is in flight sends nothing more. Going
back from the summary to the first question forgets the answers left behind. Screenshots land in
BROWSER_SCREENSHOT_DIR."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from labeling.models import ClassifyPolicy, Galaxy, Subject, VolunteerClassification, VoteSummary
from labeling.services.votes.trees import tree_get_or_load_shipped
from tests.conftest import REPO_ROOT
from tests.labeling.ml_helpers import galaxy10_subset

pytestmark = pytest.mark.browser

APP_READY = "#classify-app[data-ready='true']"
EXAMPLE = "trees/examples/gz_decals/smooth-or-featured--smooth-0.jpg"  # the first example of the first answer
SMOOTH_ROUND = {"smooth-or-featured": "smooth", "how-rounded": "round", "merging": "none"}
BARRED_SPIRAL = {"smooth-or-featured": "featured-or-disk", "disk-edge-on": "no", "bar": "strong",
                 "has-spiral-arms": "yes", "spiral-winding": "medium", "spiral-arm-count": "2", "bulge-size": "small",
                 "merging": "merger"}


@pytest.fixture
def policy(tmp_path):
    """Six real Galaxy10 galaxies open to volunteers under the GZ DECaLS tree; offers go to the least classified,
    nothing retires during the test."""
    dataset = galaxy10_subset(tmp_path / "import", per_class=2)
    return ClassifyPolicy.objects.create(dataset=dataset, tree=tree_get_or_load_shipped(name="gz_decals"),
                                         retire_after=20, useful_share=0.0)


def shown_galaxy(page) -> int:
    return int(page.get_attribute("#classify-app", "data-galaxy"))


def question(page) -> str:
    return page.locator("#question-text").inner_text()


def answer_texts(page) -> list[str]:
    return page.locator("#answers .answer span").all_inner_texts()


def click_answer(page, text: str) -> None:
    page.click(f"#answers .answer:has(span:text-is('{text}'))")


def wait_for_next_galaxy(page, before: int) -> int:
    """The galaxy shown once the page has moved on from ``before``; fails at once, with the page's message, when the
    page says the answers were not saved."""
    page.wait_for_function("""(before) => {
        const app = document.getElementById('classify-app');
        return (app.dataset.ready === 'true' && app.dataset.galaxy !== before)
            || document.getElementById('classify-status').textContent.startsWith('Not saved');
    }""", arg=str(before))
    status = page.locator("#classify-status").inner_text()
    assert not status.startswith("Not saved"), status
    return shown_galaxy(page)


def stored_walks(policy) -> dict[int, dict]:
    return dict(VolunteerClassification.objects.filter(tree=policy.tree).values_list("galaxy_id", "answers"))


def root_votes(galaxy_id: int) -> VoteSummary:
    return VoteSummary.objects.get(galaxy_id=galaxy_id, question__key="smooth-or-featured", source="aggregated")


def test_an_anonymous_volunteer_classifies_two_galaxies_down_different_branches(page, policy, live_server,
                                                                                screenshot_dir):
    page.goto(f"/classify/{policy.dataset.slug}/")
    page.wait_for_selector(APP_READY)
    page.wait_for_function("() => document.getElementById('galaxy-image').naturalWidth > 0")
    first = shown_galaxy(page)
    assert question(page).startswith("Is the galaxy simply smooth")
    assert answer_texts(page) == ["Smooth", "Features or disk", "Star, artifact or bad zoom"]

    # The help panel shows each answer's examples: static files the live server really serves.
    help_panel = page.locator("#help-panel")
    assert help_panel.is_hidden()
    page.keyboard.press("?")
    help_panel.wait_for(state="visible")
    assert page.get_attribute("[data-action='help']", "aria-expanded") == "true"
    example = help_panel.locator("img").first
    example.wait_for()
    page.wait_for_function("() => { const img = document.querySelector('#help-panel img');"
                           " return img.complete && img.naturalWidth > 0; }")
    source = example.evaluate("img => img.currentSrc")
    assert source == f"{live_server.url}/static/{EXAMPLE}"
    served = page.request.get(source)
    assert served.status == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.body() == (REPO_ROOT / "static" / EXAMPLE).read_bytes()
    assert help_panel.locator("img").count() == 9  # three answers, three examples each
    page.screenshot(path=str(screenshot_dir / "classify-help.png"))
    page.keyboard.press("?")
    help_panel.wait_for(state="hidden")

    # Galaxy 1: smooth (key), cigar-shaped (click), then Back to make it round (key), no merging (click).
    page.keyboard.press("1")
    assert question(page).startswith("How rounded is it")
    click_answer(page, "Cigar-shaped")
    assert question(page).startswith("Is the galaxy currently merging")
    page.keyboard.press("Backspace")
    assert question(page).startswith("How rounded is it")
    assert page.locator("#question-step").inner_text() == "Question 2"
    page.keyboard.press("1")
    click_answer(page, "None")
    assert page.locator("#summary-list li").all_inner_texts() == [
        "Is the galaxy simply smooth and rounded, with no sign of a disk? Smooth",
        "How rounded is it? Round",
        "Is the galaxy currently merging, or is there any sign of tidal debris? None",
    ]

    # Enter pressed twice more while the submit is in flight: the page sends it once. The POST is held at the
    # network layer so that the extra presses certainly land while it is pending.
    held, posts = [], []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.route("**/submit/", lambda route: held.append(route))
    # The summary's Send button shown and enabled: the page is ready to send (under load, rendering can lag).
    expect(page.locator("[data-action='submit']")).to_be_enabled(timeout=10_000)
    page.keyboard.press("Enter")
    for _ in range(3000):  # at most 30 s on a loaded machine
        if held:
            break
        page.wait_for_timeout(10)
    assert held, f"the page sent no classification; its status: {page.locator('#classify-status').all_inner_texts()}"
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.wait_for_timeout(200)
    assert len(held) == 1
    held[0].continue_()
    second = wait_for_next_galaxy(page, first)
    page.unroute("**/submit/")
    assert second != first and len(posts) == 1
    assert "Thank you! Saved." in page.locator("#classify-status").inner_text()
    assert page.locator("#classified-count").inner_text() == "1"

    # Galaxy 2: features (click), edge-on, rounded bulge, no merging; then Back from the summary across the
    # branch to say it is not edge-on after all, and on down the face-on spiral branch.
    click_answer(page, "Features or disk")
    for key in "131":  # edge-on yes, rounded bulge, no merging
        page.keyboard.press(key)
    assert page.locator("#summary-list li").count() == 4
    for _ in range(3):  # the summary -> merging -> edge-on bulge -> edge-on
        page.keyboard.press("Backspace")
    assert question(page).startswith("Could this be a disk viewed edge-on")
    page.keyboard.press("2")  # no
    assert question(page).startswith("Is there a bar")
    click_answer(page, "Strong bar")
    for key in ["1", "2", "2", "4"]:  # spiral arms yes, medium winding, two arms, small bulge
        page.keyboard.press(key)
    assert question(page).startswith("Is the galaxy currently merging")
    click_answer(page, "Merging")
    assert page.locator("#summary-list li").count() == len(BARRED_SPIRAL)
    page.screenshot(path=str(screenshot_dir / "classify-summary.png"))
    # A quick double Enter on the summary, as a volunteer's impatient finger gives it.
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    wait_for_next_galaxy(page, second)
    page.wait_for_function("() => document.getElementById('classified-count').textContent === '2'")

    session = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
    rows = list(VolunteerClassification.objects.filter(tree=policy.tree))
    assert [(row.volunteer_id, row.user_id, row.source) for row in rows] == [(f"session:{session}", None, "web")] * 2
    assert stored_walks(policy) == {first: SMOOTH_ROUND, second: BARRED_SPIRAL}
    assert len(posts) == 2

    assert root_votes(first).fractions == {"smooth": 1.0, "featured-or-disk": 0.0, "artifact": 0.0}
    assert root_votes(second).fractions == {"smooth": 0.0, "featured-or-disk": 1.0, "artifact": 0.0}
    assert root_votes(first).total == root_votes(second).total == 1
    bar = VoteSummary.objects.get(galaxy_id=second, question__key="bar", source="aggregated")
    assert bar.counts == {"strong": 1, "weak": 0, "no": 0} and bar.total == 1
    edge_on_bulge = VoteSummary.objects.get(galaxy_id=second, question__key="edge-on-bulge", source="aggregated")
    assert edge_on_bulge.total == 0  # the first, abandoned edge-on walk counts nowhere
    assert dict(Subject.objects.filter(tree=policy.tree, n_classifications__gt=0).values_list(
        "galaxy_id", "n_classifications")) == {first: 1, second: 1}


def test_going_back_from_the_summary_to_the_first_question_forgets_the_answers_left_behind(page, policy):
    page.goto(f"/classify/{policy.dataset.slug}/")
    page.wait_for_selector(APP_READY)
    galaxy = shown_galaxy(page)
    for key in "111":  # smooth, round, no merging
        page.keyboard.press(key)
    assert page.locator("#summary-list li").count() == 3
    for _ in range(3):  # the summary -> merging -> how rounded -> smooth or featured
        page.keyboard.press("Backspace")
    assert page.locator("#question-step").inner_text() == "Question 1"
    page.keyboard.press("3")  # a star or artifact: the walk ends here
    assert page.locator("#summary-list li").all_inner_texts() == [
        "Is the galaxy simply smooth and rounded, with no sign of a disk? Star, artifact or bad zoom"]
    page.keyboard.press("Enter")
    wait_for_next_galaxy(page, galaxy)
    assert stored_walks(policy) == {galaxy: {"smooth-or-featured": "artifact"}}


def test_a_volunteer_sees_no_id_or_file_name_that_could_give_the_answer_away(page, policy):
    """The demo's ids and file names name the class ("g10_class_2_1"): neither the page's text, its HTML, the image's
    src and alt, nor any URL the browser fetches may hold them, for the first galaxy or the next."""
    fetched = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(f"/classify/{policy.dataset.slug}/")
    seen = []
    for _ in range(2):
        page.wait_for_selector(APP_READY)
        page.wait_for_function("() => document.getElementById('galaxy-image').naturalWidth > 0")
        galaxy = Galaxy.objects.get(pk=shown_galaxy(page))
        image = page.locator("#galaxy-image")
        shown = {"text": page.locator("body").inner_text(), "html": page.content(),
                 "src": image.evaluate("img => img.currentSrc"), "alt": image.get_attribute("alt"),
                 "urls": " ".join(fetched)}
        assert shown["src"].endswith(f"/classify/{policy.dataset.slug}/image/{galaxy.pk}/")
        secrets = [galaxy.external_id, Path(galaxy.image.name).stem, "g10_class", "/media/"]
        assert {name: [secret for secret in secrets if secret in value] for name, value in shown.items()} == {
            name: [] for name in shown}
        seen.append(galaxy.pk)
        page.keyboard.press("3")  # a star or artifact: the shortest walk, then on to the next galaxy
        page.keyboard.press("Enter")
        wait_for_next_galaxy(page, galaxy.pk)
    assert len(set(seen)) == 2


def test_only_the_controls_that_apply_are_shown(page, policy):
    page.goto(f"/classify/{policy.dataset.slug}/")
    page.wait_for_selector(APP_READY)
    next_button, done = page.locator("[data-action='next']"), page.locator("[data-action='submit']")
    # A single-choice question goes on with its answer: neither Next nor Done applies.
    assert page.locator("#answers").is_visible() and next_button.is_hidden() and done.is_hidden()
    for key in "111":  # smooth, round, no merging
        page.keyboard.press(key)
    # The summary: the answers of the last question are gone, Done sends.
    assert page.locator("#summary").is_visible() and done.is_visible()
    assert page.locator("#answers").is_hidden() and next_button.is_hidden()


CHECKBOX_TREE = {
    "name": "shape-and-oddities", "title": "Shape and oddities",
    "questions": [
        {"key": "shape", "text": "Smooth or disk?", "answers": [
            {"key": "smooth", "text": "Smooth", "next": "odd"}, {"key": "disk", "text": "Disk", "next": None}]},
        {"key": "odd", "text": "Tick every odd feature", "kind": "multiple", "next": None, "answers": [
            {"key": "ring", "text": "Ring"}, {"key": "lens", "text": "Lens"}, {"key": "merger", "text": "Merger"}]},
    ],
}


def test_a_checkbox_question_takes_several_answers_and_next(page, policy):
    from labeling.services.votes.trees import tree_load

    policy.tree = tree_load(definition=CHECKBOX_TREE)
    policy.save()
    page.goto(f"/classify/{policy.dataset.slug}/")
    page.wait_for_selector(APP_READY)
    galaxy = shown_galaxy(page)
    page.keyboard.press("1")  # smooth
    assert question(page) == "Tick every odd feature"
    for key in "131":  # tick ring, tick merger, untick ring
        page.keyboard.press(key)
    click_answer(page, "Lens")
    pressed = page.locator("#answers .answer[aria-pressed='true'] span").all_inner_texts()
    assert pressed == ["Lens", "Merger"]
    page.keyboard.press("Enter")  # Next: the checkbox question is done
    assert page.locator("#summary-list li").all_inner_texts() == ["Smooth or disk? Smooth",
                                                                  "Tick every odd feature Lens, Merger"]
    page.keyboard.press("Enter")
    wait_for_next_galaxy(page, galaxy)
    assert stored_walks(policy) == {galaxy: {"shape": "smooth", "odd": ["lens", "merger"]}}
    odd = VoteSummary.objects.get(galaxy_id=galaxy, question__key="odd", source="aggregated")
    assert odd.counts == {"ring": 0, "lens": 1, "merger": 1}
