"""A newcomer's first minutes, in a real Chromium: log in, see the datasets, browse and filter the grid, open a
galaxy and read its votes. Screenshots of the grid and the galaxy page land in BROWSER_SCREENSHOT_DIR."""

import re

import pytest
from django.core.files import File
from PIL import Image

from labeling.models import ConsensusLabel, Galaxy, VoteSummary
from labeling.services.imports.datasets import dataset_get_or_create
from labeling.services.labelling.labels import expert_label_set
from labeling.services.votes.schemas import schema_get_or_load_shipped
from labeling.services.votes.trees import tree_get_or_load_shipped

pytestmark = pytest.mark.browser

# Real Galaxy10 DECaLS images from the bundled demo data, by class: 2 round smooth, 5 barred spiral, 6 tight spiral.
CLASSES = {"2": 4, "5": 4, "6": 3}


def add_real_galaxy(dataset, demo_data, class_key: str, index: int) -> Galaxy:
    path = demo_data / "galaxy10" / "images" / f"g10_class_{class_key}_{index}.jpg"
    with Image.open(path) as image:
        width, height = image.size
    galaxy = Galaxy(dataset=dataset, external_id=path.stem, width=width, height=height, ra=150.0 + index, dec=2.5)
    with open(path, "rb") as handle:
        galaxy.image.save(path.name, File(handle), save=False)
    galaxy.save()
    return galaxy


def put_decals_votes(galaxy, tree, counts_by_question):
    for question in tree.questions.filter(key__in=counts_by_question):
        counts = counts_by_question[question.key]
        total = sum(counts.values())
        VoteSummary.objects.create(galaxy=galaxy, question=question, source=VoteSummary.Source.AGGREGATED,
                                   counts=counts, total=total, reach=1.0,
                                   fractions={key: value / total for key, value in counts.items()})


@pytest.fixture
def galaxies(demo_data, expert):
    """A small dataset of real images with expert labels, one galaxy with votes and consensus, two without images."""
    schema = schema_get_or_load_shipped(name="galaxy10")
    tree = tree_get_or_load_shipped(name="gz_decals")
    dataset = dataset_get_or_create(name="Galaxy10 in the browser", survey="DECaLS", licence="MIT",
                                    attribution="Leung & Bovy, Galaxy10 DECaLS.")
    made = {}
    for class_key, n in CLASSES.items():
        for index in range(n):
            galaxy = add_real_galaxy(dataset, demo_data, class_key, index)
            expert_label_set(galaxy=galaxy, schema=schema, label_class=schema.classes.get(key=class_key),
                             expert=expert, note="from the Galaxy10 catalogue")
            made[galaxy.external_id] = galaxy
    for name in ("J0123+0456", "J0789-0012"):
        made[name] = Galaxy.objects.create(dataset=dataset, external_id=name, ra=12.3, dec=4.5)
    voted = made["g10_class_5_1"]
    put_decals_votes(voted, tree, {
        "smooth-or-featured": {"smooth": 6, "featured-or-disk": 30, "artifact": 0},
        "disk-edge-on": {"yes": 2, "no": 28},
        "has-spiral-arms": {"yes": 24, "no": 4},
        "bar": {"strong": 17, "weak": 7, "no": 4},
    })
    ConsensusLabel.objects.create(galaxy=voted, schema=schema, rule=schema.rules.get(name="gz-decals-thresholds"),
                                  label_class=schema.classes.get(key="5"), agreement=0.61, n_votes=36)
    return made


def tile_ids(page) -> list[str]:
    return page.locator(".galaxy-grid .tile").evaluate_all("tiles => tiles.map(t => t.dataset.externalId)")


def images_loaded(page, selector: str) -> list[int]:
    """naturalWidth of each matching <img>: 0 means the browser could not load or decode it.

    The grids load their images lazily, and the page's load event does not wait for lazy images, so this scrolls each
    into view and waits until the browser has finished with every one (loaded or broken) before reading it."""
    page.locator(selector).evaluate_all("images => images.forEach(i => i.scrollIntoView({block: 'nearest'}))")
    page.wait_for_function("selector => [...document.querySelectorAll(selector)].every(i => i.complete)",
                           arg=selector, timeout=30_000)
    return page.locator(selector).evaluate_all("images => images.map(i => i.naturalWidth)")


