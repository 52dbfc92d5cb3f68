"""With the default features (the shipped galaxy backbone), a galaxy's page in a real Chromium shows neighbours of its
own kind: the nearest galaxies of a clearly smooth and of a clearly spiral demo galaxy are mostly smooth and mostly
spiral, and the figures shown on them (rank, and a similarity from 0 to 100 read against random pairs) fall along the
list and differ from galaxy to galaxy."""

import pytest

from labeling.models import Galaxy
from labeling.services.learning.model_versions import model_version_get_or_create
from tests.browser.test_ml_pages_in_chromium import log_in_as_admin
from tests.browser.test_pages_in_chromium import images_loaded
from tests.labeling.ml_helpers import extracted, galaxy10_subset, indexed

pytestmark = pytest.mark.browser

# Galaxy10 DECaLS classes by kind (the demo's labels): what a user means by "the same kind of galaxy".
SMOOTH = {2, 3, 4}  # round, in-between round, cigar-shaped smooth
SPIRAL = {5, 6, 7}  # barred, unbarred tight, unbarred loose spiral
# A large round elliptical and a large face-on two-armed spiral of the demo set (tests/labeling/ml_helpers.py).
EXAMPLES = {"g10_class_2_1": SMOOTH, "g10_class_6_7": SPIRAL}


def galaxy10_class(galaxy_id: int) -> int:
    return int(Galaxy.objects.get(pk=galaxy_id).external_id.split("_")[2])


@pytest.fixture
def demo_galaxies(tmp_path, admin_user):
    dataset = galaxy10_subset(tmp_path / "import", classes=tuple(str(c) for c in range(10)), per_class=11,
                              name="Galaxy10 demo")
    indexed(extracted(dataset, model_version_get_or_create()))
    return dataset


def test_the_neighbours_of_a_smooth_and_a_spiral_galaxy_are_mostly_of_their_kind(page, demo_galaxies,
                                                                                 screenshot_dir):
    scores_seen, figures_seen = [], []
    for external_id, kind in EXAMPLES.items():
        galaxy = demo_galaxies.galaxies.get(external_id=external_id)
        log_in_as_admin(page, f"/galaxies/{galaxy.pk}/")
        tiles = page.locator(".neighbours .neighbour")
        page.wait_for_load_state("load")
        assert all(width > 0 for width in images_loaded(page, ".neighbours img"))
        ids = [int(i) for i in tiles.evaluate_all("tiles => tiles.map(t => t.dataset.galaxy)")][:5]
        scores = [float(s) for s in tiles.evaluate_all("tiles => tiles.map(t => t.dataset.score)")]
        likeness = [float(s) for s in tiles.evaluate_all("tiles => tiles.map(t => t.dataset.likeness)")]
        shown = tiles.locator(".score").all_inner_texts()
        page.screenshot(path=str(screenshot_dir / f"neighbours-{external_id}.png"), full_page=True)
        page.context.clear_cookies()

        classes = [galaxy10_class(i) for i in ids]
        assert sum(c in kind for c in classes) >= 3, f"{external_id}: neighbours of classes {classes}"
        assert galaxy.pk not in ids
        # Similarities are figures to read, not all 1.00: they fall along the list.
        assert scores == sorted(scores, reverse=True) and scores[0] - scores[-1] > 0.01
        assert likeness == sorted(likeness, reverse=True) and likeness[0] - likeness[-1] > 0.05
        assert shown == [f"#{rank} · {round(100 * value)}" for rank, value in enumerate(likeness, start=1)]
        assert shown[0] != shown[-1].replace(f"#{len(shown)}", "#1")  # the figure itself differs, not only the rank
        scores_seen.append(scores)
        figures_seen.append(shown)
    assert scores_seen[0] != scores_seen[1] and figures_seen[0] != figures_seen[1]