def test_a_newcomer_logs_in_browses_filters_and_reads_a_galaxy(page, galaxies, screenshot_dir):
    page.goto("/datasets/")
    assert "/login/" in page.url
    page.fill("#id_username", "edwin")
    page.fill("#id_password", "pw-edwin")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(r"/datasets/$"))

    card = page.locator(".dataset-card", has_text="Galaxy10 in the browser")
    assert card.locator(".stats dd").all_inner_texts() == ["13", "11", "1", "11", "1"]
    card.get_by_role("link", name="Browse galaxies").click()
    page.wait_for_url(re.compile(r"/galaxies/\?dataset="))
    assert len(tile_ids(page)) == 13
    assert page.locator(".placeholder", has_text="J0123+0456").count() == 1
    page.wait_for_load_state("load")
    assert all(width > 0 for width in images_loaded(page, ".galaxy-grid img"))
    page.screenshot(path=str(screenshot_dir / "grid.png"), full_page=True)

    # The filters apply on change (static/js/galaxy_list.js): choosing a schema enables its classes.
    assert page.locator("#id_class").is_disabled()
    page.select_option("#id_schema", "galaxy10")
    page.wait_for_url(re.compile(r"schema=galaxy10"))
    page.select_option("#id_class", "5")
    page.wait_for_url(re.compile(r"class=5"))
    assert sorted(tile_ids(page)) == [f"g10_class_5_{i}" for i in range(4)]
    assert page.locator(".galaxy-grid .badge-expert").all_inner_texts() == ["Barred Spiral"] * 4
    page.screenshot(path=str(screenshot_dir / "grid-filtered.png"), full_page=True)

    page.click(".tile[data-external-id='g10_class_5_1']")
    page.wait_for_url(re.compile(rf"/galaxies/{galaxies['g10_class_5_1'].id}/$"))
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == "Galaxy g10_class_5_1"
    assert images_loaded(page, ".galaxy-image img") == [256]
    assert page.locator(".galaxy-image img").get_attribute("src") == galaxies["g10_class_5_1"].image.url

    bar_question = page.locator(".question[data-question='bar']")
    strong = bar_question.locator(".bar-row[data-answer='strong']")
    assert strong.locator(".bar-value").inner_text() == "61% (17)"
    track = strong.locator(".bar-track").bounding_box()
    fill = strong.locator(".bar-fill").bounding_box()
    assert fill["width"] / track["width"] == pytest.approx(17 / 28, abs=0.01)
    assert page.locator(".votes .question").count() == 4
    assert page.locator(".expert-label .badge-expert").inner_text() == "Barred Spiral"
    assert page.locator(".consensus-table").inner_text().count("Barred Spiral") == 1
    page.screenshot(path=str(screenshot_dir / "detail.png"), full_page=True)


def log_in(page, next_url: str = "/datasets/") -> None:
    page.goto(f"/login/?next={next_url}")
    page.fill("#id_username", "edwin")
    page.fill("#id_password", "pw-edwin")
    page.click("button:has-text('Log in')")
    page.wait_for_url(re.compile(re.escape(next_url) + "$"))


def test_a_catalogue_only_galaxy_shows_its_placeholder_and_neighbour_links(page, galaxies, screenshot_dir):
    log_in(page, f"/galaxies/{galaxies['J0123+0456'].id}/")
    assert page.locator(".galaxy-image .placeholder-large").inner_text().startswith("J0123+0456")
    page.click("a[rel='next']")
    page.wait_for_url(re.compile(rf"/galaxies/{galaxies['J0789-0012'].id}/$"))
    assert page.locator("a[rel='next']").count() == 0
    page.screenshot(path=str(screenshot_dir / "detail-placeholder.png"), full_page=True)


def test_logging_out_from_the_header_returns_to_the_login_page(page, galaxies):
    log_in(page)
    page.click("header button:has-text('Log out')")
    page.wait_for_url(re.compile(r"/login/$"))
    page.goto("/galaxies/")
    assert "/login/?next=/galaxies/" in page.url


def test_a_question_on_the_galaxy_page_leads_to_the_tree_with_real_example_galaxies(page, galaxies, screenshot_dir):
    log_in(page, f"/galaxies/{galaxies['g10_class_5_1'].id}/")
    bar_row = page.locator(".question[data-question='bar'] .bar-row[data-answer='strong'] .bar-label")
    assert bar_row.get_attribute("title").startswith("An obvious bar")
    page.click(".question[data-question='bar'] h3 a")
    page.wait_for_url(re.compile(r"/trees/gz_decals/#q-bar$"))

    question = page.locator("#q-bar")
    assert question.locator("h2").inner_text().endswith("Is there a bar feature through the centre of the galaxy?")
    assert "asked after Could this be a disk viewed edge-on?" in question.inner_text()
    strong = question.locator(".tree-answer[data-answer='strong']")
    strong.locator(".examples img").first.scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('#q-bar .tree-answer img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert images_loaded(page, "#q-bar .tree-answer[data-answer='strong'] img") == [160, 160, 160]
    assert question.locator(".tree-answer[data-answer='weak'] img").count() == 0
    page.screenshot(path=str(screenshot_dir / "tree-bar.png"))

    # Following an answer's next question moves down the same page.
    strong.get_by_role("link").click()
    page.wait_for_url(re.compile(r"#q-has-spiral-arms$"))
    assert page.locator("#q-has-spiral-arms").is_visible()
